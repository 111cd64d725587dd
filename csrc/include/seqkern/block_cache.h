// Freed memory blocks kept for reuse (csrc/cpu/block_cache.cc): the output arrays of _core.empty
// and the kernels' packed weights. A training step or an inference loop allocates the same blocks
// at every call; taken from the system afresh, each 4 KB page of them costs a fault and a zeroed
// page on first touch.
#pragma once
#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <vector>

namespace seqkern {

// 64-byte aligned blocks; those of min_bytes or more wait for reuse when freed. A freed block
// serves the next request of its size, or with `exact` false of up to a quarter less (give then
// takes the size take reported: an allocator that passes back the size it asked for needs
// `exact`). What waits is bounded three ways, so that the cache holds
// about what the calls reuse and no more:
//   - by the most bytes ever in use at once from this cache (a step's outputs and saved arrays:
//     the next step needs no more); with calls of many shapes (lengths that vary), the blocks
//     freed longest ago go first;
//   - by max_bytes in all;
//   - in time: a block left waiting kIdle goes back to the system at the next take or give.
// Thread-safe.
class BlockCache {
 public:
  static constexpr std::chrono::seconds kIdle{10};

  BlockCache(size_t min_bytes, size_t max_bytes, bool exact)
      : min_bytes_(min_bytes), max_bytes_(max_bytes), exact_(exact) {}

  // A block of at least `bytes`; *size says how large, to be passed back to give.
  void* take(size_t bytes, size_t* size);
  void give(void* p, size_t size);

  struct Stats {
    size_t waiting, in_use, peak;  // bytes (blocks of min_bytes or more)
    size_t reused;                 // takes served by a waiting block
  };
  Stats stats();

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiting {
    void* p;
    size_t size;
    Clock::time_point since;
  };
  // Under the lock: unlinks the oldest waiting block and returns it, to be freed after.
  void* pop_oldest();
  // Under the lock: unlinks the blocks that have waited kIdle, into `freed`.
  void expire(Clock::time_point now, std::vector<void*>& freed);

  const size_t min_bytes_, max_bytes_;
  const bool exact_;
  std::mutex mutex_;
  std::list<Waiting> waiting_;  // oldest first
  std::multimap<size_t, std::list<Waiting>::iterator> by_size_;
  size_t waiting_bytes_ = 0, in_use_ = 0, peak_ = 0, reused_ = 0;
};

}  // namespace seqkern
