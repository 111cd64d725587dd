// The one seqkern thread pool. Work is split statically by index, so results do not depend on
// scheduling: a fixed thread count gives bitwise-identical output.
#pragma once
#include <cstdint>
#include <functional>

namespace seqkern {

void set_num_threads(int n);  // n >= 1
int get_num_threads();

// Calls fn(begin, end) on disjoint chunks covering [0, n), at most one chunk per thread.
// Runs inline when one thread is set, n < 2*grain (too little work to share), or when called
// from inside a chunk.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace seqkern
