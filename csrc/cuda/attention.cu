// Attention on the device, fused as on the CPU: one block per query row walks its sequence's
// keys in chunks of kThreads (a thread a key computes its score), keeps a running max and sum
// (online softmax) and adds the chunk's weighted values into the columns each thread owns. No
// (B, Tq, Tk) matrix is stored unless the weights are asked for.
//
// The backward recomputes the softmax from the scores and the forward's lse. With
// D_i = dcontext_i . context_i and ds_ij = p_ij (dcontext_i . v_j - D_i):
//   dq_i = sum_j ds_ij ds/dq_i          (a block per query row, over its keys)
//   dk_j = sum_i ds_ij ds/dk_j, dv_j = sum_i p_ij dcontext_i   (a block per key row, over queries)
// so every gradient is a sum owned by one thread: no atomics, results repeat bit for bit.
#include <math.h>

#include "block_reduce.cuh"
#include "check.cuh"
#include "layout.cuh"
#include "seqkern/cuda_ops.h"

namespace seqkern::cuda {
namespace {

constexpr int kThreads = 128;  // threads of a block, and keys (or queries) of a chunk
constexpr int kPer = 4;        // output columns per thread, strided by kThreads
constexpr int kCols = kThreads * kPer;  // columns of a block; grid.y tiles wider outputs

// Scores of query row `row` (b * Tq + i) against key row `key` (b * Tk + j), and their
// derivatives with respect to element h of each side.
template <typename T>
struct DotScore {
  const T* q;  // (B * Tq, H)
  const T* k;  // (B * Tk, H)
  int64_t H;
  T scale;
  __device__ T operator()(int64_t row, int64_t key) const {
    const T *a = q + row * H, *b = k + key * H;
    T s = 0;
    for (int64_t h = 0; h < H; ++h) s += a[h] * b[h];
    return scale * s;
  }
  __device__ T d_query(int64_t, int64_t key, int64_t h) const { return scale * k[key * H + h]; }
  __device__ T d_key(int64_t row, int64_t, int64_t h) const { return scale * q[row * H + h]; }
  __device__ T d_u(int64_t, int64_t, int64_t) const { return T(0); }
};

template <typename T>
struct AdditiveScore {
  const T* pq;  // (B * Tq, H)
  const T* pk;  // (B * Tk, H)
  const T* u;   // (H)
  int64_t H;
  __device__ T operator()(int64_t row, int64_t key) const {
    const T *a = pq + row * H, *b = pk + key * H;
    T s = 0;
    for (int64_t h = 0; h < H; ++h) s += u[h] * tanh(a[h] + b[h]);
    return s;
  }
  __device__ T d_query(int64_t row, int64_t key, int64_t h) const {
    const T t = tanh(pq[row * H + h] + pk[key * H + h]);
    return u[h] * (T(1) - t * t);
  }
  __device__ T d_key(int64_t row, int64_t key, int64_t h) const { return d_query(row, key, h); }
  __device__ T d_u(int64_t row, int64_t key, int64_t h) const {
    return tanh(pq[row * H + h] + pk[key * H + h]);
  }
};

__device__ inline int64_t keys_of(const int32_t* lengths, int64_t b, int64_t Tk) {
  return lengths != nullptr ? lengths[b] : Tk;
}

// context (B * Tq, Hv) and lse (B * Tq): grid (B * Tq, column tiles of Hv).
template <typename T, class Score>
__global__ void __launch_bounds__(kThreads)
attend_rows(Score score, const T* __restrict__ v, const int32_t* __restrict__ lengths,
            int64_t Tq, int64_t Tk, int64_t Hv, T* __restrict__ context, T* __restrict__ lse) {
  __shared__ T p[kThreads];
  __shared__ T scratch[kThreads];
  const int64_t row = blockIdx.x, b = row / Tq, n = keys_of(lengths, b, Tk);
  const int64_t c0 = int64_t(blockIdx.y) * kCols + threadIdx.x;
  T m = -INFINITY, sum = 0, acc[kPer] = {};
  for (int64_t j0 = 0; j0 < n; j0 += kThreads) {
    const int64_t j = j0 + threadIdx.x;
    const T s = j < n ? score(row, b * Tk + j) : T(-INFINITY);
    const T chunk_max = block_reduce<kThreads>(s, scratch, Max<T>());
    const T m_new = chunk_max > m ? chunk_max : m;
    const T e = j < n ? exp(s - m_new) : T(0);
    p[threadIdx.x] = e;
    const T f = exp(m - m_new);  // 0 on the first chunk (m = -inf), where acc and sum are 0
    sum = sum * f + block_reduce<kThreads>(e, scratch, Sum<T>());  // its barrier publishes p
    m = m_new;
    const int64_t keys = n - j0 < kThreads ? n - j0 : kThreads;
    for (int i = 0; i < kPer; ++i) acc[i] *= f;
    for (int64_t jj = 0; jj < keys; ++jj) {
      const T* vj = v + (b * Tk + j0 + jj) * Hv;
      for (int i = 0; i < kPer; ++i) {
        const int64_t c = c0 + i * kThreads;
        if (c < Hv) acc[i] += p[jj] * vj[c];
      }
    }
    __syncthreads();  // the next chunk rewrites p
  }
  for (int i = 0; i < kPer; ++i) {
    const int64_t c = c0 + i * kThreads;
    if (c < Hv) context[row * Hv + c] = acc[i] / sum;
  }
  if (blockIdx.y == 0 && threadIdx.x == 0) lse[row] = m + log(sum);
}

// weights (B * Tq, Tk): the softmax, zero at masked keys. grid (B * Tq).
template <typename T, class Score>
__global__ void __launch_bounds__(kThreads)
softmax_weights(Score score, const int32_t* __restrict__ lengths, int64_t Tq, int64_t Tk,
                const T* __restrict__ lse, T* __restrict__ weights) {
  const int64_t row = blockIdx.x, b = row / Tq, n = keys_of(lengths, b, Tk);
  for (int64_t j = threadIdx.x; j < Tk; j += kThreads)
    weights[row * Tk + j] = j < n ? exp(score(row, b * Tk + j) - lse[row]) : T(0);
}

// D (B * Tq) = rows of dcontext . rows of context. grid (B * Tq).
template <typename T>
__global__ void __launch_bounds__(kThreads)
row_dots(int64_t Hv, const T* __restrict__ dcontext, const T* __restrict__ context,
         T* __restrict__ D) {
  __shared__ T scratch[kThreads];
  const int64_t row = blockIdx.x;
  T s = 0;
  for (int64_t c = threadIdx.x; c < Hv; c += kThreads) s += dcontext[row * Hv + c] * context[row * Hv + c];
  s = block_reduce<kThreads>(s, scratch, Sum<T>());
  if (threadIdx.x == 0) D[row] = s;
}

// The backward's common pieces of one (query row, key row) pair: p and ds.
template <typename T, class Score>
__device__ inline void softmax_grad(const Score& score, const T* v, const T* lse,
                                    const T* dcontext, const T* D, int64_t Hv, int64_t row,
                                    int64_t key, T* p, T* ds) {
  const T pr = exp(score(row, key) - lse[row]);
  const T *g = dcontext + row * Hv, *vj = v + key * Hv;
  T dp = 0;
  for (int64_t c = 0; c < Hv; ++c) dp += g[c] * vj[c];
  *p = pr;
  *ds = pr * (dp - D[row]);
}

// dq (B * Tq, H), and du_rows (B * Tq, H), each row's share of du, when not null.
// grid (B * Tq, column tiles of H).
template <typename T, class Score>
__global__ void __launch_bounds__(kThreads)
query_grads(Score score, const T* __restrict__ v, const int32_t* __restrict__ lengths,
            int64_t Tq, int64_t Tk, int64_t H, int64_t Hv, const T* __restrict__ lse,
            const T* __restrict__ dcontext, const T* __restrict__ D, T* __restrict__ dq,
            T* __restrict__ du_rows) {
  __shared__ T ds[kThreads];
  const int64_t row = blockIdx.x, b = row / Tq, n = keys_of(lengths, b, Tk);
  const int64_t h0 = int64_t(blockIdx.y) * kCols + threadIdx.x;
  T acc[kPer] = {}, acc_u[kPer] = {};
  for (int64_t j0 = 0; j0 < n; j0 += kThreads) {
    const int64_t j = j0 + threadIdx.x;
    T p = 0, x = 0;
    if (j < n) softmax_grad(score, v, lse, dcontext, D, Hv, row, b * Tk + j, &p, &x);
    ds[threadIdx.x] = x;
    __syncthreads();
    const int64_t keys = n - j0 < kThreads ? n - j0 : kThreads;
    for (int64_t jj = 0; jj < keys; ++jj) {
      const int64_t key = b * Tk + j0 + jj;
      for (int i = 0; i < kPer; ++i) {
        const int64_t h = h0 + i * kThreads;
        if (h >= H) continue;
        acc[i] += ds[jj] * score.d_query(row, key, h);
        if (du_rows != nullptr) acc_u[i] += ds[jj] * score.d_u(row, key, h);
      }
    }
    __syncthreads();  // the next chunk rewrites ds
  }
  for (int i = 0; i < kPer; ++i) {
    const int64_t h = h0 + i * kThreads;
    if (h >= H) continue;
    dq[row * H + h] = acc[i];
    if (du_rows != nullptr) du_rows[row * H + h] = acc_u[i];
  }
}

// dk (B * Tk, H) and dv (B * Tk, Hv), zero at masked keys; dv may be dk (then H = Hv, and it
// gets the sum). grid (B * Tk, column tiles of max(H, Hv)).
template <typename T, class Score>
__global__ void __launch_bounds__(kThreads)
key_grads(Score score, const T* __restrict__ v, const int32_t* __restrict__ lengths, int64_t Tq,
          int64_t Tk, int64_t H, int64_t Hv, const T* __restrict__ lse,
          const T* __restrict__ dcontext, const T* __restrict__ D, T* dk, T* dv) {
  __shared__ T ps[kThreads];
  __shared__ T ds[kThreads];
  const int64_t key = blockIdx.x, b = key / Tk, j = key % Tk;
  const int64_t c0 = int64_t(blockIdx.y) * kCols + threadIdx.x;
  T acc_k[kPer] = {}, acc_v[kPer] = {};
  if (j < keys_of(lengths, b, Tk)) {  // the same for the whole block: its barriers are safe
    for (int64_t i0 = 0; i0 < Tq; i0 += kThreads) {
      const int64_t i = i0 + threadIdx.x;
      T p = 0, x = 0;
      if (i < Tq) softmax_grad(score, v, lse, dcontext, D, Hv, b * Tq + i, key, &p, &x);
      ps[threadIdx.x] = p;
      ds[threadIdx.x] = x;
      __syncthreads();
      const int64_t rows = Tq - i0 < kThreads ? Tq - i0 : kThreads;
      for (int64_t ii = 0; ii < rows; ++ii) {
        const int64_t row = b * Tq + i0 + ii;
        for (int e = 0; e < kPer; ++e) {
          const int64_t c = c0 + e * kThreads;
          if (c < H) acc_k[e] += ds[ii] * score.d_key(row, key, c);
          if (c < Hv) acc_v[e] += ps[ii] * dcontext[row * Hv + c];
        }
      }
      __syncthreads();  // the next chunk rewrites ps and ds
    }
  }
  for (int e = 0; e < kPer; ++e) {
    const int64_t c = c0 + e * kThreads;
    if (dk == dv) {
      if (c < H) dk[key * H + c] = acc_k[e] + acc_v[e];
      continue;
    }
    if (c < H) dk[key * H + c] = acc_k[e];
    if (c < Hv) dv[key * Hv + c] = acc_v[e];
  }
}

template <typename T, class Score>
void launch_forward(const AttnShape& s, const Score& score, const T* v, const int32_t* lengths,
             T* context, T* lse, T* weights, cudaStream_t stream) {
  const unsigned rows = static_cast<unsigned>(s.B * s.Tq);
  attend_rows<T, Score><<<dim3(rows, blocks_for(s.Hv, kCols)), kThreads, 0, stream>>>(
      score, v, lengths, s.Tq, s.Tk, s.Hv, context, lse);
  check_launch("attend_rows");
  if (weights == nullptr) return;
  softmax_weights<T, Score><<<rows, kThreads, 0, stream>>>(score, lengths, s.Tq, s.Tk, lse, weights);
  check_launch("softmax_weights");
}

// workspace: D (B * Tq), then for additive scores du_rows (B * Tq, H) and column_sums' scratch.
template <typename T, class Score>
void launch_backward(const AttnShape& s, const Score& score, const T* v, const int32_t* lengths,
              const T* context, const T* lse, const T* dcontext, T* dq, T* dk, T* dv, T* du,
              T* workspace, cudaStream_t stream) {
  const unsigned rows = static_cast<unsigned>(s.B * s.Tq), keys = static_cast<unsigned>(s.B * s.Tk);
  T* D = workspace;
  T* du_rows = du != nullptr ? D + s.B * s.Tq : nullptr;
  row_dots<T><<<rows, kThreads, 0, stream>>>(s.Hv, dcontext, context, D);
  check_launch("row_dots");
  query_grads<T, Score><<<dim3(rows, blocks_for(s.H, kCols)), kThreads, 0, stream>>>(
      score, v, lengths, s.Tq, s.Tk, s.H, s.Hv, lse, dcontext, D, dq, du_rows);
  check_launch("query_grads");
  const int64_t widest = s.H > s.Hv ? s.H : s.Hv;
  key_grads<T, Score><<<dim3(keys, blocks_for(widest, kCols)), kThreads, 0, stream>>>(
      score, v, lengths, s.Tq, s.Tk, s.H, s.Hv, lse, dcontext, D, dk, dv);
  check_launch("key_grads");
  if (du != nullptr) column_sums<T>(stream, du_rows, s.B * s.Tq, s.H, du, du_rows + s.B * s.Tq * s.H);
}

}  // namespace

int64_t attention_backward_workspace(const AttnShape& s, bool additive) {
  const int64_t rows = s.B * s.Tq;
  return rows + (additive ? rows * s.H + column_sums_workspace(s.H) : 0);
}

template <typename T>
void attention_forward(const AttnShape& s, const T* q, const T* k, const T* v,
                       const int32_t* lengths, T scale, T* context, T* lse, T* weights,
                       void* stream) {
  launch_forward<T>(s, DotScore<T>{q, k, s.H, scale}, v, lengths, context, lse, weights,
             static_cast<cudaStream_t>(stream));
}

template <typename T>
void additive_attention_forward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                const T* v, const int32_t* lengths, T* context, T* lse,
                                T* weights, void* stream) {
  launch_forward<T>(s, AdditiveScore<T>{pq, pk, u, s.H}, v, lengths, context, lse, weights,
             static_cast<cudaStream_t>(stream));
}

template <typename T>
void attention_backward(const AttnShape& s, const T* q, const T* k, const T* v,
                        const int32_t* lengths, T scale, const T* context, const T* lse,
                        const T* dcontext, T* dq, T* dk, T* dv, T* workspace, void* stream) {
  launch_backward<T>(s, DotScore<T>{q, k, s.H, scale}, v, lengths, context, lse, dcontext, dq, dk, dv,
              static_cast<T*>(nullptr), workspace, static_cast<cudaStream_t>(stream));
}

template <typename T>
void additive_attention_backward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                 const T* v, const int32_t* lengths, const T* context,
                                 const T* lse, const T* dcontext, T* dpq, T* dpk, T* du, T* dv,
                                 T* workspace, void* stream) {
  launch_backward<T>(s, AdditiveScore<T>{pq, pk, u, s.H}, v, lengths, context, lse, dcontext, dpq, dpk,
              dv, du, workspace, static_cast<cudaStream_t>(stream));
}

#define SEQKERN_INSTANTIATE(T)                                                                 \
  template void attention_forward<T>(const AttnShape&, const T*, const T*, const T*,           \
                                     const int32_t*, T, T*, T*, T*, void*);                    \
  template void additive_attention_forward<T>(const AttnShape&, const T*, const T*, const T*,  \
                                              const T*, const int32_t*, T*, T*, T*, void*);    \
  template void attention_backward<T>(const AttnShape&, const T*, const T*, const T*,          \
                                      const int32_t*, T, const T*, const T*, const T*, T*, T*, \
                                      T*, T*, void*);                                          \
  template void additive_attention_backward<T>(const AttnShape&, const T*, const T*, const T*, \
                                               const T*, const int32_t*, const T*, const T*,   \
                                               const T*, T*, T*, T*, T*, T*, void*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern::cuda
