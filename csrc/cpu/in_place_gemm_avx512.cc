// in_place_gemm (in_place_gemm.h) on AVX-512; built with AVX-512 F/BW/DQ/VL and FMA, called only
// at SIMD level avx512 (seqkern/simd.h).
//
// A block of 12 rows x 32 columns sums in 24 zmm registers: each k loads two vectors of B's slice
// and broadcasts 12 values of A. A's rows come packed in blocks of 12 ([k][row], alpha applied):
// rows of A a multiple of 4 KB apart (dg of H = 256 or 512: 4 or 8 KB) fell into one set of L1
// and ran at 23-29 GFLOP/s. C's block is loaded before each chunk of k and stored after it (C
// holds beta * C, or zeros, before the first): 48 loads and stores for 48 x 24 FMAs.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "avx512_tiles.h"
#include "in_place_gemm.h"

namespace seqkern::avx512 {

namespace {

using avx512_tiles::lane_mask;

constexpr int kRows = 12;

// C[0..R) x 32 columns (masks m0, m1 for the two vectors) += the packed block a (kc x kRows) @
// kc rows of B from B on. R is a template argument and every loop over rows unrolled, so that
// the accumulators stay in registers.
template <int R>
void block(int64_t kc, const float* a, const float* B, int64_t ldb, float* C, int64_t ldc,
           __mmask16 m0, __mmask16 m1) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    acc[r][0] = _mm512_maskz_loadu_ps(m0, C + r * ldc);
    acc[r][1] = _mm512_maskz_loadu_ps(m1, C + r * ldc + 16);
  }
  for (int64_t k = 0; k < kc; ++k, a += kRows, B += ldb) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, B), b1 = _mm512_maskz_loadu_ps(m1, B + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, acc[r][0]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, acc[r][1]);
  }
}

// block<rows> for 1 <= rows <= kRows.
template <int R = kRows>
void block_rows(int64_t rows, int64_t kc, const float* a, const float* B, int64_t ldb, float* C,
                int64_t ldc, __mmask16 m0, __mmask16 m1) {
  if constexpr (R > 1) {
    if (rows < R) return block_rows<R - 1>(rows, kc, a, B, ldb, C, ldc, m0, m1);
  }
  block<R>(kc, a, B, ldb, C, ldc, m0, m1);
}

}  // namespace

void in_place_pack_rows(int64_t M, int64_t K, float alpha, const float* A, int64_t lda,
                        float* out) {
  const int64_t blocks = (M + kRows - 1) / kRows;
  for (int64_t k0 = 0; k0 < K; k0 += kInPlaceDepth) {
    const int64_t kc = std::min(kInPlaceDepth, K - k0);
    for (int64_t i = 0; i < blocks; ++i, out += kInPlaceDepth * kRows) {
      const int64_t rows = std::min<int64_t>(kRows, M - i * kRows);
      for (int64_t r = 0; r < kRows; ++r) {
        const float* a = A + (i * kRows + r) * lda + k0;
        for (int64_t k = 0; k < kc; ++k) out[k * kRows + r] = r < rows ? alpha * a[k] : 0.0f;
      }
    }
  }
}

void in_place_gemm(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* packed,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (n1 <= n0) return;
  for (int64_t m = 0; m < M; ++m) {  // C = beta * C: the chunks then add into it
    float* c = C + m * ldc;
    for (int64_t n = n0; n < n1; ++n) c[n] = beta == 0.0f ? 0.0f : beta * c[n];
  }
  const int64_t blocks = (M + kRows - 1) / kRows;
  for (int64_t k0 = 0; k0 < K; k0 += kInPlaceDepth, packed += blocks * kInPlaceDepth * kRows) {
    const int64_t kc = std::min(kInPlaceDepth, K - k0);
    for (int64_t n = n0; n < n1; n += 32) {
      const __mmask16 m0 = lane_mask(n1 - n), m1 = lane_mask(n1 - n - 16);
      alignas(64) float slice[kInPlaceDepth * 32];
      const float* b = B + k0 * ldb + n;
      for (int64_t k = 0; k < kc; ++k, b += ldb) {
        _mm512_store_ps(slice + k * 32, _mm512_maskz_loadu_ps(m0, b));
        _mm512_store_ps(slice + k * 32 + 16, _mm512_maskz_loadu_ps(m1, b + 16));
      }
      for (int64_t i = 0; i < blocks; ++i)
        block_rows(std::min<int64_t>(kRows, M - i * kRows), kc,
                   packed + i * kInPlaceDepth * kRows, slice, 32, C + i * kRows * ldc + n, ldc,
                   m0, m1);
    }
  }
}

}  // namespace seqkern::avx512
