// C (M, N) = alpha * op(A) op(B) + beta * C, row-major, on the device (no cuBLAS: the backend
// needs only the CUDA runtime). op(A) is (M, K): A (M, K), or A (K, M) when ta; op(B) is (K, N):
// B (K, N), or B (N, K) when tb. beta = 0 never reads C.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace seqkern::cuda {

template <typename T>
void gemm(cudaStream_t stream, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
          const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace seqkern::cuda
