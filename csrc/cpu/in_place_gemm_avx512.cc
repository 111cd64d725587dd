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
#include <vector>

#include "avx512_tiles.h"
#include "in_place_gemm.h"

namespace seqkern::avx512 {

namespace {

using avx512_tiles::lane_mask;

constexpr int kRows = kInPlaceBlockRows;

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

// out[c * ldo + i] = r[i][c] for i, c < 16: a 16 x 16 tile transposed in registers.
inline void store_transposed16(const __m512 (&r)[16], float* out, int64_t ldo) {
  __m512 cols[16];
  avx512_tiles::transpose16(r, cols);
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c) _mm512_store_ps(out + c * ldo, cols[c]);
}

// C = beta * C on columns [n0, n1) (zeros when beta is 0: C is not read), before the chunks of
// k add into it.
void scale_columns(int64_t M, int64_t n0, int64_t n1, float beta, float* C, int64_t ldc) {
  // beta = 1 (a product added to C: a step's recurrent product onto its projection) changes no
  // bit, and the pass read and wrote C for nothing: torch's cells' no_grad steps 1.05-1.16x
  // (Ice Lake, paired: LSTMCell (32, 256, 256) 1.16x, (64, 256, 256) 1.15x, (12, 512, 512)
  // 1.05x; GRUCell (32, 256, 256) 1.11x).
  if (beta == 1.0f) return;
  for (int64_t m = 0; m < M; ++m) {
    float* c = C + m * ldc;
    for (int64_t n = n0; n < n1; ++n) c[n] = beta == 0.0f ? 0.0f : beta * c[n];
  }
}

// Every block of rows of one chunk of packed A (in_place_pack_rows; kc values of k) over a slice
// (kc x 32, the columns of C from C on, masks m0 and m1).
void rows_over_slice(int64_t M, int64_t kc, const float* a, const float* slice, float* C,
                     int64_t ldc, __mmask16 m0, __mmask16 m1) {
  for (int64_t i = 0; i * kRows < M; ++i)
    block_rows(std::min<int64_t>(kRows, M - i * kRows), kc, a + i * kInPlaceDepth * kRows, slice,
               32, C + i * kRows * ldc, ldc, m0, m1);
}

}  // namespace

const float* in_place_pack_rows(int64_t M, int64_t K, float alpha, const float* A, int64_t lda) {
  thread_local std::vector<float> buffer;
  const int64_t blocks = (M + kRows - 1) / kRows;
  buffer.resize(blocks * kRows * ((K + kInPlaceDepth - 1) / kInPlaceDepth * kInPlaceDepth));
  float* out = buffer.data();
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
  return buffer.data();
}

void in_place_gemm(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* packed,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (n1 <= n0) return;
  scale_columns(M, n0, n1, beta, C, ldc);
  const int64_t chunk = (M + kRows - 1) / kRows * kInPlaceDepth * kRows;  // packed A's, per chunk
  for (int64_t k0 = 0; k0 < K; k0 += kInPlaceDepth, packed += chunk) {
    const int64_t kc = std::min(kInPlaceDepth, K - k0);
    for (int64_t n = n0; n < n1; n += 32) {
      const __mmask16 m0 = lane_mask(n1 - n), m1 = lane_mask(n1 - n - 16);
      alignas(64) float slice[kInPlaceDepth * 32];
      const float* b = B + k0 * ldb + n;
      for (int64_t k = 0; k < kc; ++k, b += ldb) {
        _mm512_store_ps(slice + k * 32, _mm512_maskz_loadu_ps(m0, b));
        _mm512_store_ps(slice + k * 32 + 16, _mm512_maskz_loadu_ps(m1, b + 16));
      }
      rows_over_slice(M, kc, packed, slice, C + n, ldc, m0, m1);
    }
  }
}

void in_place_gemm_nt(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* packed,
                      const float* W, int64_t ldw, float beta, float* C, int64_t ldc,
                      bool from_memory) {
  if (n1 <= n0) return;
  scale_columns(M, n0, n1, beta, C, ldc);
  const int64_t chunk = (M + kRows - 1) / kRows * kInPlaceDepth * kRows;  // packed A's, per chunk
  for (int64_t n = n0; n < n1; n += 32) {
    const __mmask16 m0 = lane_mask(n1 - n), m1 = lane_mask(n1 - n - 16);
    const float* a = packed;
    for (int64_t k0 = 0; k0 < K; k0 += kInPlaceDepth, a += chunk) {
      const int64_t kc = std::min(kInPlaceDepth, K - k0);
      alignas(64) float slice[kInPlaceDepth * 32];
      for (int64_t kt = 0; kt < kc; kt += 16) {  // 16 x 16 tiles of W's rows n.., columns k0 + kt..
        const __mmask16 lanes = lane_mask(kc - kt);
        for (int64_t h = 0; h < 2; ++h) {
          __m512 r[16];
#pragma GCC unroll 16
          for (int i = 0; i < 16; ++i)
            r[i] = n + h * 16 + i < n1
                       ? _mm512_maskz_loadu_ps(lanes, W + (n + h * 16 + i) * ldw + k0 + kt)
                       : _mm512_setzero_ps();
          if (from_memory && n + 64 <= n1)  // the same tile of the next 32 rows
#pragma GCC unroll 16
            for (int i = 0; i < 16; ++i)
              _mm_prefetch(reinterpret_cast<const char*>(W + (n + 32 + h * 16 + i) * ldw + k0 + kt),
                           _MM_HINT_T0);
          store_transposed16(r, slice + kt * 32 + h * 16, 32);
        }
      }
      rows_over_slice(M, kc, a, slice, C + n, ldc, m0, m1);
    }
  }
}

}  // namespace seqkern::avx512
