// CTC loss on the device, the CPU kernel's recursions (ctc.cc) with one block per sequence: its
// threads split the extended labels s of a step, and a barrier separates the steps. The forward
// writes each step's alpha row straight into log_alpha and reads the previous one back from it.
// The backward keeps two beta rows and the step's gamma row in the workspace; the gradient of a
// class adds the gammas of its positions in ascending s, as the CPU kernel does, walked by the
// thread of the class's first position along a precomputed chain (no atomics).
#include <math.h>

#include "check.cuh"
#include "seqkern/cuda_ops.h"

namespace seqkern::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ inline T lse3(T a, T b, T c) {
  T m = a > b ? a : b;
  m = m > c ? m : c;
  if (m == T(-INFINITY)) return m;
  return m + log(exp(a - m) + exp(b - m) + exp(c - m));
}

// One sequence's extended labels l' = (blank, l_1, blank, ..., l_S, blank).
struct Labels {
  const int64_t* labels;  // its S labels
  int64_t blank, L;
  __device__ int64_t operator[](int64_t s) const { return s % 2 ? labels[s / 2] : blank; }
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
ctc_alpha(CtcShape sh, const T* __restrict__ log_probs, const int64_t* __restrict__ targets,
          const int64_t* __restrict__ offsets, const int64_t* __restrict__ input_lengths,
          const int64_t* __restrict__ target_lengths, int64_t blank, T* __restrict__ losses,
          T* log_alpha) {
  const int64_t b = blockIdx.x, Ti = input_lengths[b];
  const Labels ext{targets + offsets[b], blank, 2 * target_lengths[b] + 1};
  const int64_t L = ext.L;
  if (Ti == 0) {
    if (threadIdx.x == 0) losses[b] = L == 1 ? T(0) : T(INFINITY);
    return;
  }
  T* la = log_alpha + b * sh.T * sh.L;
  const T* lp = log_probs + b * sh.C;  // lp[t * B * C + c]
  const int64_t stride = sh.B * sh.C;
  for (int64_t s = threadIdx.x; s < L; s += kThreads)
    la[s] = s < 2 ? lp[ext[s]] : T(-INFINITY);
  for (int64_t t = 1; t < Ti; ++t) {
    __syncthreads();  // row t - 1 is written
    const T *prev = la + (t - 1) * sh.L, *y = lp + t * stride;
    T* cur = la + t * sh.L;
    for (int64_t s = threadIdx.x; s < L; s += kThreads) {
      const int64_t c = ext[s];
      const bool skip = s % 2 == 1 && s >= 2 && c != ext[s - 2];
      cur[s] = lse3(prev[s], s >= 1 ? prev[s - 1] : T(-INFINITY),
                    skip ? prev[s - 2] : T(-INFINITY)) + y[c];
    }
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  const T* last = la + (Ti - 1) * sh.L;
  losses[b] = -(L > 1 ? lse3(last[L - 1], last[L - 2], T(-INFINITY)) : last[0]);
}

// chain (B, 2, L) int32 in the workspace: [0] the next position of the same class or -1, [1]
// whether the position is its class's first.
__device__ inline int32_t* chain_of(void* workspace, int64_t b, int64_t Lmax) {
  return static_cast<int32_t*>(workspace) + b * 2 * Lmax;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
ctc_grad(CtcShape sh, const T* __restrict__ log_probs, const int64_t* __restrict__ targets,
         const int64_t* __restrict__ offsets, const int64_t* __restrict__ input_lengths,
         const int64_t* __restrict__ target_lengths, int64_t blank, const T* __restrict__ losses,
         const T* __restrict__ log_alpha, const T* __restrict__ scale, T* __restrict__ grad,
         T* rows, void* chains) {
  const int64_t b = blockIdx.x, Ti = input_lengths[b], stride = sh.B * sh.C;
  for (int64_t t = 0; t < sh.T; ++t)
    for (int64_t c = threadIdx.x; c < sh.C; c += kThreads) grad[t * stride + b * sh.C + c] = T(0);
  const T nll = losses[b], sc = scale[b];
  if (Ti == 0 || !isfinite(nll) || sc == T(0)) return;  // the same for the whole block
  const Labels ext{targets + offsets[b], blank, 2 * target_lengths[b] + 1};
  const int64_t L = ext.L;
  int32_t* chain = chain_of(chains, b, sh.L);
  for (int64_t s = threadIdx.x; s < L; s += kThreads) {
    int64_t next = s + 1;
    while (next < L && ext[next] != ext[s]) ++next;
    int64_t before = s - 1;
    while (before >= 0 && ext[before] != ext[s]) --before;
    chain[s] = next < L ? static_cast<int32_t>(next) : -1;
    chain[sh.L + s] = before < 0;
  }
  T* beta[2] = {rows + b * 3 * sh.L, rows + b * 3 * sh.L + sh.L};
  T* gamma = rows + b * 3 * sh.L + 2 * sh.L;
  const T* lp = log_probs + b * sh.C;
  for (int64_t t = Ti - 1; t >= 0; --t) {
    const T* y = lp + t * stride;
    T* cur = beta[t % 2];
    const T* next = beta[(t + 1) % 2];
    const T* la = log_alpha + (b * sh.T + t) * sh.L;
    for (int64_t s = threadIdx.x; s < L; s += kThreads) {
      const int64_t c = ext[s];
      T v;
      if (t == Ti - 1) {
        v = s >= L - 2 ? y[c] : T(-INFINITY);
      } else {
        const bool skip = s % 2 == 1 && s + 2 < L && c != ext[s + 2];
        v = lse3(next[s], s + 1 < L ? next[s + 1] : T(-INFINITY),
                 skip ? next[s + 2] : T(-INFINITY)) + y[c];
      }
      cur[s] = v;
      gamma[s] = exp(la[s] + v + nll - y[c]);
    }
    __syncthreads();  // gamma, and cur for the next step, are written
    T* g = grad + t * stride + b * sh.C;
    for (int64_t s = threadIdx.x; s < L; s += kThreads) {
      if (!chain[sh.L + s]) continue;
      T sum = T(0);
      for (int64_t k = s; k >= 0; k = chain[k]) sum -= sc * gamma[k];
      g[ext[s]] = sum;
    }
    __syncthreads();  // gamma is rewritten by the next step
  }
}

// out: losses with +inf as 0 under zero_infinity (B) for "none"; else one value, their sum or
// their mean over target lengths (at least 1) and the batch, summed in double.
template <typename T>
__global__ void ctc_reduce_losses(int64_t B, const T* __restrict__ losses,
                                  const int64_t* __restrict__ target_lengths, int reduction,
                                  bool zero_infinity, T* __restrict__ out) {
  auto loss = [&](int64_t b) {
    const T l = losses[b];
    return zero_infinity && isinf(l) ? T(0) : l;
  };
  if (reduction == 0) {
    for (int64_t b = threadIdx.x; b < B; b += blockDim.x) out[b] = loss(b);
    return;
  }
  if (threadIdx.x != 0) return;
  double sum = 0;
  for (int64_t b = 0; b < B; ++b)
    sum += reduction == 2 ? double(loss(b) / T(target_lengths[b] > 1 ? target_lengths[b] : 1))
                          : double(loss(b));
  out[0] = T(reduction == 2 ? sum / double(B) : sum);
}

}  // namespace

int64_t ctc_backward_workspace(const CtcShape& s) { return 5 * s.B * s.L; }

template <typename T>
void ctc_loss_forward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                      const int64_t* offsets, const int64_t* input_lengths,
                      const int64_t* target_lengths, int64_t blank, T* losses, T* log_alpha,
                      void* stream) {
  if (s.B == 0) return;
  ctc_alpha<T><<<static_cast<unsigned>(s.B), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      s, log_probs, targets, offsets, input_lengths, target_lengths, blank, losses, log_alpha);
  check_launch("ctc_alpha");
}

template <typename T>
void ctc_loss_backward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                       const int64_t* offsets, const int64_t* input_lengths,
                       const int64_t* target_lengths, int64_t blank, const T* losses,
                       const T* log_alpha, const T* scale, T* grad, T* workspace, void* stream) {
  if (s.B == 0) return;
  // workspace: 3 rows of T per sequence (two of beta, one of gamma), then the int32 chains,
  // 2 * L of them per sequence, in the last 2 * B * L elements (at least 4 bytes each).
  ctc_grad<T><<<static_cast<unsigned>(s.B), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      s, log_probs, targets, offsets, input_lengths, target_lengths, blank, losses, log_alpha,
      scale, grad, workspace, static_cast<void*>(workspace + 3 * s.B * s.L));
  check_launch("ctc_grad");
}

template <typename T>
void ctc_reduce(int64_t B, const T* losses, const int64_t* target_lengths, int reduction,
                bool zero_infinity, T* out, void* stream) {
  ctc_reduce_losses<T><<<1, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      B, losses, target_lengths, reduction, zero_infinity, out);
  check_launch("ctc_reduce_losses");
}

#define SEQKERN_INSTANTIATE(T)                                                                 \
  template void ctc_loss_forward<T>(const CtcShape&, const T*, const int64_t*, const int64_t*, \
                                    const int64_t*, const int64_t*, int64_t, T*, T*, void*);   \
  template void ctc_loss_backward<T>(const CtcShape&, const T*, const int64_t*, const int64_t*,\
                                     const int64_t*, const int64_t*, int64_t, const T*,        \
                                     const T*, const T*, T*, T*, void*);                       \
  template void ctc_reduce<T>(int64_t, const T*, const int64_t*, int, bool, T*, void*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern::cuda
