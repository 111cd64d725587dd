// Elman RNN, one layer, one direction, time-major: h' = act(W_ih x + b_ih + W_hh h + b_hh),
// act = tanh or relu.
#pragma once
#include "seqkern/common.h"

namespace seqkern {

enum class Nonlinearity { Tanh, Relu };

// Forward; the same call serves training, since backward needs only y.
//   x       (T, B, I)      w_ih (H, I)    w_hh (H, H)    b_ih, b_hh (H) or null
//   lengths (B) in 1..T, or null for all T
//   h0      (B, H)         initial state
//   y       (T, B, H)      out: h_t, zero past lengths[b]. Kept untouched until backward.
//   h_n     (B, H)         out: state after each sequence's last step. May alias h0.
//   bf16    inference only (float): the products on these bfloat16 weights (seqkern/bf16.h) in
//           place of w_ih, w_hh; null for float32
//   f32     inference only (float): these weights packed once (seqkern/f32_panels.h), used in
//           place of packing them at this call (the same results); null: packed here
template <typename T>
void rnn_forward(const RnnShape& s, Nonlinearity act, const T* x, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, const int32_t* lengths, const T* h0, T* y, T* h_n,
                 const Bf16Layer* bf16 = nullptr, const F32Layer* f32 = nullptr);

// Backward through time.
//   dy (T, B, H), dh_n (B, H)       incoming gradients, each may be null (zeros)
//   dx (T, B, I), dh0 (B, H)        out; either may be null (not wanted: dx's product is
//                                   skipped, and for dh0 the first step's recurrent product)
//   dw_ih (H, I), dw_hh (H, H)      out (overwritten); either may be null (not wanted: skipped)
//   db (H) or null                  out: the gradient of b_ih, equal to that of b_hh
template <typename T>
void rnn_backward(const RnnShape& s, Nonlinearity act, const T* x, const T* w_ih, const T* w_hh,
                  const int32_t* lengths, const T* h0, const T* y, const T* dy, const T* dh_n,
                  T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db);

}  // namespace seqkern
