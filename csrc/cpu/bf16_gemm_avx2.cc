// The bfloat16 products as float FMAs (AVX2): built with -mavx2 -mfma, called at SIMD level avx2
// (at avx512 without avx512_bf16, bf16_widened_avx512.cc has their 512-bit copy). Each pair row
// of a panel widens to two float vectors (a bfloat16 is the high half of a float), and the sums
// run in the order of the native kernel (bf16_gemm_avx512.cc): row 2kk+1's product, then row
// 2kk's. The weights still stream at half the bytes. Products of many rows take the widened copy
// of the weights instead, with A's rows widened alike (widen_bf16_rows).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "avx2_lanes.h"
#include "packed_gemm.h"

namespace seqkern::avx2 {

namespace {

constexpr int64_t kPanel = kPanelColumns;

// 8 floats' bfloat16 bits (ties to even; NaN stays NaN) in the low halves of 32-bit lanes.
inline __m256i round8(__m256 x) {
  const __m256i b = _mm256_castps_si256(x);
  const __m256i high = _mm256_srli_epi32(b, 16);
  const __m256i odd = _mm256_and_si256(high, _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), odd), 16);
  const __m256i quiet = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

inline uint16_t round1(float x) {
  alignas(32) float v[8] = {x};
  alignas(32) uint32_t r[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(r), round8(_mm256_load_ps(v)));
  return static_cast<uint16_t>(r[0]);
}

}  // namespace

void round_bf16_rows(int64_t M, int64_t K, const float* A, int64_t lda, uint32_t* out,
                     int64_t pairs) {
  for (int64_t m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    uint16_t* o = reinterpret_cast<uint16_t*>(out + m * pairs);
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m256i packed = _mm256_packus_epi32(round8(_mm256_loadu_ps(a + k)),
                                                 round8(_mm256_loadu_ps(a + k + 8)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + k),
                          _mm256_permute4x64_epi64(packed, 0xd8));  // undo packus' lane order
    }
    for (; k < K; ++k) o[k] = round1(a[k]);
    if (K % 2) o[K] = 0;
  }
}

namespace {

// C[0..MR) x NP adjacent panels (n_cols columns of C from the first on), all pair rows; pair
// row kk of panel p at panels + p * stride + kk * row.
template <int MR, int NP>
void block(int64_t pairs, const uint32_t* A, int64_t lda, const uint16_t* panels, int64_t stride,
           int64_t row_step, float* C, int64_t ldc, int64_t n_cols, bool accumulate) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const __m256 high_ps = _mm256_castsi256_ps(high);
  __m256 acc[MR][2 * NP];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int j = 0; j < 2 * NP; ++j) acc[r][j] = _mm256_setzero_ps();
  for (int64_t kk = 0; kk < pairs; ++kk) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      const uint16_t* row = panels + p * stride + kk * row_step;
      // The odd rows' halves masked in the float domain (vandps; the same bits as vpand):
      // paired on Zen 4 at level avx2, two builds, three runs in both orders, bfloat16 eval
      // layers at batch 1: LSTM 1.02-1.03x, GRU 1.01-1.06x, RNN 1.01x; at batch 2 and 4 even.
      // (A one-row harness: 39.6 -> 44 GMAC/s a core.) Not yet run on Zen 3.
      const __m256 w0 = _mm256_loadu_ps(reinterpret_cast<const float*>(row));
      const __m256 w1 = _mm256_loadu_ps(reinterpret_cast<const float*>(row + kPanel));
      const __m256 odd0 = _mm256_and_ps(w0, high_ps);
      const __m256 odd1 = _mm256_and_ps(w1, high_ps);
      const __m256 even0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(w0), 16));
      const __m256 even1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(w1), 16));
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m256i a = _mm256_set1_epi32(static_cast<int>(A[r * lda + kk]));
        const __m256 a_odd = _mm256_castsi256_ps(_mm256_and_si256(a, high));
        const __m256 a_even = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
        acc[r][2 * p] = _mm256_fmadd_ps(a_odd, odd0, acc[r][2 * p]);
        acc[r][2 * p + 1] = _mm256_fmadd_ps(a_odd, odd1, acc[r][2 * p + 1]);
        acc[r][2 * p] = _mm256_fmadd_ps(a_even, even0, acc[r][2 * p]);
        acc[r][2 * p + 1] = _mm256_fmadd_ps(a_even, even1, acc[r][2 * p + 1]);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 16
    for (int h = 0; h < 2; ++h) {
      const int64_t valid = std::clamp<int64_t>(n_cols - p * kPanel - 8 * h, 0, 8);
      if (valid == 0) continue;
      const __m256i mask = first_lanes(valid);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        float* c = C + r * ldc + p * kPanel + 8 * h;
        __m256 v = acc[r][2 * p + h];
        if (accumulate) v = _mm256_add_ps(v, _mm256_maskload_ps(c, mask));
        _mm256_maskstore_ps(c, mask, v);
      }
    }
}

// The block, for pair_panel_rows, in slices (pair_slices).
template <int MR, int NP>
struct PairBlock {
  static void run(int64_t pairs, const uint32_t* A, int64_t lda, const uint16_t* panels,
                  int64_t stride, int64_t row, float* C, int64_t ldc, int64_t n, bool accumulate) {
    pair_slices(block<MR, NP>, pairs, A, lda, panels, stride, row, C, ldc, n, accumulate);
  }
};

// 16 vector registers: at least 8 accumulators where the rows allow, with the 4 widened halves
// of a panel row and a row's 2 broadcasts beside them.
void rows(int64_t mr, PanelLayout l, int64_t q, int64_t p0, const uint32_t* A, int64_t lda,
          const uint16_t* packed, float* C, int64_t ldc, int64_t N, bool acc) {
  switch (mr) {
    case 1: pair_panel_rows<PairBlock, 1, 4>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 2: pair_panel_rows<PairBlock, 2, 2>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    case 3: pair_panel_rows<PairBlock, 3, 1>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
    default: pair_panel_rows<PairBlock, 4, 1>(l, q, p0, A, lda, packed, C, ldc, N, acc); break;
  }
}

}  // namespace

void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks) {
  thread_local std::vector<uint32_t> a16;
  bf16_rows_product(M, K, N, A, lda, packed, C, ldc, accumulate, blocks, a16, round_bf16_rows,
                    [](int64_t left) { return std::min<int64_t>(4, left); }, rows);
}

void widen_bf16_rows(int64_t M, int64_t K, const float* A, int64_t lda, std::vector<float>& out) {
  const int64_t pairs = (K + 1) / 2;
  thread_local std::vector<uint32_t> a16;
  a16.resize(M * pairs);
  out.resize(M * 2 * pairs);
  round_bf16_rows(M, K, A, lda, a16.data(), pairs);
  for (int64_t i = 0; i < M * pairs; ++i) {  // pair i: (row 2kk + 1, row 2kk) of its row of A
    out[2 * i] = from_bf16(static_cast<uint16_t>(a16[i] >> 16));
    out[2 * i + 1] = from_bf16(static_cast<uint16_t>(a16[i]));
  }
}

}  // namespace seqkern::avx2
