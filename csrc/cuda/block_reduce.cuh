// A sum or maximum over the threads of a one-dimensional block, through shared memory and
// __syncthreads in a fixed tree order, so results repeat bit for bit. No warp shuffles: the CPU
// emulator (tests/cuda_emulator) runs these as written. Every thread of the block calls it and
// gets the result.
#pragma once

#include <cuda_runtime.h>

namespace seqkern::cuda {

template <typename T>
struct Sum {
  __device__ T operator()(T a, T b) const { return a + b; }
};

template <typename T>
struct Max {
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};

// scratch: kThreads elements of shared memory (kThreads = blockDim.x, a power of two), free
// again when this returns.
template <int kThreads, typename T, class Op>
__device__ T block_reduce(T x, T* scratch, Op op) {
  const int t = threadIdx.x;
  scratch[t] = x;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (t < s) scratch[t] = op(scratch[t], scratch[t + s]);
    __syncthreads();
  }
  const T r = scratch[0];
  __syncthreads();
  return r;
}

}  // namespace seqkern::cuda
