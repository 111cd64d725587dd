// _core.empty: output arrays whose memory is reused from call to call. A training step allocates
// tens of megabytes of outputs and saved activations (the LSTM's gates alone are T*B*4H values)
// and frees them after backward. glibc maps blocks above 32 MB afresh at every call, and the
// kernel then zeroes each page on first touch inside our kernels: on an LSTM (100,64,512,512)
// training step, page clearing fell from 3.6% to 0.7% of the samples in perf. Blocks of
// kPooledBytes or more therefore come from a cache of freed blocks (at most kCachedBytes held);
// smaller arrays are plain numpy arrays. kPooledBytes is glibc's first mmap threshold: above it
// glibc maps blocks, or heaps them and trims the heap's top back to the system when enough is
// freed at once, so that the next call faults its pages in again. With 1 MiB, an LSTM
// (14,128,16,128) training forward whose outputs were dropped at once took 233 page faults a
// call (its 0.9 MB y and cell states) and 108-136 us a step; at 128 KiB, 7 and 61 us (inference:
// 59 us). Every block starts on a cache line: a team's members write the units of one row side
// by side, and a line astride their units would pass between their cores at each step
// (recurrent.h, Aligned).
#include <algorithm>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "arrays.h"

namespace seqkern::bind {

namespace {

constexpr size_t kPooledBytes = size_t(128) << 10;
// At most this many bytes of freed blocks wait for reuse; beyond it they go back to the system.
constexpr size_t kCachedBytes = size_t(512) << 20;
constexpr std::align_val_t kAlign{64};

class BlockCache {
 public:
  // A block of at least `bytes`: a cached one no more than a quarter larger, else a new one.
  void* take(size_t bytes, size_t* size) {
    {
      std::lock_guard<std::mutex> lk(m_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= bytes + bytes / 4) {
        void* p = it->second;
        *size = it->first;
        cached_ -= it->first;
        free_.erase(it);
        return p;
      }
    }
    *size = bytes;
    return ::operator new(bytes, kAlign);
  }

  void give(void* p, size_t size) {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (cached_ + size <= kCachedBytes) {
        free_.emplace(size, p);
        cached_ += size;
        return;
      }
    }
    ::operator delete(p, kAlign);
  }

 private:
  std::mutex m_;
  std::multimap<size_t, void*> free_;  // by size
  size_t cached_ = 0;
};

BlockCache& cache() {
  static auto* c = new BlockCache;  // never destroyed: arrays may outlive module teardown
  return *c;
}

// A block handed to numpy: the capsule that owns it returns it to the cache when the last array
// using it is gone.
struct Block {
  void* data;
  size_t size;
};

}  // namespace

py::array empty(const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
  size_t bytes = dtype.itemsize();
  for (py::ssize_t n : shape) {
    if (n < 0) throw py::value_error("empty: negative dimension");
    bytes *= static_cast<size_t>(n);
  }
  // numpy fills an array of objects with None (in structured and subarray dtypes too, kind
  // 'V'); memory of our own would hold garbage pointers. (kind(), not the attribute hasobject:
  // looking that up by name was a third of a small array's 1.1 us.)
  if (dtype.kind() == 'O' || dtype.kind() == 'V') return py::array(dtype, shape);
  if (bytes < kPooledBytes) {  // not cached, but on a cache line all the same
    void* data = ::operator new(std::max<size_t>(bytes, 1), kAlign);
    py::capsule owner(data, [](void* p) { ::operator delete(p, kAlign); });
    return py::array(dtype, shape, {}, data, owner);
  }
  size_t size = 0;
  void* data = cache().take(bytes, &size);
  auto* block = new Block{data, size};
  py::capsule owner(block, [](void* b) {
    auto* blk = static_cast<Block*>(b);
    cache().give(blk->data, blk->size);
    delete blk;
  });
  return py::array(dtype, shape, {}, data, owner);
}

void bind_buffers(py::module_& m) {
  m.def("empty", &empty, py::arg("shape"), py::arg("dtype"),
        "np.empty(shape, dtype) on a 64-byte boundary, reusing freed blocks for arrays of "
        "128 KiB or more");
}

}  // namespace seqkern::bind
