// Vectorized float sigmoid/tanh over arrays, written once and compiled once per SIMD level:
// activations.cc (baseline x86-64-v2), activations_avx2.cc and activations_avx512.cc.
// SEQKERN_ISA names the namespace of each copy.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "vector_math.h"

namespace seqkern {
namespace SEQKERN_ISA {

template <vf (*F)(vf)>
static inline void apply(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    vf v;
    std::memcpy(&v, x + i, sizeof v);
    v = F(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  if (i < n) {  // tail: pad with zeros, compute a whole vector, copy back the valid part
    vf v = {};
    std::memcpy(&v, x + i, (n - i) * sizeof(float));
    v = F(v);
    std::memcpy(y + i, &v, (n - i) * sizeof(float));
  }
}

void sigmoid_f32(float* y, const float* x, int64_t n) { apply<vsigmoid>(y, x, n); }
void tanh_f32(float* y, const float* x, int64_t n) { apply<vtanh>(y, x, n); }

template <vd (*F)(vd)>
static inline void apply(double* y, const double* x, int64_t n) {
  int64_t i = 0;
  for (; i + kD <= n; i += kD) vstore(y + i, F(vload(x + i)));
  if (i < n) {  // tail: as apply's float version
    vd v = {};
    std::memcpy(&v, x + i, (n - i) * sizeof(double));
    v = F(v);
    std::memcpy(y + i, &v, (n - i) * sizeof(double));
  }
}

// The float64 activations (seqkern/activations.h keeps the cells' passes around them).
void sigmoid_f64(double* y, const double* x, int64_t n) { apply<vsigmoid>(y, x, n); }
void tanh_f64(double* y, const double* x, int64_t n) { apply<vtanh>(y, x, n); }
void exp_f64(double* y, const double* x, int64_t n) { apply<vexp>(y, x, n); }

// Units [j, j + kW) of lstm_cell up to c: g, hp (kHp) and bias hold the four gates of H units
// each; c_out gets c, h_out the output gate o (lstm_cell_outputs then makes it o * tanh(c)).
template <bool kHp>
static inline void lstm_cell_units(int64_t H, int64_t j, const float* bias, float* g,
                                   const float* hp, const float* c_prev, float* c_out,
                                   float* h_out, bool keep_gates) {
  const auto pre = [&](int64_t q) {
    const vf v = vload(g + q * H + j);
    return (kHp ? v + vload(hp + q * H + j) : v) + vload(bias + q * H + j);
  };
  const vf i = vsigmoid(pre(0));
  const vf f = vsigmoid(pre(1));
  const vf gg = vtanh(pre(2));
  const vf o = vsigmoid(pre(3));
  vstore(c_out + j, f * vload(c_prev + j) + i * gg);
  vstore(h_out + j, o);
  if (keep_gates) {
    vstore(g + j, i);
    vstore(g + H + j, f);
    vstore(g + 2 * H + j, gg);
    vstore(g + 3 * H + j, o);
  }
}

// h = o * tanh(c) for units [u0, u1) (a multiple of kW): h_out holds o.
static inline void lstm_cell_outputs(int64_t u0, int64_t u1, const float* c, float* h_out) {
  for (int64_t j = u0; j < u1; j += kW) vstore(h_out + j, vload(h_out + j) * vtanh(vload(c + j)));
}

// y = exp(x - shift) over n values; returns their sum. y may be x.
float exp_sum_f32(float* y, const float* x, int64_t n, float shift) {
  const vf vs = splat(shift);
  vf acc = splat(0.0f);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    const vf e = vexp0(vload(x + i) - vs);
    vstore(y + i, e);
    acc += e;
  }
  float sum = vsum(acc);
  if (i < n) {  // tail through a padded vector; the padding's exponentials are not summed
    vf v = {};
    std::memcpy(&v, x + i, (n - i) * sizeof(float));
    const vf e = vexp0(v - vs);
    std::memcpy(y + i, &e, (n - i) * sizeof(float));
    for (int64_t k = 0; k < n - i; ++k) sum += e[k];
  }
  return sum;
}

// y = exp(2 x) over n values; returns whether every |x| <= bound (NaN is not). y may be x.
bool exp_doubled_f32(float* y, const float* x, int64_t n, float bound) {
  const vf vb = splat(bound);
  vi in = vi{} - 1;
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    const vf v = vload(x + i);
    in &= vabs(v) <= vb;
    vstore(y + i, vexp(v + v));
  }
  bool all = true;
  for (int k = 0; k < kW; ++k) all &= in[k] != 0;
  if (i < n) {
    vf v = {};
    std::memcpy(&v, x + i, (n - i) * sizeof(float));
    const vf e = vexp(v + v);
    std::memcpy(y + i, &e, (n - i) * sizeof(float));
    for (int64_t k = 0; k < n - i; ++k) all &= std::fabs(v[k]) <= bound;
  }
  return all;
}

// The largest of x[0..n): vmax keeps its second operand, the running maxima, when either is NaN,
// so NaNs are skipped; -inf when there is nothing else. Rows of fewer than 4 vectors stay
// scalar, where reducing the lanes would cost what the vectors save. It replaced
// std::max_element (scalar) in the attention forward's softmax: paired, forward alone, old /
// new time: (4,1024,1024,64) 1.27-1.31x, (8,256,256,128) 1.14-1.17x (forward and backward
// 1.05-1.10x); rows of 30 keys, (64,30,30,256), 0.97-1.01 (two builds alike: 0.98-1.02).
float max_of_f32(const float* x, int64_t n) {
  float m = -__builtin_inff();
  int64_t i = 0;
  if (n >= 4 * kW) {
    vf acc = splat(m);
    for (; i + kW <= n; i += kW) acc = vmax(vload(x + i), acc);
    m = lanes_max(acc);
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Sum of a[i] * b[i] over n values: kW lanes of sums, then the lanes in vsum's order and the
// tail one at a time (the same bits at every call of a level).
float dot_f32(const float* a, const float* b, int64_t n) {
  vf acc = splat(0.0f);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) acc += vload(a + i) * vload(b + i);
  float sum = vsum(acc);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// ds[i] = scale * (p[i] * (ds[i] - d)) over n values: a row of attention's score gradient from
// its probabilities p and their gradient (ds on entry), d = the row's dO . O.
void score_grad_f32(float* ds, const float* p, int64_t n, float d, float scale) {
  const vf vd_ = splat(d), vs = splat(scale);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) vstore(ds + i, vs * (vload(p + i) * (vload(ds + i) - vd_)));
  for (; i < n; ++i) ds[i] = scale * (p[i] * (ds[i] - d));
}

// y[i] += a * x[i] over n values.
void axpy_f32(float a, const float* x, float* y, int64_t n) {
  const vf va = splat(a);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) vstore(y + i, vload(y + i) + va * vload(x + i));
  for (; i < n; ++i) y[i] += a * x[i];
}

// Additive attention's scores of one query over n keys (rows of k, ld apart), A values each:
// s[j] = u . th(q_a, k_ja) over a, summed as dot_f32 sums; with t, th also into t + j * A. The
// last A % kW values go through one zero-padded vector.
template <typename Th>
void pair_scores(const float* q, const float* k, int64_t ld, const float* u, int64_t A,
                 int64_t n, float* s, float* t, Th th_of) {
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = k + j * ld;
    float* tj = t ? t + j * A : nullptr;
    vf acc = splat(0.0f);
    int64_t a = 0;
    for (; a + kW <= A; a += kW) {
      const vf th = th_of(vload(q + a), vload(kj + a));
      if (tj) vstore(tj + a, th);
      acc += vload(u + a) * th;
    }
    float sum = vsum(acc);
    if (a < A) {
      vf x = {}, y = {};
      std::memcpy(&x, q + a, (A - a) * sizeof(float));
      std::memcpy(&y, kj + a, (A - a) * sizeof(float));
      const vf th = th_of(x, y);
      if (tj) std::memcpy(tj + a, &th, (A - a) * sizeof(float));
      for (int64_t i = 0; i < A - a; ++i) sum += u[a + i] * th[i];
    }
    s[j] = sum;
  }
}

// th = tanh(q + k_j).
void additive_scores_f32(const float* q, const float* k, int64_t ld, const float* u, int64_t A,
                         int64_t n, float* s, float* t) {
  pair_scores(q, k, ld, u, A, n, s, t, [](vf x, vf y) { return vtanh(x + y); });
}

// From eq = exp(2q) and ek = exp(2k): th = tanh(q + k_j) = 1 - 2 / (eq ek_j + 1), a product and
// a reciprocal where vtanh takes two polynomials, an exponential and a reciprocal.
void additive_scores_exp_f32(const float* eq, const float* ek, int64_t ld, const float* u,
                             int64_t A, int64_t n, float* s, float* t) {
  pair_scores(eq, ek, ld, u, A, n, s, t,
              [](vf x, vf y) { return 1.0f - 2.0f * vrecip(x * y + 1.0f); });
}

// The gradient through one (query, key) pair of additive attention, ds that of its score and
// t = tanh(q + k_j): du += ds t, and g = ds u (1 - t^2) added to both dq and dk.
void additive_grad_f32(float ds, const float* t, const float* u, int64_t A, float* du, float* dq,
                       float* dk) {
  const vf vds = splat(ds), one = splat(1.0f);
  int64_t a = 0;
  for (; a + kW <= A; a += kW) {
    const vf tv = vload(t + a);
    vstore(du + a, vload(du + a) + vds * tv);
    const vf g = vds * vload(u + a) * (one - tv * tv);
    vstore(dq + a, vload(dq + a) + g);
    vstore(dk + a, vload(dk + a) + g);
  }
  for (; a < A; ++a) {
    du[a] += ds * t[a];
    const float g = ds * u[a] * (1.0f - t[a] * t[a]);
    dq[a] += g;
    dk[a] += g;
  }
}

// See lstm_cell in seqkern/activations.h: kW hidden units at a time, in two passes, c and o
// first, then o * tanh(c). In one pass, each vector's chain of dependent operations (the
// gates' activations, c, tanh(c)) outran what the core keeps in flight: one core, Zen 5, 32 x
// 256 units, 1.48 -> 1.13 ns a unit at AVX-512, 3.02 -> 2.32 at AVX2, baseline even; bitwise
// unchanged. Layers, 2 threads, paired: LSTM inference (100,64,256,256) 1.04x, (200,32,128,128)
// 1.03x (eval 1.07x, bfloat16 1.07x), batch 1 within the noise; training 0.99-1.02x. The last
// (u1 - u0) % kW units go through a padded copy, so the main loops are free of partial vectors.
void lstm_cell_f32(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,
                   const float* hp, const float* c_prev, float* c_out, float* h_out,
                   bool keep_gates) {
  int64_t j = u0;
  if (hp)
    for (; j + kW <= u1; j += kW)
      lstm_cell_units<true>(H, j, bias, g, hp, c_prev, c_out, h_out, keep_gates);
  else
    for (; j + kW <= u1; j += kW)
      lstm_cell_units<false>(H, j, bias, g, hp, c_prev, c_out, h_out, keep_gates);
  lstm_cell_outputs(u0, j, c_out, h_out);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one vector of each array, zero-padded
  float tb[4 * kW] = {}, tg[4 * kW] = {}, tcp[kW] = {}, tc[kW], th[kW];
  for (int q = 0; q < 4; ++q) {
    std::memcpy(tb + q * kW, bias + q * H + j, m * sizeof(float));
    std::memcpy(tg + q * kW, g + q * H + j, m * sizeof(float));
    if (hp)  // (added here: the padding is zero either way)
      for (int64_t k = 0; k < m; ++k) tg[q * kW + k] += hp[q * H + j + k];
  }
  std::memcpy(tcp, c_prev + j, m * sizeof(float));
  lstm_cell_units<false>(kW, 0, tb, tg, nullptr, tcp, tc, th, keep_gates);
  lstm_cell_outputs(0, kW, tc, th);
  std::memcpy(c_out + j, tc, m * sizeof(float));
  std::memcpy(h_out + j, th, m * sizeof(float));
  if (keep_gates)
    for (int q = 0; q < 4; ++q) std::memcpy(g + q * H + j, tg + q * kW, m * sizeof(float));
}

// Units [j, j + kW) of lstm_cell_backward; dy and dh_carry may be null (zero).
static inline void lstm_cell_backward_units(int64_t H, int64_t j, const float* g, const float* c,
                                            const float* c_prev, const float* dy,
                                            const float* dh_carry, float* dc, float* d) {
  const vf i = vload(g + j), f = vload(g + H + j), gg = vload(g + 2 * H + j);
  const vf o = vload(g + 3 * H + j);
  const vf zero = splat(0.0f);
  const vf dh = (dy ? vload(dy + j) : zero) + (dh_carry ? vload(dh_carry + j) : zero);
  const vf t = vtanh(vload(c + j));
  const vf dct = vload(dc + j) + dh * o * (1.0f - t * t);
  vstore(d + j, dct * gg * i * (1.0f - i));
  vstore(d + H + j, dct * vload(c_prev + j) * f * (1.0f - f));
  vstore(d + 2 * H + j, dct * i * (1.0f - gg * gg));
  vstore(d + 3 * H + j, dh * t * o * (1.0f - o));
  vstore(dc + j, dct * f);
}

// See lstm_cell_backward in seqkern/activations.h; the tail as in lstm_cell_f32.
void lstm_cell_backward_f32(int64_t H, int64_t u0, int64_t u1, const float* g, const float* c,
                            const float* c_prev, const float* dy, const float* dh_carry,
                            float* dc, float* d) {
  int64_t j = u0;
  for (; j + kW <= u1; j += kW) lstm_cell_backward_units(H, j, g, c, c_prev, dy, dh_carry, dc, d);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tg[4 * kW] = {}, tc[kW] = {}, tcp[kW] = {}, ty[kW] = {}, th[kW] = {}, tdc[kW] = {};
  float td[4 * kW];
  for (int q = 0; q < 4; ++q) std::memcpy(tg + q * kW, g + q * H + j, m * sizeof(float));
  std::memcpy(tc, c + j, m * sizeof(float));
  std::memcpy(tcp, c_prev + j, m * sizeof(float));
  std::memcpy(tdc, dc + j, m * sizeof(float));
  if (dy) std::memcpy(ty, dy + j, m * sizeof(float));
  if (dh_carry) std::memcpy(th, dh_carry + j, m * sizeof(float));
  lstm_cell_backward_units(kW, 0, tg, tc, tcp, ty, th, tdc, td);
  std::memcpy(dc + j, tdc, m * sizeof(float));
  for (int q = 0; q < 4; ++q) std::memcpy(d + q * H + j, td + q * kW, m * sizeof(float));
}

// Units [j, j + kW) of gru_cell.
static inline void gru_cell_units(int64_t H, int64_t j, const float* bx, const float* bhn,
                                  float* g, const float* hp, const float* h_prev, float* hn,
                                  float* h_out, bool keep_gates) {
  const vf r = vsigmoid(vload(g + j) + (vload(bx + j) + vload(hp + j)));
  const vf z = vsigmoid(vload(g + H + j) + (vload(bx + H + j) + vload(hp + H + j)));
  const vf hn_j = vload(hp + 2 * H + j) + vload(bhn + j);
  const vf n = vtanh(vload(g + 2 * H + j) + (vload(bx + 2 * H + j) + r * hn_j));
  vstore(h_out + j, n + z * (vload(h_prev + j) - n));
  if (keep_gates) {
    vstore(g + j, r);
    vstore(g + H + j, z);
    vstore(g + 2 * H + j, n);
    vstore(hn + j, hn_j);
  }
}

// See gru_cell in seqkern/activations.h; the tail as in lstm_cell_f32. It replaced three loops
// over the units (the sigmoids' and tanh's arrays, then scalar code built for baseline x86-64)
// that stored every intermediate, in inference too: GRU layers, Zen 5, 2 threads, paired, old /
// new time, inference, training and bfloat16: (100,64,256,256) 1.03, 1.06 and 1.06,
// (200,32,128,128) 1.15, 1.08 and 1.14, (50,8,64,64) 1.20, 1.20 and 1.11, (35,20,650,650)
// 1.05, 1.09 and 1.04, batch 1 0.99-1.10; at AVX2 0.99-1.06 inference, 1.00-1.23 training.
void gru_cell_f32(int64_t H, int64_t u0, int64_t u1, const float* bx, const float* bhn, float* g,
                  const float* hp, const float* h_prev, float* hn, float* h_out,
                  bool keep_gates) {
  int64_t j = u0;
  for (; j + kW <= u1; j += kW)
    gru_cell_units(H, j, bx, bhn, g, hp, h_prev, hn, h_out, keep_gates);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tbx[3 * kW] = {}, tg[3 * kW] = {}, thp[3 * kW] = {}, tbhn[kW] = {}, thprev[kW] = {};
  float thn[kW], th[kW];
  for (int q = 0; q < 3; ++q) {
    std::memcpy(tbx + q * kW, bx + q * H + j, m * sizeof(float));
    std::memcpy(tg + q * kW, g + q * H + j, m * sizeof(float));
    std::memcpy(thp + q * kW, hp + q * H + j, m * sizeof(float));
  }
  std::memcpy(tbhn, bhn + j, m * sizeof(float));
  std::memcpy(thprev, h_prev + j, m * sizeof(float));
  gru_cell_units(kW, 0, tbx, tbhn, tg, thp, thprev, thn, th, keep_gates);
  std::memcpy(h_out + j, th, m * sizeof(float));
  if (!keep_gates) return;
  for (int q = 0; q < 3; ++q) std::memcpy(g + q * H + j, tg + q * kW, m * sizeof(float));
  std::memcpy(hn + j, thn, m * sizeof(float));
}

// Units [j, j + kW) of gru_cell_backward; dy and dh_carry may be null (zero).
static inline void gru_cell_backward_units(int64_t H, int64_t j, const float* g, const float* hn,
                                           const float* h_prev, const float* dy,
                                           const float* dh_carry, float* dhg, float* dnx,
                                           float* dh_direct) {
  const vf r = vload(g + j), z = vload(g + H + j), n = vload(g + 2 * H + j);
  const vf zero = splat(0.0f);
  const vf dh = (dy ? vload(dy + j) : zero) + (dh_carry ? vload(dh_carry + j) : zero);
  const vf dn = dh * (1.0f - z) * (1.0f - n * n);
  const vf dr = dn * vload(hn + j);
  const vf dz = dh * (vload(h_prev + j) - n);
  vstore(dhg + j, dr * r * (1.0f - r));
  vstore(dhg + H + j, dz * z * (1.0f - z));
  vstore(dhg + 2 * H + j, dn * r);
  vstore(dnx + j, dn);
  vstore(dh_direct + j, dh * z);
}

// See gru_cell_backward in seqkern/activations.h; the tail as in lstm_cell_f32.
void gru_cell_backward_f32(int64_t H, int64_t u0, int64_t u1, const float* g, const float* hn,
                           const float* h_prev, const float* dy, const float* dh_carry,
                           float* dhg, float* dnx, float* dh_direct) {
  int64_t j = u0;
  for (; j + kW <= u1; j += kW)
    gru_cell_backward_units(H, j, g, hn, h_prev, dy, dh_carry, dhg, dnx, dh_direct);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tg[3 * kW] = {}, thn[kW] = {}, thp[kW] = {}, ty[kW] = {}, tc[kW] = {};
  float tdhg[3 * kW], tdnx[kW], tdd[kW];
  for (int q = 0; q < 3; ++q) std::memcpy(tg + q * kW, g + q * H + j, m * sizeof(float));
  std::memcpy(thn, hn + j, m * sizeof(float));
  std::memcpy(thp, h_prev + j, m * sizeof(float));
  if (dy) std::memcpy(ty, dy + j, m * sizeof(float));
  if (dh_carry) std::memcpy(tc, dh_carry + j, m * sizeof(float));
  gru_cell_backward_units(kW, 0, tg, thn, thp, ty, tc, tdhg, tdnx, tdd);
  for (int q = 0; q < 3; ++q) std::memcpy(dhg + q * H + j, tdhg + q * kW, m * sizeof(float));
  std::memcpy(dnx + j, tdnx, m * sizeof(float));
  std::memcpy(dh_direct + j, tdd, m * sizeof(float));
}

// Units [j, j + kW) of rnn_cell.
template <bool kHp>
static inline void rnn_cell_units(int64_t j, bool relu, const float* bias, const float* a,
                                  const float* hp, float* h_out) {
  const vf v = (kHp ? vload(a + j) + vload(hp + j) : vload(a + j)) + vload(bias + j);
  const vf zero = splat(0.0f);
  vstore(h_out + j, relu ? (v <= zero ? zero : v) : vtanh(v));  // NaN passes, as torch's relu
}

// See rnn_cell in seqkern/activations.h; the tail as in lstm_cell_f32. With rnn_cell_backward
// it replaced scalar loops built for baseline x86-64 (the bias, relu, both derivatives) around
// the tanh pass: RNN layers, Zen 5, 2 threads, paired both orders, old / new time: tanh
// 1.04-1.13x inference and training; relu training (100,64,256,256) 1.29-1.30x,
// (200,32,128,128) 1.54-1.55x (the derivative's branch); batch 1 0.99-1.04; at AVX2 1.01-1.31.
void rnn_cell_f32(int64_t u0, int64_t u1, bool relu, const float* bias, const float* a,
                  const float* hp, float* h_out) {
  int64_t j = u0;
  if (hp)
    for (; j + kW <= u1; j += kW) rnn_cell_units<true>(j, relu, bias, a, hp, h_out);
  else
    for (; j + kW <= u1; j += kW) rnn_cell_units<false>(j, relu, bias, a, hp, h_out);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tb[kW] = {}, ta[kW] = {}, th[kW];
  std::memcpy(tb, bias + j, m * sizeof(float));
  std::memcpy(ta, a + j, m * sizeof(float));
  if (hp)
    for (int64_t k = 0; k < m; ++k) ta[k] += hp[j + k];
  rnn_cell_units<false>(0, relu, tb, ta, nullptr, th);
  std::memcpy(h_out + j, th, m * sizeof(float));
}

// Units [j, j + kW) of rnn_cell_backward.
static inline void rnn_cell_backward_units(int64_t j, bool relu, const float* h, const float* dy,
                                           const float* dh_carry, float* d) {
  const vf zero = splat(0.0f);
  const vf dh = (dy ? vload(dy + j) : zero) + (dh_carry ? vload(dh_carry + j) : zero);
  const vf hj = vload(h + j);
  vstore(d + j, relu ? (vf)((vi)dh & (vi)(hj > zero)) : dh * (1.0f - hj * hj));
}

// See rnn_cell_backward in seqkern/activations.h; the tail as in lstm_cell_f32.
void rnn_cell_backward_f32(int64_t u0, int64_t u1, bool relu, const float* h, const float* dy,
                           const float* dh_carry, float* d) {
  int64_t j = u0;
  for (; j + kW <= u1; j += kW) rnn_cell_backward_units(j, relu, h, dy, dh_carry, d);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float th[kW] = {}, ty[kW] = {}, tc[kW] = {}, td[kW];
  std::memcpy(th, h + j, m * sizeof(float));
  if (dy) std::memcpy(ty, dy + j, m * sizeof(float));
  if (dh_carry) std::memcpy(tc, dh_carry + j, m * sizeof(float));
  rnn_cell_backward_units(0, relu, th, ty, tc, td);
  std::memcpy(d + j, td, m * sizeof(float));
}

// Units [j, j + kW) of gru_before_rz.
template <bool kHp>
static inline void gru_before_rz_units(int64_t H, int64_t j, const float* bias, float* g,
                                       const float* hp, const float* h_prev, float* rh) {
  const auto pre = [&](int64_t q) {
    const vf v = vload(g + q * H + j);
    return (kHp ? v + vload(hp + q * H + j) : v) + vload(bias + q * H + j);
  };
  const vf r = vsigmoid(pre(0));
  vstore(g + H + j, vsigmoid(pre(1)));
  vstore(g + j, r);
  vstore(rh + j, r * vload(h_prev + j));
}

// See gru_before_rz in seqkern/activations.h; the tail as in lstm_cell_f32. This and the three
// below replaced passes over arrays (bias loops and r * h built for baseline x86-64, the
// sigmoids' and tanh's arrays): GRU layers with reset before, Zen 5, 2 threads, paired both
// orders, old / new time, inference and training: (50,8,64,64) 1.15-1.17x and 1.11-1.15x,
// (200,32,128,128) 1.07-1.08x and 1.12-1.11x, (100,64,256,256) 1.03-1.04x and 1.06x, batch 1
// 0.99-1.01; at AVX2 1.02-1.09x.
void gru_before_rz_f32(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,
                       const float* hp, const float* h_prev, float* rh) {
  int64_t j = u0;
  if (hp)
    for (; j + kW <= u1; j += kW) gru_before_rz_units<true>(H, j, bias, g, hp, h_prev, rh);
  else
    for (; j + kW <= u1; j += kW) gru_before_rz_units<false>(H, j, bias, g, hp, h_prev, rh);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tb[2 * kW] = {}, tg[2 * kW] = {}, thp[kW] = {}, trh[kW];
  for (int q = 0; q < 2; ++q) {
    std::memcpy(tb + q * kW, bias + q * H + j, m * sizeof(float));
    std::memcpy(tg + q * kW, g + q * H + j, m * sizeof(float));
    if (hp)
      for (int64_t k = 0; k < m; ++k) tg[q * kW + k] += hp[q * H + j + k];
  }
  std::memcpy(thp, h_prev + j, m * sizeof(float));
  gru_before_rz_units<false>(kW, 0, tb, tg, nullptr, thp, trh);
  for (int q = 0; q < 2; ++q) std::memcpy(g + q * H + j, tg + q * kW, m * sizeof(float));
  std::memcpy(rh + j, trh, m * sizeof(float));
}

// Units [j, j + kW) of gru_before_n.
template <bool kHp>
static inline void gru_before_n_units(int64_t H, int64_t j, const float* bias, float* g,
                                      const float* hp, const float* h_prev, float* h_out,
                                      bool keep_gates) {
  const vf v = vload(g + 2 * H + j);
  const vf n = vtanh((kHp ? v + vload(hp + 2 * H + j) : v) + vload(bias + 2 * H + j));
  vstore(h_out + j, n + vload(g + H + j) * (vload(h_prev + j) - n));
  if (keep_gates) vstore(g + 2 * H + j, n);
}

// See gru_before_n in seqkern/activations.h; the tail as in lstm_cell_f32.
void gru_before_n_f32(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,
                      const float* hp, const float* h_prev, float* h_out, bool keep_gates) {
  int64_t j = u0;
  if (hp)
    for (; j + kW <= u1; j += kW)
      gru_before_n_units<true>(H, j, bias, g, hp, h_prev, h_out, keep_gates);
  else
    for (; j + kW <= u1; j += kW)
      gru_before_n_units<false>(H, j, bias, g, hp, h_prev, h_out, keep_gates);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tb[3 * kW] = {}, tg[3 * kW] = {}, thp[kW] = {}, th[kW];
  for (int q = 1; q < 3; ++q) {  // z and n
    std::memcpy(tb + q * kW, bias + q * H + j, m * sizeof(float));
    std::memcpy(tg + q * kW, g + q * H + j, m * sizeof(float));
  }
  if (hp)
    for (int64_t k = 0; k < m; ++k) tg[2 * kW + k] += hp[2 * H + j + k];
  std::memcpy(thp, h_prev + j, m * sizeof(float));
  gru_before_n_units<false>(kW, 0, tb, tg, nullptr, thp, th, keep_gates);
  std::memcpy(h_out + j, th, m * sizeof(float));
  if (keep_gates) std::memcpy(g + 2 * H + j, tg + 2 * kW, m * sizeof(float));
}

// Units [j, j + kW) of gru_before_n_backward; dy and dh_carry may be null (zero).
static inline void gru_before_n_backward_units(int64_t H, int64_t j, const float* g,
                                               const float* h_prev, const float* dy,
                                               const float* dh_carry, float* d,
                                               float* dh_direct) {
  const vf z = vload(g + H + j), n = vload(g + 2 * H + j);
  const vf zero = splat(0.0f);
  const vf dh = (dy ? vload(dy + j) : zero) + (dh_carry ? vload(dh_carry + j) : zero);
  vstore(d + 2 * H + j, dh * (1.0f - z) * (1.0f - n * n));
  vstore(d + H + j, dh * (vload(h_prev + j) - n) * z * (1.0f - z));
  vstore(dh_direct + j, dh * z);
}

// See gru_before_n_backward in seqkern/activations.h; the tail as in lstm_cell_f32.
void gru_before_n_backward_f32(int64_t H, int64_t u0, int64_t u1, const float* g,
                               const float* h_prev, const float* dy, const float* dh_carry,
                               float* d, float* dh_direct) {
  int64_t j = u0;
  for (; j + kW <= u1; j += kW)
    gru_before_n_backward_units(H, j, g, h_prev, dy, dh_carry, d, dh_direct);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tg[3 * kW] = {}, thp[kW] = {}, ty[kW] = {}, tc[kW] = {}, td[3 * kW], tdd[kW];
  for (int q = 1; q < 3; ++q) std::memcpy(tg + q * kW, g + q * H + j, m * sizeof(float));
  std::memcpy(thp, h_prev + j, m * sizeof(float));
  if (dy) std::memcpy(ty, dy + j, m * sizeof(float));
  if (dh_carry) std::memcpy(tc, dh_carry + j, m * sizeof(float));
  gru_before_n_backward_units(kW, 0, tg, thp, ty, tc, td, tdd);
  for (int q = 1; q < 3; ++q) std::memcpy(d + q * H + j, td + q * kW, m * sizeof(float));
  std::memcpy(dh_direct + j, tdd, m * sizeof(float));
}

// Units [j, j + kW) of gru_before_rz_backward.
static inline void gru_before_rz_backward_units(int64_t j, const float* g, const float* h_prev,
                                                const float* drh, float* d, float* dh_direct) {
  const vf r = vload(g + j), dr = vload(drh + j);
  vstore(d + j, dr * vload(h_prev + j) * r * (1.0f - r));
  vstore(dh_direct + j, vload(dh_direct + j) + dr * r);
}

// See gru_before_rz_backward in seqkern/activations.h; the tail as in lstm_cell_f32.
void gru_before_rz_backward_f32(int64_t u0, int64_t u1, const float* g, const float* h_prev,
                                const float* drh, float* d, float* dh_direct) {
  int64_t j = u0;
  for (; j + kW <= u1; j += kW) gru_before_rz_backward_units(j, g, h_prev, drh, d, dh_direct);
  if (j == u1) return;
  const int64_t m = u1 - j;  // 1..kW-1 units: one zero-padded vector of each array
  float tg[kW] = {}, thp[kW] = {}, tdr[kW] = {}, td[kW], tdd[kW] = {};
  std::memcpy(tg, g + j, m * sizeof(float));
  std::memcpy(thp, h_prev + j, m * sizeof(float));
  std::memcpy(tdr, drh + j, m * sizeof(float));
  std::memcpy(tdd, dh_direct + j, m * sizeof(float));
  gru_before_rz_backward_units(0, tg, thp, tdr, td, tdd);
  std::memcpy(d + j, td, m * sizeof(float));
  std::memcpy(dh_direct + j, tdd, m * sizeof(float));
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
