// GRU forward (inference, training) and backward through time. Shapes: seqkern/gru.h.
#include "seqkern/gru.h"

#include "recurrent.h"
#include "seqkern/activations.h"

namespace seqkern {

namespace {

// One sequence's step.
//   g (3H)  in: x-projection; out: activated r, z, n
//   hp (3H) recurrent projection W_hh h_{t-1} (no bias)
//   bx (3H) = [b_ir + b_hr, b_iz + b_hz, b_in],  bhn (H) = b_hn
//   hn (H)  out: W_hn h_{t-1} + b_hn
template <typename T>
void cell_forward(int64_t H, const T* bx, const T* bhn, T* g, const T* hp, const T* h_prev, T* hn,
                  T* h_out) {
  for (int64_t j = 0; j < 2 * H; ++j) g[j] += bx[j] + hp[j];
  sigmoid_inplace(g, 2 * H);
  const T *r = g, *z = g + H;
  T* n = g + 2 * H;
  for (int64_t j = 0; j < H; ++j) {
    hn[j] = hp[2 * H + j] + bhn[j];
    n[j] += bx[2 * H + j] + r[j] * hn[j];
  }
  tanh_inplace(n, H);
  for (int64_t j = 0; j < H; ++j) h_out[j] = n[j] + z[j] * (h_prev[j] - n[j]);
}

// One sequence's step backward. dh = dy_t + dh_carry (either may be null: zero).
//   dhg (3H) out: gradients of the recurrent pre-activations [r, z, W_hn h + b_hn]
//   dnx (H)  out: gradient of the input-side n pre-activation
//   dh_direct (H) out: dh * z, the part of dh_{t-1} that bypasses W_hh; may be dh_carry
template <typename T>
void cell_backward(int64_t H, const T* g, const T* hn, const T* h_prev, const T* dy,
                   const T* dh_carry, T* dhg, T* dnx, T* dh_direct) {
  const T *r = g, *z = g + H, *n = g + 2 * H;
  for (int64_t j = 0; j < H; ++j) {
    T dh = (dy ? dy[j] : T(0)) + (dh_carry ? dh_carry[j] : T(0));
    T dn = dh * (T(1) - z[j]) * (T(1) - n[j] * n[j]);
    T dr = dn * hn[j];
    T dz = dh * (h_prev[j] - n[j]);
    dhg[j] = dr * r[j] * (T(1) - r[j]);
    dhg[H + j] = dz * z[j] * (T(1) - z[j]);
    dhg[2 * H + j] = dn * r[j];
    dnx[j] = dn;
    dh_direct[j] = dh * z[j];
  }
}

}  // namespace

template <typename T>
void gru_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                 const T* b_hh, const int32_t* lengths, const T* h0, T* y, T* h_n, T* gates,
                 T* hn) {
  const int64_t B = s.B, H = s.H, G = 3 * H, BH = B * H;
  const bool training = gates != nullptr;
  // Biases: r and z take b_ih + b_hh; n takes b_in outside and b_hn inside r*(...).
  std::vector<T> bx = detail::add_biases(b_ih, b_hh, G);
  std::vector<T> bhn(H, T(0));
  if (b_hh) std::copy(b_hh + 2 * H, b_hh + G, bhn.begin());
  for (int64_t j = 2 * H; j < G; ++j) bx[j] = b_ih ? b_ih[j] : T(0);

  std::vector<T> pre_buf(training ? 0 : s.T * B * G);
  std::vector<T> hn_buf(training ? 0 : BH);
  std::vector<T> hp(B * G);  // recurrent projection of one step
  T* pre = training ? gates : pre_buf.data();

  detail::input_projection(s, G, x, w_ih, pre);
  detail::for_batch_slices(B, [&](int64_t b0, int64_t b1) {
    for (int64_t t = 0; t < s.T; ++t) {
      const T* h_prev = detail::prev_h(t, h0, y, BH);
      T* g_t = pre + t * B * G;
      T* hn_t = training ? hn + t * BH : hn_buf.data();
      gemm<T>(false, true, b1 - b0, G, H, T(1), h_prev + b0 * H, H, w_hh, H, T(0),
              hp.data() + b0 * G, G);
      for (int64_t b = b0; b < b1; ++b) {
        T* y_row = y + t * BH + b * H;
        if (t >= seq_len(lengths, s.T, b)) {
          std::fill(y_row, y_row + H, T(0));
          if (training) {
            std::fill(g_t + b * G, g_t + (b + 1) * G, T(0));
            std::fill(hn_t + b * H, hn_t + (b + 1) * H, T(0));
          }
          continue;
        }
        cell_forward(H, bx.data(), bhn.data(), g_t + b * G, hp.data() + b * G, h_prev + b * H,
                     hn_t + b * H, y_row);
      }
    }
  });
  detail::gather_last(s, lengths, y, h_n);
}

template <typename T>
void gru_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh,
                  const int32_t* lengths, const T* h0, const T* y, const T* gates, const T* hn,
                  const T* dy, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh) {
  const int64_t B = s.B, H = s.H, I = s.I, G = 3 * H, BH = B * H, TB = s.T * B;
  std::vector<T> dhg(TB * G);  // recurrent-side pre-activation gradients
  std::vector<T> dnx(TB * H);  // input-side n gradient (r, z input sides equal dhg's)
  std::vector<T> dh_prev(BH, T(0));  // out of step t: dh_{t-1} = dh*z + dhg_t @ w_hh

  detail::for_batch_slices(B, [&](int64_t b0, int64_t b1) {
    for (int64_t t = s.T - 1; t >= 0; --t) {
      T* dhg_t = dhg.data() + t * B * G;
      T* dnx_t = dnx.data() + t * BH;
      const T* h_prev = detail::prev_h(t, h0, y, BH);
      for (int64_t b = b0; b < b1; ++b) {
        int64_t len = seq_len(lengths, s.T, b);
        T* dhp = dh_prev.data() + b * H;
        if (t >= len) {
          std::fill(dhg_t + b * G, dhg_t + (b + 1) * G, T(0));
          std::fill(dnx_t + b * H, dnx_t + (b + 1) * H, T(0));
          std::fill(dhp, dhp + H, T(0));
          continue;
        }
        const T* carry = t == len - 1 ? (dh_n ? dh_n + b * H : nullptr) : dhp;
        cell_backward(H, gates + (t * B + b) * G, hn + t * BH + b * H, h_prev + b * H,
                      dy ? dy + t * BH + b * H : nullptr, carry, dhg_t + b * G, dnx_t + b * H,
                      dhp);
      }
      gemm<T>(false, false, b1 - b0, H, G, T(1), dhg_t + b0 * G, G, w_hh, H, T(1),
              dh_prev.data() + b0 * H, H);
    }
  });
  std::copy(dh_prev.begin(), dh_prev.end(), dh0);

  // Input side: r, z columns of dhg, then dnx for the n block of w_ih.
  const T* w_in = w_ih + 2 * H * I;
  gemm<T>(false, false, TB, I, 2 * H, T(1), dhg.data(), G, w_ih, I, T(0), dx, I);
  gemm<T>(false, false, TB, I, H, T(1), dnx.data(), H, w_in, I, T(1), dx, I);
  gemm<T>(true, false, 2 * H, I, TB, T(1), dhg.data(), G, x, I, T(0), dw_ih, I);
  gemm<T>(true, false, H, I, TB, T(1), dnx.data(), H, x, I, T(0), dw_ih + 2 * H * I, I);
  detail::recurrent_weight_grad(s, G, dhg.data(), G, h0, y, dw_hh);
  if (db_hh) detail::column_sums(dhg.data(), TB, G, G, db_hh);
  if (db_ih) {
    detail::column_sums(dhg.data(), TB, 2 * H, G, db_ih);
    detail::column_sums(dnx.data(), TB, H, H, db_ih + 2 * H);
  }
}

#define SEQKERN_INSTANTIATE(T)                                                                 \
  template void gru_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,         \
                               const T*, const int32_t*, const T*, T*, T*, T*, T*);             \
  template void gru_backward<T>(const RnnShape&, const T*, const T*, const T*, const int32_t*,  \
                                const T*, const T*, const T*, const T*, const T*, const T*, T*, \
                                T*, T*, T*, T*, T*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern
