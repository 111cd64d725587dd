// How many CPUs this process may use (csrc/cpu/cpu_count.cc).
#pragma once
#include <string>

namespace seqkern {

// The CPU quota, in CPUs (2.5: 250 ms of CPU time a 100 ms period), of the control group that a
// /proc/PID/cgroup file names, from the cgroup mounts a /proc/PID/mountinfo file lists: cgroup
// v2's cpu.max, else v1's cpu.cfs_quota_us / cpu.cfs_period_us, the least over the group and
// its ancestors. 0 when no quota is set or the files cannot be read.
double cgroup_cpu_quota(const std::string& mountinfo, const std::string& cgroup);

// The CPUs of the process's affinity mask, capped by its control group's CPU quota (cgroup v2
// cpu.max or v1 cpu.cfs_quota_us, the least over its ancestors too), rounded up; at least 1.
int available_cpus();

}  // namespace seqkern
