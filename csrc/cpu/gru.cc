// GRU forward (inference, training) and backward through time. Shapes: seqkern/gru.h.
#include "seqkern/gru.h"

#include "recurrent.h"
#include "seqkern/bf16.h"
#include "seqkern/f32_panels.h"
#include "seqkern/activations.h"

namespace seqkern {

namespace {

// Linear before reset (PyTorch/cuDNN): n = tanh(W_in x + b_in + r*(W_hn h + b_hn)).
template <typename T>
void forward_reset_after(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                 const T* b_hh, const int32_t* lengths, const T* h0, T* y, T* h_n, T* gates,
                 T* hn, const Bf16Layer* bf16, const F32Layer* f32) {
  const int64_t B = s.B, H = s.H, G = 3 * H, BH = B * H;
  const bool training = gates != nullptr;
  // Biases: r and z take b_ih + b_hh; n takes b_in outside and b_hn inside r*(...).
  std::vector<T> bx = detail::add_biases(b_ih, b_hh, G);
  std::vector<T> bhn(H, T(0));
  if (b_hh) std::copy(b_hh + 2 * H, b_hh + G, bhn.begin());
  for (int64_t j = 2 * H; j < G; ++j) bx[j] = b_ih ? b_ih[j] : T(0);

  detail::Aligned<T> hp(B * G, T(0));  // recurrent projection of one step
  const PackedMatrix<T> w_step =  // h_{t-1} @ w_hh^T
      bf16 ? PackedMatrix<T>(bf16->w_hh, s)
           : PackedMatrix<T>(w_hh, H, true, H, G, s, 3, f32 ? &f32->w_hh : nullptr, true);
  const detail::InputProjection<T> input(s, G, 3, x, w_ih, w_step, bf16 ? &bf16->w_ih : nullptr,
                                         f32 ? &f32->w_ih : nullptr);
  // input-side pre-activations, then (training) activated gates; inference keeps input.steps()
  T* pre = training ? gates : detail::scratch<T>(0, input.steps() * B * G);

  input.all_steps(pre, lengths);
  // (skipped at a zero h0, hp's first step stays zero)
  const bool whole = detail::whole_batch(s, w_step), h0_zero = detail::zero_state(h0, BH);
  if (whole && !h0_zero) w_step.multiply(StepSlice{0, B, nullptr}, B, h0, H, hp.data(), G, false);
  const bool alone = detail::rows_alone(w_step, input);
  detail::time_loop(s, lengths, false, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    const T* h_prev = detail::prev_h(t, h0, y, BH);
    T* g_t = pre + (training ? t : t % input.steps()) * B * G;
    T* hn_t = training ? hn + t * BH : nullptr;
    input.step(sl, t, live, g_t);
    if (!whole && (t > 0 || !h0_zero))
      w_step.multiply(sl, live, h_prev, H, hp.data(), G, false, input.rider(sl));
    const auto [u0, u1] = sl.units(H);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      T* y_row = y + t * BH + b * H;
      if (t >= seq_len(lengths, s.T, b)) {
        detail::zero_units(y_row, 1, H, u0, u1);
        if (training) {
          detail::zero_units(g_t + b * G, 3, H, u0, u1);
          detail::zero_units(hn_t + b * H, 1, H, u0, u1);
        }
        continue;
      }
      gru_cell(H, u0, u1, bx.data(), bhn.data(), g_t + b * G, hp.data() + b * G, h_prev + b * H,
               hn_t ? hn_t + b * H : nullptr, y_row, training);
    }
    sl.sync();
  });
  detail::gather_last(s, lengths, y, h_n, s.H);
}

template <typename T>
void backward_reset_after(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh,
                  const int32_t* lengths, const T* h0, const T* y, const T* gates, const T* hn,
                  const T* dy, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh) {
  const int64_t B = s.B, H = s.H, I = s.I, G = 3 * H, BH = B * H;
  const detail::StepRows rows(s, lengths);
  const int64_t n = rows.total();
  T* dhg = detail::scratch<T>(0, n * G);  // recurrent-side pre-activation gradients
  T* dnx = detail::scratch<T>(1, n * H);  // input-side n gradient (r, z input sides equal dhg's)
  detail::Aligned<T> dh_prev(BH, T(0));  // out of step t: dh_{t-1} = dh*z + dhg_t @ w_hh
  const PackedMatrix<T> w_step(w_hh, H, false, G, H, s, 1, nullptr, true);  // dhg_t @ w_hh
  const bool whole = detail::whole_batch(s, w_step);

  const bool alone = detail::rows_alone(w_step);
  detail::time_loop(s, lengths, true, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    T* dhg_t = dhg + rows.start(t) * G;
    T* dnx_t = dnx + rows.start(t) * H;
    const T* h_prev = detail::prev_h(t, h0, y, BH);
    const auto [u0, u1] = sl.units(H);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      int64_t len = seq_len(lengths, s.T, b);
      T* dhp = dh_prev.data() + b * H;
      if (t >= len) {
        if (!rows.compact()) {
          detail::zero_units(dhg_t + b * G, 3, H, u0, u1);
          detail::zero_units(dnx_t + b * H, 1, H, u0, u1);
        }
        detail::zero_units(dhp, 1, H, u0, u1);
        continue;
      }
      const T* carry = t == len - 1 ? (dh_n ? dh_n + b * H : nullptr) : dhp;
      gru_cell_backward(H, u0, u1, gates + (t * B + b) * G, hn + t * BH + b * H,
                        h_prev + b * H, dy ? dy + t * BH + b * H : nullptr, carry,
                        dhg_t + b * G, dnx_t + b * H, dhp);
    }
    sl.sync();
    if (!whole && (t > 0 || dh0)) w_step.multiply(sl, live, dhg_t, G, dh_prev.data(), H, true);
  });
  if (whole && dh0) w_step.multiply(StepSlice{0, B, nullptr}, B, dhg, G, dh_prev.data(), H, true);
  if (dh0) std::copy(dh_prev.begin(), dh_prev.end(), dh0);

  // Input side: r, z columns of dhg, then dnx for the n block of w_ih.
  const detail::DeferredRows<T> d(s, rows, x, h0, y, dx);
  const T* w_in = w_ih + 2 * H * I;
  if (dw_ih) {  // (either weight gradient null: not wanted, its products skipped)
    gemm<T>(true, false, 2 * H, I, n, T(1), dhg, G, d.x, d.ldx, T(0), dw_ih, I);
    gemm<T>(true, false, H, I, n, T(1), dnx, H, d.x, d.ldx, T(0), dw_ih + 2 * H * I, I);
  }
  if (dw_hh) d.hidden_grad(G, dhg, G, dw_hh);
  if (db_hh) detail::column_sums(dhg, n, G, G, db_hh);
  if (db_ih) {
    detail::column_sums(dhg, n, 2 * H, G, db_ih);
    detail::column_sums(dnx, n, H, H, db_ih + 2 * H);
  }
  if (!dx) return;
  gemm<T>(false, false, n, I, 2 * H, T(1), dhg, G, w_ih, I, T(0), d.dx_rows(), d.ld_dx());
  gemm<T>(false, false, n, I, H, T(1), dnx, H, w_in, I, T(1), d.dx_rows(), d.ld_dx());
  d.finish();
}

// Reset before the recurrent product (Cho et al. 2014): n = tanh(W_in x + W_hn (r*h) + b_in + b_hn).
// r must be known before W_hn is applied, so each step runs two GEMMs: [r, z] first, then n.
//   aux (T, B, H) training: r*h_{t-1}, kept for backward (the input of W_hn)
template <typename T>
void forward_reset_before(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh,
                          const T* b_ih, const T* b_hh, const int32_t* lengths, const T* h0, T* y,
                          T* h_n, T* gates, T* aux, const Bf16Layer* bf16,
                          const F32Layer* f32) {
  const int64_t B = s.B, H = s.H, G = 3 * H, BH = B * H;
  const bool training = gates != nullptr;
  std::vector<T> bias = detail::add_biases(b_ih, b_hh, G);  // every bias sits outside r here
  detail::Aligned<T> rh_buf(training ? 0 : BH, T(0));
  // h_{t-1} @ w_h[rz]^T and (r*h_{t-1}) @ w_hn^T
  const PackedMatrix<T> w_rz =
      bf16 ? PackedMatrix<T>(bf16->w_hh, s)
           : PackedMatrix<T>(w_hh, H, true, H, 2 * H, s, 2, f32 ? &f32->w_hh : nullptr, true);
  const PackedMatrix<T> w_n =
      bf16 ? PackedMatrix<T>(bf16->w_hn, s)
           : PackedMatrix<T>(w_hh + 2 * H * H, H, true, H, H, s, 1, f32 ? &f32->w_hn : nullptr,
                             true);
  const detail::InputProjection<T> input(s, G, 3, x, w_ih, w_rz, bf16 ? &bf16->w_ih : nullptr,
                                         f32 ? &f32->w_ih : nullptr);
  // pre-activations, then (training) activated gates; inference keeps input.steps() of them
  T* pre = training ? gates : detail::scratch<T>(0, input.steps() * B * G);

  input.all_steps(pre, lengths);
  // (r*h's product stays in the loop: an r made NaN by the input spreads through it)
  const bool whole = detail::whole_batch(s, w_rz), h0_zero = detail::zero_state(h0, BH);
  const bool apart = !whole && input.apart();
  detail::Aligned<T> hp(apart ? B * G : 0);  // apart: one step's products, [r, z | n] as pre's
  if (whole && !h0_zero) w_rz.multiply(StepSlice{0, B, nullptr}, B, h0, H, pre, G, true);
  const bool alone = detail::rows_alone(w_rz, w_n, input);
  detail::time_loop(s, lengths, false, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    const T* h_prev = detail::prev_h(t, h0, y, BH);
    T* g_t = pre + (training ? t : t % input.steps()) * B * G;
    T* rh = training ? aux + t * BH : rh_buf.data();
    input.step(sl, t, live, g_t);
    T* p_t = apart ? hp.data() : g_t;  // where the step's products go
    const bool product = !whole && (t > 0 || !h0_zero);
    if (product) w_rz.multiply(sl, live, h_prev, H, p_t, G, !apart, input.rider(sl));
    const auto [u0, u1] = sl.units(H);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      T* g = g_t + b * G;
      T* rh_row = rh + b * H;
      if (t >= seq_len(lengths, s.T, b)) {
        detail::zero_units(g, 3, H, u0, u1);
        detail::zero_units(rh_row, 1, H, u0, u1);
        continue;
      }
      gru_before_rz(H, u0, u1, bias.data(), g, apart && product ? p_t + b * G : nullptr,
                    h_prev + b * H, rh_row);
    }
    sl.sync();
    w_n.multiply(sl, live, rh, H, p_t + 2 * H, G, !apart, input.rider(sl));
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      T* y_row = y + t * BH + b * H;
      if (t >= seq_len(lengths, s.T, b)) {
        detail::zero_units(y_row, 1, H, u0, u1);
        continue;
      }
      gru_before_n(H, u0, u1, bias.data(), g_t + b * G, apart ? p_t + b * G : nullptr,
                   h_prev + b * H, y_row, training);
    }
    sl.sync();
  });
  detail::gather_last(s, lengths, y, h_n, s.H);
}

// Backward of forward_reset_before. Input and recurrent pre-activation gradients are equal here,
// so one dg (T, B, 3H) serves dx, dw_ih, both biases and dw_hh (the n rows against r*h).
template <typename T>
void backward_reset_before(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh,
                           const int32_t* lengths, const T* h0, const T* y, const T* gates,
                           const T* aux, const T* dy, const T* dh_n, T* dx, T* dh0, T* dw_ih,
                           T* dw_hh, T* db_ih, T* db_hh) {
  const int64_t B = s.B, H = s.H, I = s.I, G = 3 * H, BH = B * H;
  const detail::StepRows rows(s, lengths);
  const int64_t n = rows.total();
  T* dg = detail::scratch<T>(0, n * G);
  detail::Aligned<T> drh(BH, T(0));      // gradient of r*h_{t-1}: dn @ w_hn
  detail::Aligned<T> dh_prev(BH, T(0));  // out of step t: dh_{t-1}
  const PackedMatrix<T> w_n(w_hh + 2 * H * H, H, false, H, H, s, 1, nullptr, true);  // dn @ w_hn
  const PackedMatrix<T> w_rz(w_hh, H, false, 2 * H, H, s, 1, nullptr, true);  // d[rz] @ w_h[rz]
  const bool whole = detail::whole_batch(s, w_rz);  // (dn's product stays in the loop)

  const bool alone = detail::rows_alone(w_n, w_rz);
  detail::time_loop(s, lengths, true, alone, [&](const StepSlice& sl, int64_t t, int64_t live) {
    T* dg_t = dg + rows.start(t) * G;
    const T* h_prev = detail::prev_h(t, h0, y, BH);
    const auto [u0, u1] = sl.units(H);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      const int64_t len = seq_len(lengths, s.T, b);
      T* d = dg_t + b * G;
      T* dhp = dh_prev.data() + b * H;
      if (t >= len) {
        if (!rows.compact()) detail::zero_units(d, 3, H, u0, u1);
        detail::zero_units(dhp, 1, H, u0, u1);
        continue;
      }
      const T* carry = t == len - 1 ? (dh_n ? dh_n + b * H : nullptr) : dhp;
      gru_before_n_backward(H, u0, u1, gates + (t * B + b) * G, h_prev + b * H,
                            dy ? dy + t * BH + b * H : nullptr, carry, d, dhp);
    }
    sl.sync();
    w_n.multiply(sl, live, dg_t + 2 * H, G, drh.data(), H, false);
    for (int64_t b = sl.b0; b < sl.b1; ++b) {
      if (t >= seq_len(lengths, s.T, b)) continue;
      gru_before_rz_backward(u0, u1, gates + (t * B + b) * G, h_prev + b * H,
                             drh.data() + b * H, dg_t + b * G, dh_prev.data() + b * H);
    }
    sl.sync();
    if (!whole && (t > 0 || dh0)) w_rz.multiply(sl, live, dg_t, G, dh_prev.data(), H, true);
  });
  if (whole && dh0) w_rz.multiply(StepSlice{0, B, nullptr}, B, dg, G, dh_prev.data(), H, true);
  if (dh0) std::copy(dh_prev.begin(), dh_prev.end(), dh0);

  const detail::DeferredRows<T> d(s, rows, x, h0, y, dx, aux, H);
  if (dw_ih) gemm<T>(true, false, G, I, n, T(1), dg, G, d.x, d.ldx, T(0), dw_ih, I);
  if (dw_hh) {  // (either weight gradient null: not wanted, its products skipped)
    d.hidden_grad(2 * H, dg, G, dw_hh);
    gemm<T>(true, false, H, H, n, T(1), dg + 2 * H, G, d.extra, d.ld_extra, T(0),
            dw_hh + 2 * H * H, H);
  }
  if (db_ih) detail::column_sums(dg, n, G, G, db_ih);
  if (db_hh) detail::column_sums(dg, n, G, G, db_hh);
  if (!dx) return;
  gemm<T>(false, false, n, I, G, T(1), dg, G, w_ih, I, T(0), d.dx_rows(), d.ld_dx());
  d.finish();
}

}  // namespace

template <typename T>
void gru_forward(const RnnShape& s, bool reset_after, const T* x, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, const int32_t* lengths, const T* h0, T* y, T* h_n,
                 T* gates, T* aux, const Bf16Layer* bf16, const F32Layer* f32) {
  (reset_after ? forward_reset_after<T> : forward_reset_before<T>)(
      detail::as_called(s, bf16, f32), x, w_ih, w_hh, b_ih, b_hh, lengths, h0, y, h_n, gates, aux,
      bf16, f32);
}

template <typename T>
void gru_backward(const RnnShape& s, bool reset_after, const T* x, const T* w_ih, const T* w_hh,
                  const int32_t* lengths, const T* h0, const T* y, const T* gates, const T* aux,
                  const T* dy, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh) {
  (reset_after ? backward_reset_after<T> : backward_reset_before<T>)(
      s, x, w_ih, w_hh, lengths, h0, y, gates, aux, dy, dh_n, dx, dh0, dw_ih, dw_hh, db_ih, db_hh);
}

#define SEQKERN_INSTANTIATE(T)                                                                 \
  template void gru_forward<T>(const RnnShape&, bool, const T*, const T*, const T*, const T*,   \
                               const T*, const int32_t*, const T*, T*, T*, T*, T*,              \
                               const Bf16Layer*, const F32Layer*);                              \
  template void gru_backward<T>(const RnnShape&, bool, const T*, const T*, const T*,            \
                                const int32_t*,                                                 \
                                const T*, const T*, const T*, const T*, const T*, const T*, T*, \
                                T*, T*, T*, T*, T*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern
