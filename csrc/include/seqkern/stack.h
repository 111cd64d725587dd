// A whole recurrent network in one call: layers stacked, each one or two directions, inter-layer
// dropout, per-sequence lengths. The layer kernels are those of rnn.h, lstm.h and gru.h; this
// file only routes data between them (torch.nn.LSTM/GRU/RNN semantics).
#pragma once
#include "seqkern/common.h"
#include "seqkern/rnn.h"

namespace seqkern {

// Gru resets after the recurrent product (PyTorch/cuDNN), GruResetBefore before it (see gru.h).
enum class Cell { RnnTanh, RnnRelu, Lstm, Gru, GruResetBefore };

// G, the gate blocks of a cell's weight rows: 4 (LSTM), 3 (GRU), 1 (RNN).
inline int64_t gates_per_cell(Cell cell) {
  switch (cell) {
    case Cell::Lstm: return 4;
    case Cell::Gru:
    case Cell::GruResetBefore: return 3;
    default: return 1;
  }
}

// L layers, D = 1 or 2 directions; layer 0 reads I features, layer l > 0 reads D*S, where
// S = P for an LSTM with projections (torch's proj_size), else S = H.
struct StackShape {
  int64_t T, B, I, H, L, D;
  int64_t P = 0;
  int64_t state() const { return P ? P : H; }
};

// The weights of layer l, direction d live at index k = l*D + d (torch's weight_ih_l{l}[_reverse]).
//   w_ih (G*H, I or D*S)   w_hh (G*H, S)   b_ih, b_hh (G*H) or null   w_hr (P, H) or null
//   bf16: inference only, float: these weights rounded to bfloat16 and packed (seqkern/bf16.h),
//   which the products use in place of w_ih, w_hh, w_hr; null for float32
template <typename T>
struct LayerWeights {
  const T *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
  const Bf16Layer* bf16 = nullptr;
  const F32Layer* f32 = nullptr;  // inference only, float: these weights packed once
};
// One layer-direction's forward weight matrices packed once for inference, each a Matrix
// (Bf16Matrix, F32Panels: built from W stored (N, K), its row stride, K, N and gate blocks), as
// the kernels' products read them: w_ih and w_hh by gate blocks; for the GRU resetting before
// the product, w_hh's r, z rows and its n rows (w_hn) apart; the LSTM's projection w_hr. Layer
// derives from LayerMatrices (Bf16Layer, F32Layer).
template <typename Matrix>
struct LayerMatrices {
  Matrix w_ih, w_hh, w_hn, w_hr;
};

template <typename Layer>
Layer pack_layer(Cell cell, const RnnShape& s, const LayerWeights<float>& w) {
  using Matrix = decltype(Layer::w_ih);
  const int64_t H = s.H, S = s.state(), G = gates_per_cell(cell);
  Layer out;
  out.w_ih = Matrix(w.w_ih, s.I, s.I, G * H, G);
  if (cell == Cell::GruResetBefore) {
    out.w_hh = Matrix(w.w_hh, H, H, 2 * H, 2);
    out.w_hn = Matrix(w.w_hh + 2 * H * H, H, H, H, 1);
  } else {
    out.w_hh = Matrix(w.w_hh, S, S, G * H, G);
  }
  if (w.w_hr) out.w_hr = Matrix(w.w_hr, H, H, s.P, 1);
  return out;
}

template <typename T>
struct LayerGrads {
  // overwritten; null where the weights have none, or where one wants no gradient (frozen: its
  // products are skipped)
  T *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
};

// What training keeps for backward. Index k = l*D + d as for the weights.
//   ys     (L*D, T, B, S)     each layer-direction's own output, in its own step order (the
//                             reverse direction's step s is time lengths[b]-1-s)
//   gates  (L*D, T, B, G*H)   LSTM and GRU only (null for RNN): see lstm.h / gru.h
//   aux    (L*D, T, B, H)     LSTM: c_t; GRU: see gru.h; null for RNN
//   inputs (L-1, T, B, D*S)   the input of layers 1.., after dropout
template <typename T>
struct StackSaved {
  T *ys, *gates, *aux, *inputs;
};

// Forward. Inference when saved is null.
//   x       (T, B, I)           lengths (B) in 1..T or null
//   h0 (L*D, B, S), c0 (L*D, B, H)   initial states; c0 only for LSTM (else null)
//   masks   (L-1, T, B, D*S)    dropout multipliers (0 or 1/(1-p)) for the outputs of layers
//                               0..L-2; null for no dropout
//   y       (T, B, D*S)         out: last layer's output, directions side by side, zero past lengths
//   h_n, c_n                    out, like h0, c0: state after each sequence's last step (for the
//                               reverse direction: after time 0). May alias h0 / c0.
template <typename T>
void stack_forward(Cell cell, const StackShape& s, const T* x, const LayerWeights<T>* w,
                   const int32_t* lengths, const T* h0, const T* c0, const T* masks, T* y, T* h_n,
                   T* c_n, const StackSaved<T>* saved);

// Backward of a training forward (same arguments).
//   dy (T, B, D*S), dh_n, dc_n like h_n, c_n  incoming gradients, each may be null (zeros)
//   dx (T, B, I), dh0, dc0 like h0, c0         out (dc0 only for LSTM); dx may be null (not
//                                            wanted: the first layer's input products skipped)
//   g[k]                                     out: weight gradients
template <typename T>
void stack_backward(Cell cell, const StackShape& s, const T* x, const LayerWeights<T>* w,
                    const int32_t* lengths, const T* h0, const T* c0, const T* masks,
                    const StackSaved<T>& saved, const T* dy, const T* dh_n, const T* dc_n, T* dx,
                    T* dh0, T* dc0, const LayerGrads<T>* g);

}  // namespace seqkern
