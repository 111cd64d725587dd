// float32 inference weights packed once (seqkern/f32_panels.h).
#include "seqkern/f32_panels.h"

#include <algorithm>
#include <new>

#include "packed_gemm.h"
#include "seqkern/simd.h"
#include "seqkern/threads.h"

namespace seqkern {

F32Panels::F32Panels(const float* w, int64_t ldw, int64_t K_, int64_t N_, int64_t blocks_)
    : K(K_), N(N_), blocks(blocks_) {
#if SEQKERN_X86
  if (simd() == Simd::baseline) return;
  const int64_t width = this->width(), panels = (width + kPanelColumns - 1) / kPanelColumns;
  block_size = avx2::packed_size_f32(K, width);
  data_.reset(static_cast<float*>(
                  ::operator new(blocks * block_size * sizeof(float), std::align_val_t(64))),
              [](float* p) { ::operator delete(p, std::align_val_t(64)); });
  float* out = data_.get();
  parallel_for(blocks * panels, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t q = i / panels, p = i % panels;
      pack_panels_f32(w + q * width * ldw, ldw, true, K, width, p, p + 1, out,
                      PanelLayout{K, panels, 1, blocks}, q);
    }
  });
#else
  (void)w, (void)ldw;
#endif
}

std::shared_ptr<const float> F32Panels::grouped(int64_t group) const {
  std::lock_guard<std::mutex> lock(grouped_->mutex);
  if (grouped_->group == group) return grouped_->data;
  const int64_t width = this->width(), panels = (width + kPanelColumns - 1) / kPanelColumns;
  const PanelLayout layout{K, panels, group, blocks};
  // (the padding of the last groups is never read, and stays uninitialized)
  std::shared_ptr<float> out(static_cast<float*>(::operator new(
                                 layout.lines() * kPanelColumns * sizeof(float),
                                 std::align_val_t(64))),
                             [](float* p) { ::operator delete(p, std::align_val_t(64)); });
  // On this thread, not the pool's: a call running on the pool (a layer's two directions at
  // once) may be waiting for this lock, so it is never held while waiting for the pool.
  for (int64_t q = 0; q < blocks; ++q)
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t k = 0; k < K; ++k)
        std::copy_n(data_.get() + q * block_size + (p * K + k) * kPanelColumns, kPanelColumns,
                    out.get() + layout.offset(q, p, k) * kPanelColumns);
  grouped_->group = group;
  grouped_->data = out;
  return out;
}

}  // namespace seqkern
