// Embedding on the device: the forward copies rows; the backward adds each row's gradients in a
// fixed order, one thread per column of a row, so repeated ids need no atomics (the host groups
// the positions by row: seqkern._device_ops).
#include "check.cuh"
#include "seqkern/cuda_ops.h"

namespace seqkern::cuda {
namespace {

constexpr int kThreads = 256;  // columns per block; grid (rows, column tiles)

template <typename T>
__global__ void gather_rows(int64_t D, const T* __restrict__ weight,
                            const int64_t* __restrict__ ids, T* __restrict__ out) {
  const int64_t n = blockIdx.x, c = int64_t(blockIdx.y) * kThreads + threadIdx.x;
  if (c < D) out[n * D + c] = weight[ids[n] * D + c];
}

template <typename T>
__global__ void add_row_grads(int64_t D, const T* __restrict__ dy, const int64_t* __restrict__ order,
                              const int64_t* __restrict__ starts, const int64_t* __restrict__ rows,
                              T* __restrict__ dweight) {
  const int64_t u = blockIdx.x, c = int64_t(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= D) return;
  T* w = dweight + rows[u] * D + c;
  T sum = *w;
  for (int64_t s = starts[u]; s < starts[u + 1]; ++s) sum += dy[order[s] * D + c];
  *w = sum;
}

}  // namespace

template <typename T>
void embedding_forward(int64_t N, int64_t D, const T* weight, const int64_t* ids, T* out,
                       void* stream) {
  if (N == 0 || D == 0) return;
  const dim3 grid(static_cast<unsigned>(N), blocks_for(D, kThreads));
  gather_rows<T><<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(D, weight, ids, out);
  check_launch("gather_rows");
}

template <typename T>
void embedding_backward(int64_t U, int64_t D, const T* dy, const int64_t* order,
                        const int64_t* starts, const int64_t* rows, T* dweight, void* stream) {
  if (U == 0 || D == 0) return;
  const dim3 grid(static_cast<unsigned>(U), blocks_for(D, kThreads));
  add_row_grads<T><<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(D, dy, order, starts,
                                                                            rows, dweight);
  check_launch("add_row_grads");
}

#define SEQKERN_INSTANTIATE(T)                                                                \
  template void embedding_forward<T>(int64_t, int64_t, const T*, const int64_t*, T*, void*);  \
  template void embedding_backward<T>(int64_t, int64_t, const T*, const int64_t*,             \
                                      const int64_t*, const int64_t*, T*, void*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern::cuda
