// Elman RNN (tanh / relu) forward and backward through time. Shapes: seqkern/rnn.h.
#include "seqkern/rnn.h"

#include "recurrent.h"
#include "seqkern/bf16.h"
#include "seqkern/f32_panels.h"
#include "seqkern/activations.h"

namespace seqkern {

template <typename T>
void rnn_forward(const RnnShape& shape, Nonlinearity act, const T* x, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, const int32_t* lengths, const T* h0, T* y,
                 T* h_n, const Bf16Layer* bf16, const F32Layer* f32) {
  const RnnShape s = detail::as_called(shape, bf16, f32);
  const int64_t B = s.B, H = s.H, BH = B * H;
  std::vector<T> bias = detail::add_biases(b_ih, b_hh, H);
  const PackedMatrix<T> w_step =  // h_{t-1} @ w_hh^T
      bf16 ? PackedMatrix<T>(bf16->w_hh, s)
           : PackedMatrix<T>(w_hh, H, true, H, H, s, 1, f32 ? &f32->w_hh : nullptr, true);
  const detail::InputProjection<T> input(s, H, 1, x, w_ih, w_step, bf16 ? &bf16->w_ih : nullptr,
                                         f32 ? &f32->w_ih : nullptr);
  T* pre = detail::scratch<T>(0, input.steps() * BH);  // pre-activations

  input.all_steps(pre, lengths);
  const bool whole = detail::whole_batch(s, w_step), h0_zero = detail::zero_state(h0, B * H);
  const bool apart = !whole && input.apart();
  detail::Aligned<T> hp(apart ? BH : 0);  // apart: one step's h_{t-1} @ w_hh^T
  if (whole && !h0_zero) w_step.multiply(StepSlice{0, B, nullptr}, B, h0, H, pre, H, true);
  const bool alone = detail::rows_alone(w_step, input);
  detail::time_loop(s, lengths, false, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    T* a_t = pre + t % input.steps() * BH;
    const T* h_prev = detail::prev_h(t, h0, y, BH);
    input.step(sl, t, live, a_t);
    const bool product = !whole && (t > 0 || !h0_zero);
    if (product)
      w_step.multiply(sl, live, h_prev, H, apart ? hp.data() : a_t, H, !apart, input.rider(sl));
    const auto [u0, u1] = sl.units(H);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      const T* a = a_t + b * H;
      T* y_row = y + t * BH + b * H;
      if (t >= seq_len(lengths, s.T, b)) {
        detail::zero_units(y_row, 1, H, u0, u1);
        continue;
      }
      rnn_cell(u0, u1, act == Nonlinearity::Relu, bias.data(), a,
               apart && product ? hp.data() + b * H : nullptr, y_row);
    }
    sl.sync();
  });
  detail::gather_last(s, lengths, y, h_n, s.H);
}

template <typename T>
void rnn_backward(const RnnShape& s, Nonlinearity act, const T* x, const T* w_ih, const T* w_hh,
                  const int32_t* lengths, const T* h0, const T* y, const T* dy, const T* dh_n,
                  T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db) {
  const int64_t B = s.B, H = s.H, BH = B * H;
  const detail::StepRows rows(s, lengths);
  T* dg = detail::scratch<T>(0, rows.total() * H);  // pre-activation gradients of every step
  detail::Aligned<T> dh_rec(BH, T(0));  // dg_{t+1} @ w_hh
  const PackedMatrix<T> w_step(w_hh, H, false, H, H, s, 1, nullptr, true);  // dg_t @ w_hh
  const detail::InputGrad<T> input(s, lengths, H, w_ih, dx);
  const bool whole = detail::whole_batch(s, w_step);

  const bool alone = detail::rows_alone(w_step, input);
  detail::time_loop(s, lengths, true, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    T* dg_t = dg + rows.start(t) * H;
    const auto [u0, u1] = sl.units(H);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      int64_t len = seq_len(lengths, s.T, b);
      T* d = dg_t + b * H;
      if (t >= len) {
        if (!rows.compact()) detail::zero_units(d, 1, H, u0, u1);
        continue;
      }
      const T* carry = t == len - 1 ? (dh_n ? dh_n + b * H : nullptr) : dh_rec.data() + b * H;
      rnn_cell_backward(u0, u1, act == Nonlinearity::Relu, y + t * BH + b * H,
                        dy ? dy + t * BH + b * H : nullptr, carry, d);
    }
    sl.sync();
    if (!whole && (t > 0 || dh0)) w_step.multiply(sl, live, dg_t, H, dh_rec.data(), H, false);
    input.step(sl, t, live, dg_t, H);
  });
  if (whole && dh0) w_step.multiply(StepSlice{0, B, nullptr}, B, dg, H, dh0, H, false);
  else if (dh0) std::copy(dh_rec.begin(), dh_rec.end(), dh0);
  detail::deferred_grads(s, rows, H, x, h0, y, dg, dw_ih, dw_hh, db, input);
}

#define SEQKERN_INSTANTIATE(T)                                                                  \
  template void rnn_forward<T>(const RnnShape&, Nonlinearity, const T*, const T*, const T*,      \
                               const T*, const T*, const int32_t*, const T*, T*, T*,             \
                               const Bf16Layer*, const F32Layer*);                               \
  template void rnn_backward<T>(const RnnShape&, Nonlinearity, const T*, const T*, const T*,     \
                                const int32_t*, const T*, const T*, const T*, const T*, T*, T*,  \
                                T*, T*, T*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern
