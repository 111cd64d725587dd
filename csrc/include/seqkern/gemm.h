// Row-major GEMM on the bundled OpenBLAS: C (M, N) = alpha * op(A) @ op(B) + beta * C,
// op(A) (M, K), op(B) (K, N). trans_a means A is stored (K, M), trans_b means B is stored (N, K).
// Float products of a few rows (up to 8; A not transposed) run seqkern's kernels on B in place
// (csrc/cpu/few_rows_gemm.h), as do up to 32 rows against a B of 2 MB or more at level avx512
// (csrc/cpu/in_place_gemm.h); float A^T B over a short sum (K up to 64, C large enough)
// runs seqkern's kernels that write C once (csrc/cpu/small_k_gemm.h). Large products are split
// over rows or columns of C between the pool's threads (a static split, so results are
// reproducible); inside a pool chunk it runs on the calling thread.
#pragma once
#include <cstdint>

namespace seqkern {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// OpenBLAS's own pool: seqkern keeps it at one thread and parallelizes around it.
void blas_set_num_threads(int n);
const char* blas_name();  // e.g. "OpenBLAS 0.3.34 DYNAMIC_ARCH ... (core: Haswell)"

}  // namespace seqkern
