// LSTM forward (inference, training) and backward through time. Shapes: seqkern/lstm.h.
#include "seqkern/lstm.h"

#include "packed_gemm.h"
#include "recurrent.h"
#include "seqkern/activations.h"
#include "seqkern/bf16.h"
#include "seqkern/f32_panels.h"

namespace seqkern {

template <typename T>
void lstm_forward(const RnnShape& shape, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                  const T* b_hh, const T* w_hr, const int32_t* lengths, const T* h0, const T* c0,
                  T* y, T* h_n, T* c_n, T* gates, T* cs, const Bf16Layer* bf16,
                  const F32Layer* f32) {
  const RnnShape s = detail::as_called(shape, bf16, f32);
  const int64_t B = s.B, H = s.H, G = 4 * H, BH = B * H, S = s.state(), BS = B * S;
  const bool training = gates != nullptr;
  std::vector<T> bias = detail::add_biases(b_ih, b_hh, G);
  detail::Aligned<T> c_buf(training ? 0 : BH, T(0));  // inference: the one cell state
  detail::Aligned<T> m_buf(s.P ? BH : 0, T(0));       // projection: o*tanh(c) of one step
  if (!training) std::copy(c0, c0 + BH, c_buf.begin());
  // h_{t-1} @ w_hh^T and m_t @ w_hr^T (P = 0: unused)
  const PackedMatrix<T> w_step =
      bf16 ? PackedMatrix<T>(bf16->w_hh, s)
           : PackedMatrix<T>(w_hh, S, true, S, G, s, 4, f32 ? &f32->w_hh : nullptr, true);
  const PackedMatrix<T> w_proj =
      bf16 && s.P ? PackedMatrix<T>(bf16->w_hr, s)
                  : PackedMatrix<T>(w_hr, H, true, H, s.P, s, 1, f32 ? &f32->w_hr : nullptr, true);
  const detail::InputProjection<T> input(s, G, 4, x, w_ih, w_step, bf16 ? &bf16->w_ih : nullptr,
                                         f32 ? &f32->w_ih : nullptr);
  // pre-activations, then (training) activated gates; inference keeps input.steps() of them
  T* pre = training ? gates : detail::scratch<T>(0, input.steps() * B * G);

  input.all_steps(pre, lengths);
  const bool whole = detail::whole_batch(s, w_step), h0_zero = detail::zero_state(h0, BS);
  const bool apart = !whole && input.apart();
  detail::Aligned<T> hp(apart ? B * G : 0);  // apart: one step's h_{t-1} @ w_hh^T
  if (whole && !h0_zero) w_step.multiply(StepSlice{0, B, nullptr}, B, h0, S, pre, G, true);
  const bool alone = detail::rows_alone(w_step, w_proj, input);
  detail::time_loop(s, lengths, false, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    T* g_t = pre + (training ? t : t % input.steps()) * B * G;
    const T* h_prev = detail::prev_h(t, h0, y, BS);
    input.step(sl, t, live, g_t);
    const bool product = !whole && (t > 0 || !h0_zero);
    if (product)
      w_step.multiply(sl, live, h_prev, S, apart ? hp.data() : g_t, G, !apart, input.rider(sl));
    const T* c_prev = training ? detail::prev_h(t, c0, cs, BH) : c_buf.data();
    T* c_out = training ? cs + t * BH : c_buf.data();
    const auto [u0, u1] = sl.units(H);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      T* h_row = s.P ? m_buf.data() + b * H : y + t * BH + b * H;  // o*tanh(c), width H
      if (t >= seq_len(lengths, s.T, b)) {  // finished: y is zero, state left as it was
        detail::zero_units(h_row, 1, H, u0, u1);
        if (s.P) {  // not projected
          const auto [p0, p1] = sl.units(S);
          detail::zero_units(y + t * BS + b * S, 1, S, p0, p1);
        }
        if (training) {
          detail::zero_units(g_t + b * G, 4, H, u0, u1);
          detail::zero_units(c_out + b * H, 1, H, u0, u1);
        }
        continue;
      }
      lstm_cell(H, u0, u1, bias.data(), g_t + b * G,
                apart && product ? hp.data() + b * G : nullptr, c_prev + b * H, c_out + b * H,
                h_row, training);
    }
    if (s.P) {  // h_t = m_t @ w_hr^T for the running rows
      sl.sync();
      w_proj.multiply(sl, live, m_buf.data(), H, y + t * BS, S, false);
    }
    sl.sync();
  });
  detail::gather_last(s, lengths, y, h_n, S);
  if (training)
    detail::gather_last(s, lengths, cs, c_n, H);
  else
    std::copy(c_buf.begin(), c_buf.end(), c_n);
}

template <typename T>
void lstm_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* w_hr,
                   const int32_t* lengths, const T* h0, const T* c0, const T* y, const T* gates,
                   const T* cs, const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                   T* dw_ih, T* dw_hh, T* dw_hr, T* db) {
  const int64_t B = s.B, H = s.H, G = 4 * H, BH = B * H, S = s.state(), BS = B * S;
  const int64_t TB = s.T * B;
  const detail::StepRows rows(s, lengths);
  T* dg = detail::scratch<T>(0, rows.total() * G);  // pre-activation gradients of every step
  // dg_{t+1} @ w_hh: the gradient reaching h_t through h_{t+1}
  detail::Aligned<T> dh_rec(BS, T(0));
  detail::Aligned<T> dc(BH, T(0));  // carried cell gradient; starts as dc_n
  T* dhs = s.P ? detail::scratch<T>(1, TB * S) : nullptr;  // projection: each dh_t, for dw_hr
  // projection: dh_t @ w_hr, the gradient of o*tanh(c)
  detail::Aligned<T> dm(s.P ? BH : 0, T(0));
  if (dc_n) std::copy(dc_n, dc_n + BH, dc.begin());
  const PackedMatrix<T> w_step(w_hh, S, false, G, S, s, 1, nullptr, true);  // dg_t @ w_hh
  // dh_t @ w_hr (P = 0: unused)
  const PackedMatrix<T> w_proj(w_hr, H, false, s.P, H, s, 1, nullptr, true);
  const detail::InputGrad<T> input(s, lengths, G, w_ih, dx);
  const bool whole = detail::whole_batch(s, w_step);

  const bool alone = detail::rows_alone(w_step, w_proj, input);
  detail::time_loop(s, lengths, true, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    T* dg_t = dg + rows.start(t) * G;
    const T* c_prev = detail::prev_h(t, c0, cs, BH);
    const auto [u0, u1] = sl.units(H);
    if (s.P) {  // dh_t = dy_t + carry, then back through the projection in one product
      const auto [p0, p1] = sl.units(S);
      for (int64_t b = sl.b0; b < sl.b1; ++b) {
        const int64_t len = seq_len(lengths, s.T, b);
        T* dh = dhs + (t * B + b) * S;
        if (t >= len) {
          detail::zero_units(dh, 1, S, p0, p1);
          continue;
        }
        const T* carry = t == len - 1 ? dh_n ? dh_n + b * S : nullptr : dh_rec.data() + b * S;
        const T* dy_row = dy ? dy + t * BS + b * S : nullptr;
        for (int64_t j = p0; j < p1; ++j)
          dh[j] = (dy_row ? dy_row[j] : T(0)) + (carry ? carry[j] : T(0));
      }
      sl.sync();
      w_proj.multiply(sl, live, dhs + t * BS, S, dm.data(), H, false);
    }
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      int64_t len = seq_len(lengths, s.T, b);
      if (t >= len) {  // past the end: no gradient here; dh_n, dc_n wait for step len-1
        if (!rows.compact()) detail::zero_units(dg_t + b * G, 4, H, u0, u1);
        continue;
      }
      const T *dh_a, *dh_b;  // the two parts of dh_t
      if (s.P) {
        dh_a = dm.data() + b * H;
        dh_b = nullptr;
      } else {
        dh_a = dy ? dy + t * BH + b * H : nullptr;
        dh_b = t == len - 1 ? (dh_n ? dh_n + b * H : nullptr) : dh_rec.data() + b * H;
      }
      lstm_cell_backward(H, u0, u1, gates + (t * B + b) * G, cs + t * BH + b * H,
                         c_prev + b * H, dh_a, dh_b, dc.data() + b * H, dg_t + b * G);
    }
    sl.sync();
    if (!whole && (t > 0 || dh0)) w_step.multiply(sl, live, dg_t, G, dh_rec.data(), S, false);
    input.step(sl, t, live, dg_t, G);
  });
  if (whole && dh0) w_step.multiply(StepSlice{0, B, nullptr}, B, dg, G, dh0, S, false);
  else if (dh0) std::copy(dh_rec.begin(), dh_rec.end(), dh0);
  std::copy(dc.begin(), dc.end(), dc0);
  detail::deferred_grads(s, rows, G, x, h0, y, dg, dw_ih, dw_hh, db, input);
  // dw_hr = sum_t dh_t^T m_t, m_t = o*tanh(c_t) rebuilt from what training kept
  if (s.P && dw_hr) {
    T* m = detail::scratch<T>(2, TB * H);
    parallel_for(TB, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* m_row = m + r * H;
        tanh_to(m_row, cs + r * H, H);
        for (int64_t j = 0; j < H; ++j) m_row[j] *= gates[r * G + 3 * H + j];
      }
    });
    gemm<T>(true, false, S, H, TB, T(1), dhs, S, m, H, T(0), dw_hr, H);
  }
}

#define SEQKERN_INSTANTIATE(T)                                                                  \
  template void lstm_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,         \
                                const T*, const T*, const int32_t*, const T*, const T*, T*, T*,  \
                                T*, T*, T*, const Bf16Layer*, const F32Layer*);                 \
  template void lstm_backward<T>(const RnnShape&, const T*, const T*, const T*, const T*,        \
                                 const int32_t*, const T*, const T*, const T*, const T*,         \
                                 const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, T*, \
                                 T*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern
