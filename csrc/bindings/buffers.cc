// _core.empty: output arrays whose memory is reused from call to call. A training step allocates
// tens of megabytes of outputs and saved activations (the LSTM's gates alone are T*B*4H values)
// and frees them after backward. glibc maps blocks above 32 MB afresh at every call, and the
// kernel then zeroes each page on first touch inside our kernels: on an LSTM (100,64,512,512)
// training step, page clearing fell from 3.6% to 0.7% of the samples in perf. Blocks of
// kPooledBytes or more therefore come from a cache of freed blocks (block_cache.h: it holds at
// most what was ever in use at once, and lets go of blocks unused for 10 s). kPooledBytes is
// glibc's first mmap threshold: above it glibc maps blocks, or heaps them and trims the heap's
// top back to the system when enough is freed at once, so that the next call faults its pages
// in again. With 1 MiB, an LSTM
// (14,128,16,128) training forward whose outputs were dropped at once took 233 page faults a
// call (its 0.9 MB y and cell states) and 108-136 us a step; at 128 KiB, 7 and 61 us (inference:
// 59 us). Every block starts on a cache line: a team's members write the units of one row side
// by side, and a line astride their units would pass between their cores at each step
// (recurrent.h, Aligned).
#include <vector>

#include "arrays.h"
#include "seqkern/block_cache.h"

namespace seqkern::bind {

namespace {

constexpr size_t kPooledBytes = size_t(128) << 10;

BlockCache& cache() {
  // At most 512 MiB of freed blocks wait (block_cache.h bounds them further).
  static auto* c = new BlockCache(kPooledBytes, size_t(512) << 20, /*exact=*/false);
  return *c;  // never destroyed: arrays may outlive module teardown
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
  size_t size = 0;  // blocks under kPooledBytes are not cached, but on a cache line all the same
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
  m.def("output_cache_stats", [] {
    const BlockCache::Stats s = cache().stats();
    return py::dict(py::arg("waiting") = s.waiting, py::arg("in_use") = s.in_use,
                    py::arg("peak") = s.peak, py::arg("reused") = s.reused);
  }, "_core.empty's blocks of 128 KiB or more: bytes waiting for reuse, in use, and the most "
     "ever in use at once; how many arrays took a waiting block");
}

}  // namespace seqkern::bind
