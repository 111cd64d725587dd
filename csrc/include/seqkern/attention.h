// Attention for one query row at a time: scores against the first lengths[b] keys of its
// sequence, their softmax, and the softmax-weighted sum of the values, fused. Batch-major as the
// book's hs:
//   B sequences, Tq queries and Tk keys each; H: width of the vectors a score compares (query
//   and key for dot scores; the attention size A for additive scores); Hv: width of the values.
#pragma once
#include <cstdint>

namespace seqkern {

struct AttnShape {
  int64_t B, Tq, Tk, H, Hv;
};

// Dot-product scores s_ij = scale * q_i . k_j. Keys are taken in blocks with a running max and
// sum (online softmax), so no (Tq, Tk) matrix is kept.
//   q (B, Tq, H)    k (B, Tk, H)    v (B, Tk, Hv)    lengths (B) in 1..Tk, or null for all Tk
//   context (B, Tq, Hv)   out
//   lse     (B, Tq)       out: each row's log-sum-exp of scores (keep for backward), or null
//   weights (B, Tq, Tk)   out: the softmax, zero at masked keys; null when not wanted
template <typename T>
void attention_forward(const AttnShape& s, const T* q, const T* k, const T* v,
                       const int32_t* lengths, T scale, T* context, T* lse, T* weights);

// Backward of attention_forward from its context and lse.
//   dcontext (B, Tq, Hv)                      incoming gradient
//   weights (B, Tq, Tk) or null               the forward's weights, read instead of
//                                              recomputed from q, k and lse
//   dq (B, Tq, H), dk (B, Tk, H), dv (B, Tk, Hv)   out (overwritten); dv may be dk when v is k,
//                                              and then holds the sum of both gradients
template <typename T>
void attention_backward(const AttnShape& s, const T* q, const T* k, const T* v,
                        const int32_t* lengths, T scale, const T* context, const T* lse,
                        const T* weights, const T* dcontext, T* dq, T* dk, T* dv);

// Additive (Bahdanau) scores s_ij = u . tanh(pq_i + pk_j), from the projected queries and keys.
//   pq (B, Tq, H) = q W_q^T    pk (B, Tk, H) = k W_k^T    u (H)    v (B, Tk, Hv)
//   context, lse, weights as in attention_forward
template <typename T>
void additive_attention_forward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                const T* v, const int32_t* lengths, T* context, T* lse,
                                T* weights);

// Backward of additive_attention_forward from its lse (the probabilities' gradient dP comes
// whole for each row of keys, so the softmax's backward needs no context).
//   dpq (B, Tq, H), dpk (B, Tk, H), du (H), dv (B, Tk, Hv)   out (overwritten)
template <typename T>
void additive_attention_backward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                 const T* v, const int32_t* lengths, const T* lse,
                                 const T* dcontext, T* dpq, T* dpk, T* du, T* dv);

}  // namespace seqkern
