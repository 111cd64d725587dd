// A tiled GEMM: each block computes a 64x64 tile of C, staging 16-wide slices of op(A) and op(B)
// in shared memory; each of its 256 threads keeps a 4x4 grid of outputs strided by 16, so the
// shared-memory reads of a warp fall in distinct banks. Loads walk the contiguous index of each
// operand (k for A, n for B, or m / k when transposed), so a warp reads whole lines.
#include "check.cuh"
#include "gemm.cuh"
#include "seqkern/cuda_ops.h"

namespace seqkern::cuda {
namespace {

constexpr int kTile = 64, kDepth = 16, kThreads = 256;

template <typename T, bool TA, bool TB>
__global__ void __launch_bounds__(kThreads)
gemm_tile(int64_t M, int64_t N, int64_t K, T alpha, const T* __restrict__ A, int64_t lda,
          const T* __restrict__ B, int64_t ldb, T beta, T* __restrict__ C, int64_t ldc) {
  __shared__ T As[kDepth][kTile + 1];  // As[k][m] = op(A)[m0 + m, k0 + k]
  __shared__ T Bs[kDepth][kTile + 1];  // Bs[k][n] = op(B)[k0 + k, n0 + n]
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  // Rows of tiles on x, whose grid dimension reaches 2^31 - 1 (T*B rows can pass y's 65535 tiles)
  const int64_t m0 = int64_t(blockIdx.x) * kTile, n0 = int64_t(blockIdx.y) * kTile;
  T acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
#pragma unroll
    for (int l = 0; l < kTile * kDepth / kThreads; ++l) {
      const int idx = tid + l * kThreads;
      // op(A): contiguous along k when A is (M, K), along m when it is (K, M)
      const int am = TA ? idx % kTile : idx / kDepth, ak = TA ? idx / kTile : idx % kDepth;
      const int64_t gm = m0 + am, gk = k0 + ak;
      As[ak][am] = gm < M && gk < K ? A[TA ? gk * lda + gm : gm * lda + gk] : T(0);
      // op(B): contiguous along n when B is (K, N), along k when it is (N, K)
      const int bn = TB ? idx / kDepth : idx % kTile, bk = TB ? idx % kDepth : idx / kTile;
      const int64_t gn = n0 + bn, gk2 = k0 + bk;
      Bs[bk][bn] = gn < N && gk2 < K ? B[TB ? gn * ldb + gk2 : gk2 * ldb + gn] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kDepth; ++k) {
      T a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx + 16 * j;
      if (n >= N) continue;
      T* c = C + m * ldc + n;
      *c = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *c;
    }
  }
}

template <typename T, bool TA, bool TB>
void launch(cudaStream_t stream, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
            int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const dim3 grid(blocks_for(M, kTile), blocks_for(N, kTile));
  gemm_tile<T, TA, TB><<<grid, kThreads, 0, stream>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  check_launch("gemm");
}

}  // namespace

template <typename T>
void gemm(cudaStream_t stream, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
          const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (ta)
    tb ? launch<T, true, true>(stream, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
       : launch<T, true, false>(stream, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    tb ? launch<T, false, true>(stream, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
       : launch<T, false, false>(stream, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
void matmul(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C,
            void* stream) {
  gemm<T>(static_cast<cudaStream_t>(stream), ta, tb, M, N, K, T(1), A, ta ? M : K, B,
          tb ? K : N, T(0), C, N);
}

template void matmul<float>(bool, bool, int64_t, int64_t, int64_t, const float*, const float*,
                            float*, void*);
template void matmul<double>(bool, bool, int64_t, int64_t, int64_t, const double*,
                             const double*, double*, void*);
template void gemm<float>(cudaStream_t, bool, bool, int64_t, int64_t, int64_t, float,
                          const float*, int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm<double>(cudaStream_t, bool, bool, int64_t, int64_t, int64_t, double,
                           const double*, int64_t, const double*, int64_t, double, double*,
                           int64_t);

}  // namespace seqkern::cuda
