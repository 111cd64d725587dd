// float32 inference weights packed once: a recurrent layer's weight matrices in the panels of the
// float micro-kernels (csrc/cpu/packed_gemm.h), so that calls back to back on the same weights
// skip the packing that every call does otherwise (at batch 1, 22% of an LSTM (10,1,256,256)
// call and 7% of a (50,1,256,256) one on Zen 5). The products read them as they would have
// packed them, so the results are those of the same call without them, bit for bit; what such a
// call would hand to BLAS instead (one step, a large w_ih's projection of a few rows) runs on
// them too, with the kernels' rounding.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>

#include "seqkern/stack.h"

namespace seqkern {

// op(W) = W^T (K, N) for W stored (N, K) with row stride ldw, as a team packs it: `blocks`
// column blocks (a layer's gate blocks) of width() = N / blocks columns, each padded to whole
// panels of 16 columns, block q at data() + q * block_size. Empty (data() null) at SIMD level
// baseline, which has no micro-kernels: its products read W where it lies.
class F32Panels {
 public:
  F32Panels() = default;
  F32Panels(const float* w, int64_t ldw, int64_t K, int64_t N, int64_t blocks = 1);

  int64_t K = 0, N = 0, blocks = 1, block_size = 0;
  int64_t width() const { return N / blocks; }
  const float* data() const { return data_.get(); }
  // The same panels grouped `group` at a time (PanelLayout: the blocks' groups interleaved), as a
  // team reads them for products of few rows (a batch of 1 to 3): copied from data() at the
  // first call that asks, kept for the calls after it (and the copies of this object), copied
  // again when a call asks for another group (a team of another size). Calls may ask from
  // several threads.
  std::shared_ptr<const float> grouped(int64_t group) const;

 private:
  struct Grouped {
    std::mutex mutex;
    int64_t group = 0;
    std::shared_ptr<const float> data;  // 64-byte aligned
  };
  std::shared_ptr<float> data_;  // 64-byte aligned
  std::shared_ptr<Grouped> grouped_ = std::make_shared<Grouped>();
};

// One layer-direction's forward weights packed (pack_layer<F32Layer>).
struct F32Layer : LayerMatrices<F32Panels> {};

}  // namespace seqkern
