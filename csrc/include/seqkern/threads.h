// The one seqkern thread pool. Work is split statically by index, so results do not depend on
// scheduling: a fixed thread count gives bitwise-identical output.
#pragma once
#include <cstdint>
#include <functional>

namespace seqkern {

void set_num_threads(int n);  // n >= 1
int get_num_threads();  // 1 inside a parallel_for chunk, where nested work runs inline

// Calls fn(begin, end) on disjoint chunks covering [0, n), at most one chunk per thread.
// Runs inline when one thread is set, n < 2*grain (too little work to share), or when called
// from inside a chunk.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// The members of a run_team call: member `rank` of `size`, all running at once.
class Team {
 public:
  int rank = 0, size = 1;
  // Waits until every member has called sync as often as this one (a spinning barrier: the
  // members sync once or twice per time step, far too often to sleep in between).
  void sync();

 private:
  friend void run_team(const std::function<void(Team&)>& fn);
  struct Shared;
  Shared* shared_ = nullptr;
};

// Calls fn on every thread of the pool at once, each with its own Team (size = the pool size);
// with one thread, or from inside a chunk, fn runs once here with size 1 and sync a no-op.
void run_team(const std::function<void(Team&)>& fn);

}  // namespace seqkern
