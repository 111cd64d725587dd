// BlockCache: freed blocks kept for reuse, bounded by the most ever in use, a total and an age.
#include "seqkern/block_cache.h"

#include <algorithm>
#include <iterator>
#include <new>

namespace seqkern {

namespace {

constexpr std::align_val_t kAlign{64};

void release(const std::vector<void*>& blocks) {
  for (void* p : blocks) ::operator delete(p, kAlign);
}

}  // namespace

void* BlockCache::pop_oldest() {
  const auto oldest = waiting_.begin();
  auto [first, last] = by_size_.equal_range(oldest->size);
  while (first->second != oldest) ++first;  // one of the blocks of its size (first != last)
  by_size_.erase(first);
  waiting_bytes_ -= oldest->size;
  void* p = oldest->p;
  waiting_.erase(oldest);
  return p;
}

void BlockCache::expire(Clock::time_point now, std::vector<void*>& freed) {
  while (!waiting_.empty() && now - waiting_.front().since > kIdle) freed.push_back(pop_oldest());
}

void* BlockCache::take(size_t bytes, size_t* size) {
  *size = bytes;
  if (bytes < min_bytes_) return ::operator new(std::max<size_t>(bytes, 1), kAlign);
  std::vector<void*> freed;
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    expire(Clock::now(), freed);
    const auto it = by_size_.lower_bound(bytes);
    if (it != by_size_.end() && it->first <= (exact_ ? bytes : bytes + bytes / 4)) {
      p = it->second->p;
      *size = it->first;
      waiting_bytes_ -= it->first;
      waiting_.erase(it->second);
      by_size_.erase(it);
      in_use_ += *size;
      peak_ = std::max(peak_, in_use_);
      ++reused_;
    }
  }
  release(freed);
  if (p) return p;
  p = ::operator new(bytes, kAlign);  // outside the lock, and counted only once it is there
  std::lock_guard<std::mutex> lock(mutex_);
  in_use_ += bytes;
  peak_ = std::max(peak_, in_use_);
  return p;
}

void BlockCache::give(void* p, size_t size) {
  if (size < min_bytes_) {
    ::operator delete(p, kAlign);
    return;
  }
  std::vector<void*> freed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_ -= size;
    const auto now = Clock::now();
    expire(now, freed);
    const size_t bound = std::min(max_bytes_, peak_);
    if (size <= bound) {
      waiting_.push_back({p, size, now});
      by_size_.emplace(size, std::prev(waiting_.end()));
      waiting_bytes_ += size;
      while (waiting_bytes_ > bound) freed.push_back(pop_oldest());
    } else {
      freed.push_back(p);
    }
  }
  release(freed);
}

BlockCache::Stats BlockCache::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  return {waiting_bytes_, in_use_, peak_, reused_};
}

}  // namespace seqkern
