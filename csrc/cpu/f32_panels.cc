// float32 inference weights packed once (seqkern/f32_panels.h).
#include "seqkern/f32_panels.h"

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
      avx2::pack_panels_f32(w + q * width * ldw, ldw, true, K, width, p, p + 1, out,
                            PanelLayout{K, panels, 1, blocks}, q);
    }
  });
#else
  (void)w, (void)ldw;
#endif
}

}  // namespace seqkern
