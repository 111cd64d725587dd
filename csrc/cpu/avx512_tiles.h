// Lane masks and tile stores for the files built with AVX-512 (*_avx512.cc), and only for them:
// an AVX-512 instruction in a header that a baseline file includes could run on a CPU without it.
// static: each file keeps its own copy (they are built with different target flags), as
// avx2_lanes.h's helpers are.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "packed_gemm.h"

namespace seqkern::avx512_tiles {

static_assert(kPanelColumns == 16, "a panel row is one 512-bit vector");

// The lanes of a panel that hold one of its n valid columns (n clamped to 0..16).
static inline __mmask16 lane_mask(int64_t n) {
  return static_cast<__mmask16>((1u << std::clamp<int64_t>(n, 0, kPanelColumns)) - 1);
}

// A block's sums into C: rows [0, MR) x NP adjacent panels, the n_cols columns of C from the
// first panel on; added to what C holds when accumulate. Inlined, so acc stays in registers.
template <int MR, int NP>
__attribute__((always_inline)) static inline void store_tile(const __m512 (&acc)[MR][NP], float* C,
                                                             int64_t ldc, int64_t n_cols,
                                                             bool accumulate) {
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    const __mmask16 mask = lane_mask(n_cols - p * kPanelColumns);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      float* c = C + r * ldc + p * kPanelColumns;
      __m512 v = acc[r][p];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, c));
      _mm512_mask_storeu_ps(c, mask, v);
    }
  }
}

}  // namespace seqkern::avx512_tiles
