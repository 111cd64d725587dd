// What the forward and backward step kernels share: the gate counts, the batch tile and the
// column dot products that replace a GEMM per step.
//
// One step's recurrent product for all gates is out[b, g*H + j] = sum_k a[b, k] m[k, g*H + j].
// A block owns 32 columns j (one per lane, so a warp reads 32 consecutive values of each row of
// m) for NG gates and BB batch rows; its 8 warps split k, and shared memory adds their partial
// sums. The rows of a are read by the whole warp at one address, a broadcast from L1. The step's
// pointwise pass then runs in the same kernel, on the sums, with no round trip through memory.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "seqkern/cuda_recurrent.h"

namespace seqkern::cuda {

constexpr int kWarps = 8, kStepThreads = 32 * kWarps;

__host__ __device__ constexpr int gate_count(CudaCell c) {
  return c == CudaCell::lstm ? 4 : c == CudaCell::gru ? 3 : 1;
}

// Batch rows per block: sized so the partial sums (kWarps x 4 gates x BB x 32) take 32 KB.
template <typename T>
__host__ __device__ constexpr int batch_tile() { return sizeof(T) == 4 ? 8 : 4; }

template <typename T>
__device__ __forceinline__ T sigmoid(T v) { return T(1) / (T(1) + exp(-v)); }

// acc[g][bb] += sum over this warp's share of k of a[row(bb), k] * m[k * ld + g * gs + j], where
// row(bb) = min(b0 + bb, B - 1) (rows past the batch are computed and dropped) and j is clamped
// the same way. Then the block's sums: sums[g] for the output (b0 + threadIdx.x / 32, lane), valid
// for threadIdx.x < BB * 32.
template <typename T, int NG, int BB>
__device__ __forceinline__ void column_dots(const T* __restrict__ a, int64_t K, int64_t B,
                                            int64_t b0, const T* __restrict__ m, int64_t ld,
                                            int64_t gs, int64_t j, int64_t cols, T (&sums)[NG]) {
  __shared__ T partial[kWarps][NG][BB][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t jc = j < cols ? j : cols - 1;
  T acc[NG][BB];
#pragma unroll
  for (int g = 0; g < NG; ++g)
#pragma unroll
    for (int bb = 0; bb < BB; ++bb) acc[g][bb] = T(0);
  if (a != nullptr) {
    const T* rows[BB];
#pragma unroll
    for (int bb = 0; bb < BB; ++bb) rows[bb] = a + (b0 + bb < B ? b0 + bb : B - 1) * K;
    const int64_t chunk = (K + kWarps - 1) / kWarps;
    const int64_t k_end = (warp + 1) * chunk < K ? (warp + 1) * chunk : K;
    for (int64_t k = warp * chunk; k < k_end; ++k) {
      T w[NG];
#pragma unroll
      for (int g = 0; g < NG; ++g) w[g] = m[k * ld + g * gs + jc];
#pragma unroll
      for (int bb = 0; bb < BB; ++bb) {
        const T v = rows[bb][k];
#pragma unroll
        for (int g = 0; g < NG; ++g) acc[g][bb] += v * w[g];
      }
    }
  }
#pragma unroll
  for (int g = 0; g < NG; ++g)
#pragma unroll
    for (int bb = 0; bb < BB; ++bb) partial[warp][g][bb][lane] = acc[g][bb];
  __syncthreads();
  if (threadIdx.x >= BB * 32) return;
  const int bb = threadIdx.x >> 5;
#pragma unroll
  for (int g = 0; g < NG; ++g) {
    T s = T(0);
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += partial[w][g][bb][lane];
    sums[g] = s;
  }
}

}  // namespace seqkern::cuda
