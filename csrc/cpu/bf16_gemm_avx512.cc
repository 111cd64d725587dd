// The bfloat16 products on the CPU's bf16 dot products (AVX-512 BF16): built with AVX-512 F/BW/DQ/VL
// and BF16, called only at SIMD level avx512 on CPUs with avx512_bf16 (bf16_native()). One
// vdpbf16ps takes a pair row of a panel (16 columns x 2 rows of W) and a pair of A's values
// broadcast, and adds both products to 16 float sums: twice the multiply-adds of a float FMA per
// instruction, on half the bytes of W.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "avx512_tiles.h"
#include "packed_gemm.h"
#include "rider_avx512.h"

namespace seqkern::avx512bf16 {

using avx512_tiles::lane_mask;
using avx512_tiles::store_tile;

namespace {

constexpr int64_t kPanel = kPanelColumns;

}  // namespace

void round_rows(int64_t M, int64_t K, const float* A, int64_t lda, uint32_t* out, int64_t pairs) {
  for (int64_t m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    uint16_t* o = reinterpret_cast<uint16_t*>(out + m * pairs);
    for (int64_t k = 0; k < K; k += 2 * kPanel) {
      const int64_t n = K - k;
      const __m512 lo = _mm512_maskz_loadu_ps(lane_mask(n), a + k);
      const __m512 hi = _mm512_maskz_loadu_ps(lane_mask(n - kPanel), a + k + kPanel);
      const __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);
      const __mmask32 keep = n >= 32 ? ~__mmask32(0) : static_cast<__mmask32>((1u << n) - 1);
      _mm512_mask_storeu_epi16(o + k, keep, reinterpret_cast<const __m512i&>(v));
    }
    if (K % 2) o[K] = 0;
  }
}

namespace {

// C[0..MR) x NP adjacent panels (n_cols columns of C from the first on), all pair rows.
//   A (MR rows of `pairs` bf16 pairs, stride lda)
//   panels: pair row kk of panel p at panels + p * stride + kk * row
template <int MR, int NP>
void block(int64_t pairs, const uint32_t* A, int64_t lda, const uint16_t* panels, int64_t stride,
           int64_t row, float* C, int64_t ldc, int64_t n_cols, bool accumulate) {
  __m512 acc[MR][NP];  // every loop over r and p is unrolled, so acc stays in registers
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < pairs; ++kk) {
    __m512bh w[NP];
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      const __m512i v = _mm512_loadu_si512(panels + p * stride + kk * row);
      w[p] = reinterpret_cast<const __m512bh&>(v);
    }
    // (in registers, each load serving the MR rows: see packed_gemm_avx512.cc's block)
    if constexpr (MR == 2 || MR == 3)
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) asm("" : "+v"(w[p]));
    const uint32_t* a_kk = A + kk;  // stepped row by row, as packed_gemm_avx512.cc's block says
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i a = _mm512_set1_epi32(static_cast<int>(*a_kk));
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p)
        acc[r][p] = _mm512_dpbf16_ps(acc[r][p], reinterpret_cast<const __m512bh&>(a), w[p]);
      if (r + 1 < MR) a_kk += lda;
    }
  }
  store_tile(acc, C, ldc, n_cols, accumulate);
}

// The block, for pair_panel_rows.
template <int MR, int NP>
struct PairBlock {
  static void run(int64_t pairs, const uint32_t* A, int64_t lda, const uint16_t* panels,
                  int64_t stride, int64_t row, float* C, int64_t ldc, int64_t n, bool accumulate) {
    block<MR, NP>(pairs, A, lda, panels, stride, row, C, ldc, n, accumulate);
  }
};

// Rows [0, mr) against every panel. MR * NP accumulators: at least 8 (the dot product's latency
// over its two units), at most 24 beside the NP panel rows.
void rows(int64_t mr, PanelLayout l, int64_t q, int64_t p0, const uint32_t* A, int64_t lda,
          const uint16_t* packed, float* C, int64_t ldc, int64_t N, bool acc) {
  switch (mr) {
    case 1: pair_panel_rows<PairBlock, 1, 8>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 2: pair_panel_rows<PairBlock, 2, 6>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 3: pair_panel_rows<PairBlock, 3, 4>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 4: pair_panel_rows<PairBlock, 4, 4>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 5: pair_panel_rows<PairBlock, 5, 3>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 6: pair_panel_rows<PairBlock, 6, 3>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 7: pair_panel_rows<PairBlock, 7, 3>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 8: pair_panel_rows<PairBlock, 8, 2>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 9: pair_panel_rows<PairBlock, 9, 2>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 10: pair_panel_rows<PairBlock, 10, 2>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 11: pair_panel_rows<PairBlock, 11, 2>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    default: pair_panel_rows<PairBlock, 12, 2>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
  }
}

// Rows of the next block when `left` remain: up to 12, two nearly equal blocks for 13-19.
inline int64_t block_rows(int64_t left) {
  if (left <= 12) return left;
  if (left < 20) return (left + 1) / 2;
  return 12;
}

// The rider's bfloat16 pair panel rows: a pair of X's values broadcast, W's pair rows (16
// columns x 2 rows) in vectors, one dot product adding both.
struct Bf16Ops {
  using X = uint32_t;
  using W = uint16_t;
  static constexpr int64_t kLine = kPairRow;
  static __m512i broadcast(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
  static __m512i load(const uint16_t* w) { return _mm512_loadu_si512(w); }
  static __m512 dot(__m512 sum, __m512i a, __m512i w) {
    return _mm512_dpbf16_ps(sum, reinterpret_cast<const __m512bh&>(a),
                            reinterpret_cast<const __m512bh&>(w));
  }
};

// The step's block of one row against a run of 8 grouped pair panels (block<1, 8>, panel rows
// side by side), with the rider's units (Rider::bf16_panels) in its loop over pairs: one rider
// iteration (2 pair rows, 16 dot products) after every kRatio pairs, as long as the rider has
// iterations left; kRatio 0: the rider alone (pairs, A, run and C unused). Each sum is the same
// chain of dot products, in the same order, as block's: the same bits.
template <int kRatio>
void riding_block(int64_t pairs, const uint32_t* A, const uint16_t* run, float* C,
                  int64_t n_cols, bool accumulate, Rider& rd) {
  constexpr int NP = 8;
  __m512 acc[1][NP], sums[2 * kPanelRiderRows];
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) acc[0][p] = _mm512_setzero_ps();
  avx512_rider::load_sums(rd, sums);
  const auto step = [&](int64_t kk) __attribute__((always_inline)) {
    const uint16_t* b = run + kk * (NP * kPairRow);
    const __m512i a = Bf16Ops::broadcast(A[kk]);
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p)
      acc[0][p] = Bf16Ops::dot(acc[0][p], a, Bf16Ops::load(b + p * kPairRow));
  };
  int64_t kk = 0;
  avx512_rider::panel_units<Bf16Ops, kRatio>(rd, sums, step, kk, pairs);
  avx512_rider::save_sums(rd, sums);
  if constexpr (kRatio > 0) {
    for (; kk < pairs; ++kk) step(kk);
    store_tile(acc, C, 0, n_cols, accumulate);
  }
}

// The step's block with the rider at its ratio.
void riding_block8(int64_t pairs, const uint32_t* A, const uint16_t* run, float* C,
                   int64_t n_cols, bool accumulate, Rider& rd) {
  switch (rd.ratio) {
    case 1: return riding_block<1>(pairs, A, run, C, n_cols, accumulate, rd);
    case 2: return riding_block<2>(pairs, A, run, C, n_cols, accumulate, rd);
    case 3: return riding_block<3>(pairs, A, run, C, n_cols, accumulate, rd);
    default: return riding_block<4>(pairs, A, run, C, n_cols, accumulate, rd);
  }
}

}  // namespace

void bf16_row_riding(int64_t K, int64_t N, const float* A, const uint16_t* packed, float* C,
                     bool accumulate, ColumnBlocks blocks, Rider& rider) {
  thread_local std::vector<uint32_t> a16;
  const int64_t pairs = (K + 1) / 2;
  // bf16_gemm's one row, its runs of 8 grouped panels (n columns from panel p on) carrying the
  // rider while it has work
  const auto row = [&](int64_t mr, PanelLayout l, int64_t q, int64_t p, const uint32_t* a,
                       int64_t lda, const uint16_t* w, float* c, int64_t ldc, int64_t n,
                       bool acc) {
    if ((n + kPanel - 1) / kPanel == 8 && rider.left > 0 && !rider.done)
      riding_block8(pairs, a, w + l.offset(q, p, 0) * kPairRow, c, n, acc, rider);
    else
      rows(mr, l, q, p, a, lda, w, c, ldc, n, acc);
  };
  bf16_rows_product(1, K, N, A, K, packed, C, 0, accumulate, blocks, a16, round_rows, block_rows,
                    row);
}

void ride(Rider& rider) {
  while (rider.left > 0 && !rider.done)
    riding_block<0>(0, nullptr, nullptr, nullptr, 0, false, rider);
}

void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks) {
  thread_local std::vector<uint32_t> a16;
  bf16_rows_product(M, K, N, A, lda, packed, C, ldc, accumulate, blocks, a16, round_rows,
                    block_rows, rows);
}

}  // namespace seqkern::avx512bf16
