// Products over a short sum, C (M, N) (+)= alpha * A^T B with A stored (K, M) and B (K, N), K up
// to kSmallK: the weight gradients of a step or a few (dw = dg^T x, K = the rows that ran), for
// gemm. (Internal to csrc/cpu.)
//
// BLAS first scales C by beta in a pass of its own, then adds the product into it: with K = 32
// its kernel does 32 multiply-adds per value of C it reads and writes, and the extra pass over
// C costs as much again when C is large (a cell's dw_ih (2048, 2560): 21 MB, 13% of the cell's
// backward on Ice Lake). Here each block of C is summed in registers over all of K and written
// once. Paired against BLAS, 2 threads, Ice Lake: see small_k_gemm_impl.h.
#pragma once
#include <cstdint>

namespace seqkern {

// The longest sum these kernels take: B is packed whole per chunk of columns, and beyond a
// hundred or so values of k BLAS's own blocking catches up.
constexpr int64_t kSmallK = 64;
// ... and the fewest values of C: smaller products are over in microseconds, where packing
// both operands costs more than BLAS's pass over C.
constexpr int64_t kSmallKOutput = int64_t{1} << 16;

// Rows [0, M) of C (M, N) = alpha * A^T B, plus C when accumulate. A stored (K, M) with row
// stride lda, B (K, N) with row stride ldb. The sum of each value runs over k in order, one FMA
// at a time, so it does not depend on M, N, the split between threads or the SIMD level.
namespace avx2 {
void small_k_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc);
}  // namespace avx2
namespace avx512 {
void small_k_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc);
}  // namespace avx512

}  // namespace seqkern
