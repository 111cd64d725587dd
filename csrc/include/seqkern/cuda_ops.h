// The CUDA backend's other ops, on device pointers: softmax cross-entropy, embedding, attention
// and the products around attention's scores, CTC. The same shapes, semantics and aliasing as the
// CPU kernels of cross_entropy.h, embedding.h, attention.h and ctc.h; a stream is a cudaStream_t passed as
// void*, and a failed launch throws std::runtime_error. Nothing here uses atomics: every result
// repeats bit for bit.
#pragma once

#include <cstdint>

#include "seqkern/attention.h"  // AttnShape
#include "seqkern/ctc.h"        // CtcShape

namespace seqkern::cuda {

// C (M, N) = op(A) op(B), row-major and contiguous: op(A) is A (M, K), or A (K, M) when ta;
// op(B) is B (K, N), or B (N, K) when tb.
template <typename T>
void matmul(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C,
            void* stream);

// Softmax cross-entropy forward (cross_entropy.h): losses (N), lse (N) out.
template <typename T>
void cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                           int64_t ignore_index, T smoothing, T* losses, T* lse, void* stream);

// Its backward: dlogits_n = scale * (softmax(x_n) - q_n), zero for ignored rows, where scale is
// scale[n] when per_row, else scale[0]. dlogits may be logits.
template <typename T>
void cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                            int64_t ignore_index, T smoothing, const T* lse, const T* scale,
                            bool per_row, T* dlogits, void* stream);

// Embedding forward: out (N, D) = rows of weight (V, D) picked by ids (N) in 0..V-1.
template <typename T>
void embedding_forward(int64_t N, int64_t D, const T* weight, const int64_t* ids, T* out,
                       void* stream);

// Embedding backward, its rows grouped on the host: for each of U rows, dweight[rows[u]] +=
// dy[order[s]] for s in starts[u]..starts[u+1]-1, in that order (the CPU kernel's order when
// `order` lists each row's positions n ascending).
//   dy (N, D)   order (N' <= N)   starts (U + 1)   rows (U) distinct   dweight (V, D)
template <typename T>
void embedding_backward(int64_t U, int64_t D, const T* dy, const int64_t* order,
                        const int64_t* starts, const int64_t* rows, T* dweight, void* stream);

// Attention (attention.h), dot scores s_ij = scale * q_i . k_j, and additive scores
// s_ij = u . tanh(pq_i + pk_j). lse (B, Tq) is always written (the backward reads it); weights
// (B, Tq, Tk) is null when not wanted.
template <typename T>
void attention_forward(const AttnShape& s, const T* q, const T* k, const T* v,
                       const int32_t* lengths, T scale, T* context, T* lse, T* weights,
                       void* stream);
template <typename T>
void additive_attention_forward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                const T* v, const int32_t* lengths, T* context, T* lse,
                                T* weights, void* stream);

// Elements of T the backward's workspace holds: scratch.
int64_t attention_backward_workspace(const AttnShape& s, bool additive);

// Backward from the forward's context and lse. dq (B, Tq, H), dk (B, Tk, H), dv (B, Tk, Hv) out;
// dv may be dk when v is k, and then holds both gradients' sum. The additive backward writes
// dpq, dpk and du (H) (dv never aliases there).
template <typename T>
void attention_backward(const AttnShape& s, const T* q, const T* k, const T* v,
                        const int32_t* lengths, T scale, const T* context, const T* lse,
                        const T* dcontext, T* dq, T* dk, T* dv, T* workspace, void* stream);
template <typename T>
void additive_attention_backward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                 const T* v, const int32_t* lengths, const T* context,
                                 const T* lse, const T* dcontext, T* dpq, T* dpk, T* du, T* dv,
                                 T* workspace, void* stream);

// CTC forward (ctc.h): losses (B), log_alpha (B, T, L) out.
template <typename T>
void ctc_loss_forward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                      const int64_t* offsets, const int64_t* input_lengths,
                      const int64_t* target_lengths, int64_t blank, T* losses, T* log_alpha,
                      void* stream);

// Elements of T the CTC backward's workspace holds: scratch.
int64_t ctc_backward_workspace(const CtcShape& s);

// CTC backward (ctc.h): grad (T, B, C) out, overwritten.
template <typename T>
void ctc_loss_backward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                       const int64_t* offsets, const int64_t* input_lengths,
                       const int64_t* target_lengths, int64_t blank, const T* losses,
                       const T* log_alpha, const T* scale, T* grad, T* workspace, void* stream);

// The CTC losses (B) reduced on the device, as torch does: reduction 0 "none" (out (B): an
// infinite loss 0 under zero_infinity), 1 "sum" (out (1)), 2 "mean" (out (1): each loss over its
// target length, at least 1, then the batch mean).
template <typename T>
void ctc_reduce(int64_t B, const T* losses, const int64_t* target_lengths, int reduction,
                bool zero_infinity, T* out, void* stream);

}  // namespace seqkern::cuda
