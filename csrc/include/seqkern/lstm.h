// LSTM, one layer, one direction, time-major. Gate order i, f, g, o (PyTorch/cuDNN):
//   c' = f*c + i*g,  h' = o*tanh(c'),  or with a projection (s.P > 0): h' = W_hr (o*tanh(c')).
// S = s.state() is the width of h: P with a projection, else H.
#pragma once
#include "seqkern/common.h"

namespace seqkern {

// Forward. Inference when gates and cs are null; training when both are given.
//   x       (T, B, I)      w_ih (4H, I)    w_hh (4H, S)    b_ih, b_hh (4H) or null
//   w_hr    (P, H)         the projection, or null when s.P = 0
//   lengths (B) in 1..T, or null for all T
//   h0 (B, S), c0 (B, H)   initial state
//   y       (T, B, S)      out: h_t, zero past lengths[b]. Kept untouched until backward.
//   h_n (B, S), c_n (B, H) out: state after each sequence's last step. May alias h0/c0.
//   gates   (T, B, 4H)     out (training): activated i, f, g, o; zero past lengths. Keep for backward.
//   cs      (T, B, H)      out (training): c_t; zero past lengths. Keep for backward.
//   bf16    inference only (float): the products on these bfloat16 weights (seqkern/bf16.h) in
//           place of w_ih, w_hh, w_hr (whose biases still apply); null for float32
//   f32     inference only (float): these weights packed once (seqkern/f32_panels.h), used in
//           place of packing them at this call (the same results); null: packed here
// No buffer may alias x, y, gates or cs.
template <typename T>
void lstm_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                  const T* b_hh, const T* w_hr, const int32_t* lengths, const T* h0, const T* c0,
                  T* y, T* h_n, T* c_n, T* gates, T* cs, const Bf16Layer* bf16 = nullptr,
                  const F32Layer* f32 = nullptr);

// Backward through time (BPTT) of a training forward.
//   x, w_ih, w_hh, w_hr, lengths, h0, c0, y, gates, cs   as given to / returned by lstm_forward
//   dy (T, B, S), dh_n (B, S), dc_n (B, H)        incoming gradients, each may be null (zeros)
//   dx (T, B, I), dh0 (B, S), dc0 (B, H)           out; dx and dh0 may be null (not wanted:
//                                                  dx's product is skipped, and for dh0 the
//                                                  first step's recurrent product)
//   dw_ih (4H, I), dw_hh (4H, S), dw_hr (P, H)     out (overwritten, not accumulated); each
//                                                  may be null (not wanted: frozen weights,
//                                                  products skipped); dw_hr null when s.P = 0
//   db (4H) or null                                out: the gradient of b_ih, equal to that of b_hh
template <typename T>
void lstm_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* w_hr,
                   const int32_t* lengths, const T* h0, const T* c0, const T* y, const T* gates,
                   const T* cs, const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                   T* dw_ih, T* dw_hh, T* dw_hr, T* db);

// `steps` steps on weights in the book's layout (seqkern.book's TimeLSTM): Wx (D, 4H),
// Wh (H, 4H), b (4H), gate blocks in the order f, g, i, o, read in place, through gemm (one
// product for every step's input, then one per step): for the book's generation loops.
//   x (steps, N, D), h0, c0 (N, H)    in
//   y, cs (steps, N, H)               out: h and c of every step
//   gates (steps, N, 4H)              out: the activated gates in the kernels' order i, f, g, o,
//                                     as lstm_forward's training gates (for lstm_backward)
template <typename T>
void lstm_book_forward(int64_t steps, int64_t N, int64_t D, int64_t H, const T* x, const T* h0,
                       const T* c0, const T* Wx, const T* Wh, const T* b, T* y, T* cs, T* gates);

// Whether seqkern.book's TimeLSTM runs a call on its weights in place (lstm_book_forward) rather
// than converting them for the kernels: one step (any N), or one sequence small enough that the
// kernels would run it on one thread (kSerialWork): the calls of the book's generation loops.
bool lstm_book_in_place(int64_t steps, int64_t N, int64_t D, int64_t H);

}  // namespace seqkern
