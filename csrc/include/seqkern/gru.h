// GRU, one layer, one direction, time-major. Gate order r, z, n (PyTorch/cuDNN):
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z likewise,  h' = (1-z)*n + z*h,
//   reset_after (PyTorch/cuDNN):        n = tanh(W_in x + b_in + r*(W_hn h + b_hn))
//   reset before (Cho et al. 2014):     n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)
#pragma once
#include "seqkern/common.h"

namespace seqkern {

// Forward. Inference when gates and aux are null; training when both are given.
//   x       (T, B, I)      w_ih (3H, I)    w_hh (3H, H)    b_ih, b_hh (3H) or null
//   lengths (B) in 1..T, or null for all T
//   h0      (B, H)         initial state
//   y       (T, B, H)      out: h_t, zero past lengths[b]. Kept untouched until backward.
//   h_n     (B, H)         out: state after each sequence's last step. May alias h0.
//   gates   (T, B, 3H)     out (training): activated r, z, n. Keep for backward.
//   aux     (T, B, H)      out (training): W_hn h_{t-1} + b_hn (reset_after), else r*h_{t-1}.
//                          Keep for backward.
//   bf16    inference only (float): the products on these bfloat16 weights (seqkern/bf16.h) in
//           place of w_ih, w_hh; null for float32
//   f32     inference only (float): these weights packed once (seqkern/f32_panels.h), used in
//           place of packing them at this call (the same results); null: packed here
template <typename T>
void gru_forward(const RnnShape& s, bool reset_after, const T* x, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, const int32_t* lengths, const T* h0, T* y, T* h_n,
                 T* gates, T* aux, const Bf16Layer* bf16 = nullptr,
                 const F32Layer* f32 = nullptr);

// Backward through time of a training forward.
//   dy (T, B, H), dh_n (B, H)       incoming gradients, each may be null (zeros)
//   dx (T, B, I), dh0 (B, H)        out; either may be null (not wanted: dx's products are
//                                   skipped, and for dh0 the first step's recurrent product)
//   dw_ih (3H, I), dw_hh (3H, H)    out (overwritten); either may be null (not wanted: skipped)
//   db_ih, db_hh (3H) or null       out (with reset_after they differ in the n block)
template <typename T>
void gru_backward(const RnnShape& s, bool reset_after, const T* x, const T* w_ih, const T* w_hh,
                  const int32_t* lengths, const T* h0, const T* y, const T* gates, const T* aux,
                  const T* dy, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh);

}  // namespace seqkern
