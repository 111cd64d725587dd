// Products of a few rows on B in place (few_rows_gemm_avx2.cc), for gemm. (Internal to csrc/cpu.)
#pragma once
#include <cstdint>

namespace seqkern {

// Rows of A up to which gemm runs these kernels (SIMD level avx2 and up, float, A not
// transposed): B stored (N, K), all rows in one pass over B; B stored (K, N), four rows a pass,
// where 8 rows measured 0.67-1.13x BLAS and 5-6 rows 1.05-1.52x (Zen 3, paired).
constexpr int64_t kFewRowsNK = 8;
constexpr int64_t kFewRowsKN = 6;

namespace avx2 {
// Columns [n0, n1) of C (M, N) = alpha * A (M, K) @ op(B) + beta * C, 1 <= M <= kFewRowsNK (B
// stored (N, K), trans_b) or kFewRowsKN (B stored (K, N)). C is not read when beta is 0.
void few_rows_gemm(bool trans_b, int64_t M, int64_t n0, int64_t n1, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc);
}  // namespace avx2

}  // namespace seqkern
