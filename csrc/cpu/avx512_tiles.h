// Lane masks, tile stores and transposes for the files built with AVX-512 (*_avx512.cc), and only
// for them: an AVX-512 instruction in a header that a baseline file includes could run on a CPU
// without it.
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

// The first two steps of transposing rows held one per vector: within each 128-bit lane, the 4 x
// 4 transpose of each four vectors (unpack, then shuffle): out[4g + c], lane L, holds value c of
// lane L of r[4g..4g+3], that is column 4L + c of those four rows. out may be r.
template <int N>
__attribute__((always_inline)) static inline void transpose_in_lanes(const __m512 (&r)[N],
                                                                     __m512 (&out)[N]) {
  static_assert(N % 4 == 0, "rows in fours");
  __m512 t[N];
#pragma GCC unroll 16
  for (int i = 0; i < N; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < N; i += 4) {
    out[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    out[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    out[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    out[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
}

// A 16 x 16 tile transposed in registers: cols[j] holds value j of each of r[0..16), in order.
// After transpose_in_lanes, 128-bit lanes move in pairs, then in fours.
__attribute__((always_inline)) static inline void transpose16(const __m512 (&r)[16],
                                                              __m512 (&cols)[16]) {
  __m512 u[16];
  transpose_in_lanes(r, u);
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {  // u[4g + c], lane L: value 4L + c of rows 4g..4g+3
    const __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    const __m512 x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 y0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 y1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    cols[c] = _mm512_shuffle_f32x4(x0, y0, 0x88);
    cols[4 + c] = _mm512_shuffle_f32x4(x1, y1, 0x88);
    cols[8 + c] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
    cols[12 + c] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
  }
}

}  // namespace seqkern::avx512_tiles
