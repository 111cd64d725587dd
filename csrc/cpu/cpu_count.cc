// The CPUs this process may use: its affinity mask, capped by a CPU quota of its control group.
// A container limited to 2 CPUs on a 64-core host (docker --cpus, a Kubernetes CPU limit) sees
// all 64 in its affinity mask; a team of 64 members spends the period's quota in a few
// milliseconds and the group then waits, throttled, for the rest of the period. Measured here
// (Zen 5, 2 cores, a cgroup v1 quota of one CPU, calls back to back for 3 s), 2 threads / the
// quota's 1: LSTM (50,8,256,256) inference p99 50.5 / 2.3 ms, worst 54.7 / 4.3 ms, mean 2.25
// / 2.06 ms; batch 1 p99.9 53.2 / 1.2 ms (mean 0.51 / 0.58: two members' L2 outran the quota
// between the stalls); the GRU at batch 1 p99.9 53.2 / 0.74 ms, mean 0.45 / 0.39.
#include "seqkern/cpu_count.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace seqkern {

namespace {

struct Mount {
  std::string root, point;  // the hierarchy's path mounted, and where
};

// The mount of the cgroup2 hierarchy (v2) or of the v1 hierarchy with the "cpu" controller,
// from a mountinfo file ("id parent dev root point options ... - fstype source superopts").
bool find_mount(const std::string& mountinfo, bool v2, Mount& out) {
  std::ifstream f(mountinfo);
  for (std::string line; std::getline(f, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
    std::string id, parent, dev, root, point, fstype, source, opts;
    head >> id >> parent >> dev >> root >> point;
    tail >> fstype >> source >> opts;
    if (v2 ? fstype != "cgroup2" : fstype != "cgroup") continue;
    if (!v2) {
      std::istringstream list(opts);
      bool cpu = false;
      for (std::string o; std::getline(list, o, ',');) cpu = cpu || o == "cpu";
      if (!cpu) continue;
    }
    out = {root, point};
    return true;
  }
  return false;
}

// The process's cgroup path in the v2 hierarchy ("0::path") or in the v1 hierarchy that has the
// "cpu" controller ("id:cpu,cpuacct:path"), from a /proc/PID/cgroup file.
bool find_cgroup(const std::string& cgroup, bool v2, std::string& path) {
  std::ifstream f(cgroup);
  for (std::string line; std::getline(f, line);) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    bool match = v2 ? line.compare(0, a, "0") == 0 && controllers.empty() : false;
    std::istringstream list(controllers);
    for (std::string c; !v2 && std::getline(list, c, ',');) match = match || c == "cpu";
    if (match) {
      path = line.substr(b + 1);
      return true;
    }
  }
  return false;
}

// The number a file starts with, or `none` when it cannot be read. Parsed with strtod: reading
// a double through operator>> crashed inside libstdc++ on a GPU host whose runtime library is
// older than its compiler's headers, while reading strings worked.
double leading_number(std::ifstream& f, double none) {
  std::string token;
  if (!(f >> token)) return none;
  char* end = nullptr;
  const double v = std::strtod(token.c_str(), &end);
  return end != token.c_str() ? v : none;
}

// quota / period of one cgroup directory, or 0 when it sets no quota (or has no such files).
double quota_of(bool v2, const std::string& dir) {
  double quota = -1, period = 0;
  if (v2) {
    std::ifstream f(dir + "/cpu.max");  // "max 100000" or "200000 100000"; "max" reads as none
    quota = leading_number(f, -1);
    period = leading_number(f, 0);
  } else {
    std::ifstream q(dir + "/cpu.cfs_quota_us"), p(dir + "/cpu.cfs_period_us");  // -1: none
    quota = leading_number(q, -1);
    period = leading_number(p, 0);
  }
  return quota > 0 && period > 0 ? quota / period : 0;
}

// The smallest quota on the way from the process's cgroup up to its hierarchy's mount, in CPUs
// (a parent's limit binds its children), or 0 when none is set or none can be read.
double hierarchy_quota(const std::string& mountinfo, const std::string& cgroup, bool v2) {
  Mount m;
  std::string path;
  if (!find_mount(mountinfo, v2, m) || !find_cgroup(cgroup, v2, path)) return 0;
  // Inside a container the mount's root is often the container's own cgroup: strip it.
  if (m.root != "/" && path.compare(0, m.root.size(), m.root) == 0) path.erase(0, m.root.size());
  double least = 0;
  for (;;) {
    const double q = quota_of(v2, m.point + path);
    if (q > 0) least = least > 0 ? std::min(least, q) : q;
    const auto slash = path.find_last_of('/');
    if (path.empty() || path == "/" || slash == std::string::npos) break;
    path.erase(slash);
  }
  return least;
}

}  // namespace

double cgroup_cpu_quota(const std::string& mountinfo, const std::string& cgroup) {
  const double v2 = hierarchy_quota(mountinfo, cgroup, true);
  return v2 > 0 ? v2 : hierarchy_quota(mountinfo, cgroup, false);
}

int available_cpus() {
  int n = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n < 1) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const double quota = cgroup_cpu_quota("/proc/self/mountinfo", "/proc/self/cgroup");
  if (quota > 0) n = std::min(n, std::max(1, static_cast<int>(std::ceil(quota))));
  return n;
}

}  // namespace seqkern
