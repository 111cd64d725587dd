// Products of a few rows on B in place (few_rows_gemm_avx2.cc), for gemm. (Internal to csrc/cpu.)
#pragma once
#include <cstdint>

namespace seqkern {

// Rows of A up to which gemm runs these kernels (SIMD level avx2 and up, float, A not
// transposed), all of them in one pass over B. B stored (K, N) holds 4 rows' sums to a store
// each: more rows would take a second pass, which cost more than BLAS's packing once B left the
// cache (Zen 3: 6 rows, B (2048, 4096), 0.86-0.90x BLAS; 8 rows 0.67-1.13x).
constexpr int64_t kFewRowsNK = 8;
constexpr int64_t kFewRowsKN = 4;

namespace avx2 {
// Columns [n0, n1) of C (M, N) = alpha * A (M, K) @ op(B) + beta * C, 1 <= M <= kFewRowsNK (B
// stored (N, K), trans_b) or kFewRowsKN (B stored (K, N)). C is not read when beta is 0. N, all
// of C's columns, not only the call's, sets how the kernels read B (few_rows_gemm_avx2.cc).
void few_rows_gemm(bool trans_b, int64_t M, int64_t N, int64_t n0, int64_t n1, int64_t K,
                   float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                   float beta, float* C, int64_t ldc);
}  // namespace avx2

}  // namespace seqkern
