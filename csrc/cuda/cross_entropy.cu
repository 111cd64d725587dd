// Softmax cross-entropy on the device: one block per row of logits. The forward reduces the row
// three times (its max, its sum, then the sum of exponentials, the last two reads from cache);
// the backward writes each gradient from its logit and the row's lse.
#include <math.h>

#include "block_reduce.cuh"
#include "check.cuh"
#include "seqkern/cuda_ops.h"

namespace seqkern::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads)
cross_entropy_rows(int64_t V, const T* __restrict__ logits, const int64_t* __restrict__ targets,
                   int64_t ignore_index, T smoothing, T* __restrict__ losses,
                   T* __restrict__ lse) {
  __shared__ T scratch[kThreads];
  const int64_t n = blockIdx.x;
  const T* x = logits + n * V;
  T m = -INFINITY, sum_x = 0;
  for (int64_t j = threadIdx.x; j < V; j += kThreads) {
    m = x[j] > m ? x[j] : m;
    sum_x += x[j];
  }
  m = block_reduce<kThreads>(m, scratch, Max<T>());
  sum_x = block_reduce<kThreads>(sum_x, scratch, Sum<T>());
  T e = 0;
  for (int64_t j = threadIdx.x; j < V; j += kThreads) e += exp(x[j] - m);
  e = block_reduce<kThreads>(e, scratch, Sum<T>());
  if (threadIdx.x != 0) return;
  const T l = m + log(e);
  const int64_t t = targets[n];
  lse[n] = l;
  // (as on the CPU: without smoothing, a logit of -inf elsewhere cannot make the loss NaN)
  losses[n] = t == ignore_index ? T(0)
              : smoothing == T(0) ? l - x[t]
                                  : l - (T(1) - smoothing) * x[t] - smoothing * sum_x / T(V);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
cross_entropy_grad(int64_t V, const T* logits, const int64_t* __restrict__ targets,
                   int64_t ignore_index, T smoothing, const T* __restrict__ lse,
                   const T* __restrict__ scale, bool per_row, T* dlogits) {
  const int64_t n = blockIdx.x, t = targets[n];
  const T* x = logits + n * V;  // may be dlogits: each element is read, then written, by one thread
  T* g = dlogits + n * V;
  if (t == ignore_index) {
    for (int64_t j = threadIdx.x; j < V; j += kThreads) g[j] = T(0);
    return;
  }
  const T l = lse[n], s = scale[per_row ? n : 0], shift = smoothing / T(V);
  for (int64_t j = threadIdx.x; j < V; j += kThreads)
    g[j] = s * (exp(x[j] - l) - shift - (j == t ? T(1) - smoothing : T(0)));
}

}  // namespace

template <typename T>
void cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                           int64_t ignore_index, T smoothing, T* losses, T* lse, void* stream) {
  if (N == 0) return;
  cross_entropy_rows<T><<<static_cast<unsigned>(N), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      V, logits, targets, ignore_index, smoothing, losses, lse);
  check_launch("cross_entropy_rows");
}

template <typename T>
void cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                            int64_t ignore_index, T smoothing, const T* lse, const T* scale,
                            bool per_row, T* dlogits, void* stream) {
  if (N == 0) return;
  cross_entropy_grad<T><<<static_cast<unsigned>(N), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      V, logits, targets, ignore_index, smoothing, lse, scale, per_row, dlogits);
  check_launch("cross_entropy_grad");
}

#define SEQKERN_INSTANTIATE(T)                                                                 \
  template void cross_entropy_forward<T>(int64_t, int64_t, const T*, const int64_t*, int64_t,  \
                                         T, T*, T*, void*);                                    \
  template void cross_entropy_backward<T>(int64_t, int64_t, const T*, const int64_t*, int64_t, \
                                          T, const T*, const T*, bool, T*, void*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern::cuda
