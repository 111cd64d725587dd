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

// Products of a few rows (these, and in_place_gemm.h's with B stored (N, K)) read a B of this
// size (16 MiB) or more as from memory: half Zen 4's L3, which a B read at every call no longer
// kept. There they read B's rows in order (one stream) rather than many rows side by side: one
// row against B (N, K), 2 threads, paired, side by side / in order, B of 12 MB 0.63-0.68x (from
// L3 side by side is faster), 16.4 MB 1.20x, 20 MB 1.54x, 24 MB 1.63-2.02x, 51 MB 1.84-1.90x;
// one thread 12 MB 0.90x, 16.4 MB 1.68x, 24 and 51 MB 2.51x.
constexpr int64_t kFromMemoryBytes = int64_t{16} << 20;

namespace avx2 {
// Columns [n0, n1) of C (M, N) = alpha * A (M, K) @ op(B) + beta * C, 1 <= M <= kFewRowsNK (B
// stored (N, K), trans_b) or kFewRowsKN (B stored (K, N)). C is not read when beta is 0.
// from_memory: B is of kFromMemoryBytes or more (all of it, not only the call's columns).
void few_rows_gemm(bool trans_b, int64_t M, int64_t n0, int64_t n1, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc, bool from_memory);
}  // namespace avx2

}  // namespace seqkern
