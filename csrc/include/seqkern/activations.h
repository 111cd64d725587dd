// Elementwise activations over contiguous arrays, on vectorized polynomial exp/tanh at the SIMD
// level of seqkern/simd.h, chosen once at run time: float's max error ~2 ulp, double's ~1 ulp
// (libm's scalar calls were half of a float64 LSTM step of (97,51,51), PyTorch's
// time_sequence_prediction example).
#pragma once
#include <cstdint>

namespace seqkern {

template <typename T> void sigmoid_inplace(T* x, int64_t n);      // x = 1 / (1 + exp(-x))
template <typename T> void tanh_inplace(T* x, int64_t n);         // x = tanh(x)
template <typename T> void tanh_to(T* y, const T* x, int64_t n);  // y = tanh(x); y may be x
// y = exp(x - shift) over n values; returns their sum (a softmax row's normaliser). y may be x.
template <typename T> T exp_sum(T* y, const T* x, int64_t n, T shift);
// y = exp(2 x) over n values; returns whether every |x| <= bound (NaN is not). y may be x.
template <typename T> bool exp_doubled(T* y, const T* x, int64_t n, T bound);
// The largest of x[0..n) (a softmax row's shift): NaNs are skipped; -inf when nothing is left.
template <typename T> T max_of(const T* x, int64_t n);
// The sum of a[i] * b[i] over n values (float: in vector lanes, then the lanes in a fixed order).
template <typename T> T dot(const T* a, const T* b, int64_t n);
// ds[i] = scale * (p[i] * (ds[i] - d)) over n values: a row of attention's score gradient (ds
// holds the probabilities' gradient on entry, d the row's dO . O).
template <typename T> void score_grad(T* ds, const T* p, int64_t n, T d, T scale);
// y[i] += a * x[i] over n values.
template <typename T> void axpy(T a, const T* x, T* y, int64_t n);
// Additive attention's scores of one query q (A values) over n keys k_j (rows ld apart):
// s[j] = u . tanh(q + k_j); t (null: not kept) gets tanh(q + k_j) at t + j * A.
template <typename T>
void additive_scores(const T* q, const T* k, int64_t ld, const T* u, int64_t A, int64_t n, T* s,
                     T* t);
// The same from eq = exp(2 q) and ek = exp(2 k) (rows ld apart): tanh(q + k_j) = 1 - 2 / (eq
// ek_j + 1), a product and a reciprocal in place of a tanh. The products must stay normal
// numbers: |q| and |k| at most 20 in float (kept so by the caller).
template <typename T>
void additive_scores_exp(const T* eq, const T* ek, int64_t ld, const T* u, int64_t A, int64_t n,
                         T* s, T* t);
// One (query, key) pair's gradient in additive attention, ds that of its score and t its
// tanh(q + k_j): du += ds t; g = ds u (1 - t^2) is added to dq and to dk.
template <typename T>
void additive_grad(T ds, const T* t, const T* u, int64_t A, T* du, T* dq, T* dk);

// Units [u0, u1) of one sequence's LSTM step after the recurrent product, fused (float: a
// vector of units at a time, c and o first, then o * tanh(c)): g (4H) pre-activations of i, f,
// g, o without the bias (4H), to which hp (4H, the recurrent product, or null) is added; with
// keep_gates (training) g holds the activated gates afterwards, else its contents are
// unspecified. c_out = f * c_prev + i * g and h_out = o * tanh(c_out), rows of H; c_out may be
// c_prev, h_out overlaps no other. Only units [u0, u1) of each gate and row are read or written.
template <typename T>
void lstm_cell(int64_t H, int64_t u0, int64_t u1, const T* bias, T* g, const T* hp,
               const T* c_prev, T* c_out, T* h_out, bool keep_gates);

// Units [u0, u1) of one sequence's LSTM step backward, fused into one pass (float: a vector of
// units at a time). dh = dy + dh_carry (either may be null: zero).
//   g (4H) activated gates i, f, g, o;  c, c_prev (H) the cell state after and before the step
//   dc (H) in: the carried gradient of c_t, out: that of c_{t-1}
//   d (4H) out: the gradients of the four pre-activations
template <typename T>
void lstm_cell_backward(int64_t H, int64_t u0, int64_t u1, const T* g, const T* c,
                        const T* c_prev, const T* dy, const T* dh_carry, T* dc, T* d);

// Units [u0, u1) of one sequence's GRU step after the recurrent product (PyTorch's reset after:
// n = tanh(x_n + b_in + r * (W_hn h + b_hn))), fused (float: a vector of units at a time).
//   g (3H)  in: the input side's pre-activations of r, z, n without bias; out (keep_gates,
//           training): the activated r, z, n, else unspecified
//   hp (3H) the recurrent product W_hh h_{t-1}, without bias
//   bx (3H) = [b_ir + b_hr, b_iz + b_hz, b_in],  bhn (H) = b_hn
//   hn (H)  out (keep_gates): W_hn h_{t-1} + b_hn
// h_out = n + z * (h_prev - n), a row of H overlapping no other. Only units [u0, u1) of each
// gate and row are read or written.
template <typename T>
void gru_cell(int64_t H, int64_t u0, int64_t u1, const T* bx, const T* bhn, T* g, const T* hp,
              const T* h_prev, T* hn, T* h_out, bool keep_gates);

// Units [u0, u1) of one sequence's GRU step backward (reset after), fused. dh = dy + dh_carry
// (either may be null: zero).
//   g (3H) the activated r, z, n;  hn (H) W_hn h_{t-1} + b_hn
//   dhg (3H) out: the gradients of the recurrent pre-activations [r, z, W_hn h + b_hn]
//   dnx (H)  out: the gradient of the input side's n pre-activation
//   dh_direct (H) out: dh * z, the part of dh_{t-1} that bypasses W_hh; may be dh_carry
template <typename T>
void gru_cell_backward(int64_t H, int64_t u0, int64_t u1, const T* g, const T* hn,
                       const T* h_prev, const T* dy, const T* dh_carry, T* dhg, T* dnx,
                       T* dh_direct);

// Units [u0, u1) of one sequence's Elman RNN step after the recurrent product, fused:
// h_out = relu(a + hp + bias) or tanh(a + hp + bias), rows of H (hp, the recurrent product, may
// be null: zero; h_out may be a).
template <typename T>
void rnn_cell(int64_t u0, int64_t u1, bool relu, const T* bias, const T* a, const T* hp,
              T* h_out);

// Units [u0, u1) of its backward: d = (dy + dh_carry) * act'(.), the derivative read off the
// output h (tanh' = 1 - h^2, relu' = [h > 0]). dy and dh_carry may be null (zero).
template <typename T>
void rnn_cell_backward(int64_t u0, int64_t u1, bool relu, const T* h, const T* dy,
                       const T* dh_carry, T* d);

// The GRU with reset before the recurrent product (Cho et al.: n = tanh(x_n + W_hn (r * h) + b_n))
// runs a step in two halves around that product, each fused (float: a vector of units at a
// time); units [u0, u1) of each gate and row. g (3H) holds the pre-activations of r, z, n
// without the bias (input and recurrent sides summed, or the recurrent side in hp (3H), which
// is then added; hp may be null); bias (3H) both biases summed.
//   gru_before_rz: g's r and z activated in place; rh = r * h_prev
//   gru_before_n:  n = tanh(g_n + hp_n + bias_n), kept in g when keep_gates (training), else g's
//                  n unspecified; h_out = n + z * (h_prev - n), a row overlapping no other
template <typename T>
void gru_before_rz(int64_t H, int64_t u0, int64_t u1, const T* bias, T* g, const T* hp,
                   const T* h_prev, T* rh);
template <typename T>
void gru_before_n(int64_t H, int64_t u0, int64_t u1, const T* bias, T* g, const T* hp,
                  const T* h_prev, T* h_out, bool keep_gates);

// Its backward, in the two halves around dn @ W_hn. dh = dy + dh_carry (either may be null).
//   g (3H) the activated r, z, n;  d (3H) out: the gradients of the pre-activations
//   gru_before_n_backward: d's z and n; dh_direct = dh * z (may be dh_carry)
//   gru_before_rz_backward: drh = dn @ W_hn in; d's r; dh_direct += drh * r
template <typename T>
void gru_before_n_backward(int64_t H, int64_t u0, int64_t u1, const T* g, const T* h_prev,
                           const T* dy, const T* dh_carry, T* d, T* dh_direct);
template <typename T>
void gru_before_rz_backward(int64_t u0, int64_t u1, const T* g, const T* h_prev, const T* drh,
                            T* d, T* dh_direct);

}  // namespace seqkern
