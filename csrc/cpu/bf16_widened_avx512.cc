// The bfloat16 products as float FMAs at AVX-512, for CPUs without avx512_bf16 (Intel's Skylake
// to Ice Lake servers): built with AVX-512 F/BW/DQ/VL, called only at SIMD level avx512 where
// bf16_native() is false. The AVX2 kernel's scheme (bf16_gemm_avx2.cc) on 512-bit vectors: a
// pair row of a panel (16 columns x rows 2kk, 2kk+1) widens to two float vectors, and the sums
// run in its order (row 2kk+1's product, then row 2kk's), so every level that widens gives the
// same bits, and the products of many rows, on the widened copy (bf16_gemm in bf16.cc), too.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "avx512_tiles.h"
#include "packed_gemm.h"

namespace seqkern::avx512 {

namespace {

using avx512_tiles::store_tile;

// C[0..MR) x NP adjacent panels (n_cols columns of C from the first on), `pairs` pair rows.
//   A (MR rows of bf16 pairs, stride lda): pair kk holds values 2kk (low half) and 2kk+1
//   panels: pair row kk of panel p at panels + p * stride + kk * row
template <int MR, int NP>
void block(int64_t pairs, const uint32_t* A, int64_t lda, const uint16_t* panels, int64_t stride,
           int64_t row, float* C, int64_t ldc, int64_t n_cols, bool accumulate) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  __m512 acc[MR][NP];  // every loop over r and p is unrolled, so acc stays in registers
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < pairs; ++kk) {
    __m512 odd[NP], even[NP];  // a bfloat16 is the high half of a float
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      const __m512i v = _mm512_loadu_si512(panels + p * stride + kk * row);
      odd[p] = _mm512_castsi512_ps(_mm512_and_si512(v, high));
      even[p] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i a = _mm512_set1_epi32(static_cast<int>(A[r * lda + kk]));
      const __m512 a_odd = _mm512_castsi512_ps(_mm512_and_si512(a, high));
      const __m512 a_even = _mm512_castsi512_ps(_mm512_slli_epi32(a, 16));
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        acc[r][p] = _mm512_fmadd_ps(a_odd, odd[p], acc[r][p]);
        acc[r][p] = _mm512_fmadd_ps(a_even, even[p], acc[r][p]);
      }
    }
  }
  store_tile(acc, C, ldc, n_cols, accumulate);
}

// The block, for pair_panel_rows, in slices (pair_slices).
template <int MR, int NP>
struct PairBlock {
  static void run(int64_t pairs, const uint32_t* A, int64_t lda, const uint16_t* panels,
                  int64_t stride, int64_t row, float* C, int64_t ldc, int64_t n, bool accumulate) {
    pair_slices(block<MR, NP>, pairs, A, lda, panels, stride, row, C, ldc, n, accumulate);
  }
};

// 32 vector registers: MR * NP accumulators, at least 8 (the FMA latency over its two units on
// Intel's cores), beside a panel row's 2 * NP widened halves and a row's 2 broadcasts.
void rows(int64_t mr, PanelLayout l, int64_t q, int64_t p0, const uint32_t* A, int64_t lda,
          const uint16_t* packed, float* C, int64_t ldc, int64_t N, bool acc) {
  switch (mr) {
    case 1: pair_panel_rows<PairBlock, 1, 8>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 2: pair_panel_rows<PairBlock, 2, 6>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 3: pair_panel_rows<PairBlock, 3, 4>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    default: pair_panel_rows<PairBlock, 4, 3>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
  }
}

}  // namespace

void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks) {
  thread_local std::vector<uint32_t> a16;
  bf16_rows_product(M, K, N, A, lda, packed, C, ldc, accumulate, blocks, a16,
                    avx2::round_bf16_rows, [](int64_t left) { return std::min<int64_t>(4, left); },
                    rows);
}

}  // namespace seqkern::avx512
