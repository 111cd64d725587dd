// Activation entry points, on the kernels of the SIMD level in use (seqkern/simd.h): float's
// fused cells, and float64's vectorized activations inside plain loops.
#include "seqkern/activations.h"

#include <cmath>
#include <vector>

#include "seqkern/simd.h"

#define SEQKERN_ISA baseline
#include "activations_impl.h"
#undef SEQKERN_ISA

namespace seqkern {

#if SEQKERN_X86
#define SEQKERN_DECLARE_FLOAT_KERNELS                                                          \
  void sigmoid_f32(float* y, const float* x, int64_t n);                                      \
  void tanh_f32(float* y, const float* x, int64_t n);                                         \
  float exp_sum_f32(float* y, const float* x, int64_t n, float shift);                        \
  bool exp_doubled_f32(float* y, const float* x, int64_t n, float bound);                      \
  float max_of_f32(const float* x, int64_t n);                                                \
  float dot_f32(const float* a, const float* b, int64_t n);                                   \
  void score_grad_f32(float* ds, const float* p, int64_t n, float d, float scale);            \
  void axpy_f32(float a, const float* x, float* y, int64_t n);                                \
  void additive_scores_f32(const float* q, const float* k, int64_t ld, const float* u,         \
                           int64_t A, int64_t n, float* s, float* t);                         \
  void additive_scores_exp_f32(const float* eq, const float* ek, int64_t ld, const float* u,  \
                               int64_t A, int64_t n, float* s, float* t);                     \
  void additive_grad_f32(float ds, const float* t, const float* u, int64_t A, float* du,       \
                         float* dq, float* dk);                                               \
  void lstm_cell_f32(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,           \
                     const float* hp, const float* c_prev, float* c_out, float* h_out,        \
                     bool keep_gates);                                                        \
  void lstm_cell_backward_f32(int64_t H, int64_t u0, int64_t u1, const float* g, const float* c, \
                              const float* c_prev, const float* dy, const float* dh_carry,      \
                              float* dc, float* d);                                         \
  void gru_cell_f32(int64_t H, int64_t u0, int64_t u1, const float* bx, const float* bhn,      \
                    float* g, const float* hp, const float* h_prev, float* hn, float* h_out,  \
                    bool keep_gates);                                                         \
  void gru_cell_backward_f32(int64_t H, int64_t u0, int64_t u1, const float* g,               \
                             const float* hn, const float* h_prev, const float* dy,          \
                             const float* dh_carry, float* dhg, float* dnx, float* dh_direct); \
  void rnn_cell_f32(int64_t u0, int64_t u1, bool relu, const float* bias, const float* a,     \
                    const float* hp, float* h_out);                                           \
  void rnn_cell_backward_f32(int64_t u0, int64_t u1, bool relu, const float* h, const float* dy, \
                             const float* dh_carry, float* d);                                \
  void gru_before_rz_f32(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,      \
                         const float* hp, const float* h_prev, float* rh);                    \
  void gru_before_n_f32(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,       \
                        const float* hp, const float* h_prev, float* h_out, bool keep_gates); \
  void gru_before_n_backward_f32(int64_t H, int64_t u0, int64_t u1, const float* g,           \
                                 const float* h_prev, const float* dy, const float* dh_carry, \
                                 float* d, float* dh_direct);                                 \
  void gru_before_rz_backward_f32(int64_t u0, int64_t u1, const float* g, const float* h_prev, \
                                  const float* drh, float* d, float* dh_direct);  \
  void sigmoid_f64(double* y, const double* x, int64_t n);                                    \
  void tanh_f64(double* y, const double* x, int64_t n);                                       \
  void exp_f64(double* y, const double* x, int64_t n);
namespace avx2 {
SEQKERN_DECLARE_FLOAT_KERNELS
}  // namespace avx2
namespace avx512 {
SEQKERN_DECLARE_FLOAT_KERNELS
}  // namespace avx512
#undef SEQKERN_DECLARE_FLOAT_KERNELS
#endif

namespace {

struct Kernels {
  void (*sigmoid)(float*, const float*, int64_t);
  void (*tanh)(float*, const float*, int64_t);
  float (*exp_sum)(float*, const float*, int64_t, float);
  bool (*exp_doubled)(float*, const float*, int64_t, float);
  float (*max_of)(const float*, int64_t);
  float (*dot)(const float*, const float*, int64_t);
  void (*score_grad)(float*, const float*, int64_t, float, float);
  void (*axpy)(float, const float*, float*, int64_t);
  void (*additive_scores)(const float*, const float*, int64_t, const float*, int64_t, int64_t,
                          float*, float*);
  void (*additive_scores_exp)(const float*, const float*, int64_t, const float*, int64_t,
                              int64_t, float*, float*);
  void (*additive_grad)(float, const float*, const float*, int64_t, float*, float*, float*);
  void (*lstm_cell)(int64_t, int64_t, int64_t, const float*, float*, const float*, const float*,
                    float*, float*, bool);
  void (*lstm_cell_backward)(int64_t, int64_t, int64_t, const float*, const float*, const float*,
                             const float*, const float*, float*, float*);
  void (*gru_cell)(int64_t, int64_t, int64_t, const float*, const float*, float*, const float*,
                   const float*, float*, float*, bool);
  void (*gru_cell_backward)(int64_t, int64_t, int64_t, const float*, const float*, const float*,
                            const float*, const float*, float*, float*, float*);
  void (*rnn_cell)(int64_t, int64_t, bool, const float*, const float*, const float*, float*);
  void (*rnn_cell_backward)(int64_t, int64_t, bool, const float*, const float*, const float*,
                            float*);
  void (*gru_before_rz)(int64_t, int64_t, int64_t, const float*, float*, const float*,
                        const float*, float*);
  void (*gru_before_n)(int64_t, int64_t, int64_t, const float*, float*, const float*,
                       const float*, float*, bool);
  void (*gru_before_n_backward)(int64_t, int64_t, int64_t, const float*, const float*,
                                const float*, const float*, float*, float*);
  void (*gru_before_rz_backward)(int64_t, int64_t, const float*, const float*, const float*,
                                 float*, float*);
  void (*sigmoid_f64)(double*, const double*, int64_t);
  void (*tanh_f64)(double*, const double*, int64_t);
  void (*exp_f64)(double*, const double*, int64_t);
};

// The copy of the level in use (seqkern/simd.h).
#define SEQKERN_KERNELS(ISA)                                                              \
  Kernels {                                                                                \
    ISA::sigmoid_f32, ISA::tanh_f32, ISA::exp_sum_f32, ISA::exp_doubled_f32, ISA::max_of_f32,   \
        ISA::dot_f32, ISA::score_grad_f32, ISA::axpy_f32, ISA::additive_scores_f32,             \
        ISA::additive_scores_exp_f32, ISA::additive_grad_f32, ISA::lstm_cell_f32,               \
        ISA::lstm_cell_backward_f32, ISA::gru_cell_f32, ISA::gru_cell_backward_f32,             \
        ISA::rnn_cell_f32, ISA::rnn_cell_backward_f32, ISA::gru_before_rz_f32,                  \
        ISA::gru_before_n_f32, ISA::gru_before_n_backward_f32, ISA::gru_before_rz_backward_f32, \
        ISA::sigmoid_f64, ISA::tanh_f64, ISA::exp_f64                                           \
  }
Kernels choose() {
#if SEQKERN_X86
  if (simd() == Simd::avx512) return SEQKERN_KERNELS(avx512);
  if (simd() == Simd::avx2) return SEQKERN_KERNELS(avx2);
#endif
  return SEQKERN_KERNELS(baseline);
}
#undef SEQKERN_KERNELS

const Kernels& kernels() {
  static const Kernels k = choose();
  return k;
}

}  // namespace

template <> void sigmoid_inplace<float>(float* x, int64_t n) { kernels().sigmoid(x, x, n); }
template <> void tanh_inplace<float>(float* x, int64_t n) { kernels().tanh(x, x, n); }
template <> void tanh_to<float>(float* y, const float* x, int64_t n) { kernels().tanh(y, x, n); }
template <> float exp_sum<float>(float* y, const float* x, int64_t n, float shift) {
  return kernels().exp_sum(y, x, n, shift);
}

template <> bool exp_doubled<float>(float* y, const float* x, int64_t n, float bound) {
  return kernels().exp_doubled(y, x, n, bound);
}
template <> bool exp_doubled<double>(double* y, const double* x, int64_t n, double bound) {
  bool all = true;
  for (int64_t i = 0; i < n; ++i) {
    all &= std::fabs(x[i]) <= bound;
    y[i] = 2 * x[i];
  }
  kernels().exp_f64(y, y, n);
  return all;
}

template <> float max_of<float>(const float* x, int64_t n) { return kernels().max_of(x, n); }
template <> float dot<float>(const float* a, const float* b, int64_t n) {
  return kernels().dot(a, b, n);
}
template <> void score_grad<float>(float* ds, const float* p, int64_t n, float d, float scale) {
  kernels().score_grad(ds, p, n, d, scale);
}
template <> double dot<double>(const double* a, const double* b, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}
template <>
void score_grad<double>(double* ds, const double* p, int64_t n, double d, double scale) {
  for (int64_t i = 0; i < n; ++i) ds[i] = scale * (p[i] * (ds[i] - d));
}
template <> void axpy<float>(float a, const float* x, float* y, int64_t n) {
  kernels().axpy(a, x, y, n);
}
template <> void axpy<double>(double a, const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
template <>
void additive_scores<float>(const float* q, const float* k, int64_t ld, const float* u,
                            int64_t A, int64_t n, float* s, float* t) {
  kernels().additive_scores(q, k, ld, u, A, n, s, t);
}
template <>
void additive_scores_exp<float>(const float* eq, const float* ek, int64_t ld, const float* u,
                                int64_t A, int64_t n, float* s, float* t) {
  kernels().additive_scores_exp(eq, ek, ld, u, A, n, s, t);
}
template <> void additive_grad<float>(float ds, const float* t, const float* u, int64_t A,
                                      float* du, float* dq, float* dk) {
  kernels().additive_grad(ds, t, u, A, du, dq, dk);
}
template <> void additive_grad<double>(double ds, const double* t, const double* u, int64_t A,
                                       double* du, double* dq, double* dk) {
  for (int64_t a = 0; a < A; ++a) {
    du[a] += ds * t[a];
    const double g = ds * u[a] * (1.0 - t[a] * t[a]);
    dq[a] += g;
    dk[a] += g;
  }
}
// float64's cells below are plain loops around these passes over a gate block's units
// [u0, u1): paired against libm's scalar calls in the loops, 2 threads, Zen 5, inference
// 1.50-2.85x (LSTM (50,8,128,128) 1.75x, (100,64,256,256) 1.74x), training 1.19-1.82x.
template <> void sigmoid_inplace<double>(double* x, int64_t n) { kernels().sigmoid_f64(x, x, n); }
template <> void tanh_inplace<double>(double* x, int64_t n) { kernels().tanh_f64(x, x, n); }
template <> void tanh_to<double>(double* y, const double* x, int64_t n) {
  kernels().tanh_f64(y, x, n);
}

template <> double max_of<double>(const double* x, int64_t n) {
  double m = -HUGE_VAL;
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

template <>
void lstm_cell<float>(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,
                      const float* hp, const float* c_prev, float* c_out, float* h_out,
                      bool keep_gates) {
  kernels().lstm_cell(H, u0, u1, bias, g, hp, c_prev, c_out, h_out, keep_gates);
}

template <>
void lstm_cell<double>(int64_t H, int64_t u0, int64_t u1, const double* bias, double* g,
                       const double* hp, const double* c_prev, double* c_out, double* h_out,
                       bool) {
  double *i = g, *f = g + H, *gg = g + 2 * H, *o = g + 3 * H;
  for (int q = 0; q < 4; ++q)
    for (int64_t j = u0; j < u1; ++j)
      g[q * H + j] = (hp ? g[q * H + j] + hp[q * H + j] : g[q * H + j]) + bias[q * H + j];
  sigmoid_inplace(i + u0, u1 - u0);
  sigmoid_inplace(f + u0, u1 - u0);
  tanh_inplace(gg + u0, u1 - u0);
  sigmoid_inplace(o + u0, u1 - u0);
  for (int64_t j = u0; j < u1; ++j) c_out[j] = f[j] * c_prev[j] + i[j] * gg[j];
  tanh_to(h_out + u0, c_out + u0, u1 - u0);
  for (int64_t j = u0; j < u1; ++j) h_out[j] *= o[j];
}

template <>
void lstm_cell_backward<float>(int64_t H, int64_t u0, int64_t u1, const float* g, const float* c,
                               const float* c_prev, const float* dy, const float* dh_carry,
                               float* dc, float* d) {
  kernels().lstm_cell_backward(H, u0, u1, g, c, c_prev, dy, dh_carry, dc, d);
}

template <>
void lstm_cell_backward<double>(int64_t H, int64_t u0, int64_t u1, const double* g,
                                const double* c, const double* c_prev, const double* dy,
                                const double* dh_carry, double* dc, double* d) {
  const double *i = g, *f = g + H, *gg = g + 2 * H, *o = g + 3 * H;
  tanh_to(d + 3 * H + u0, c + u0, u1 - u0);  // tanh(c), read before d's o is written
  for (int64_t j = u0; j < u1; ++j) {
    const double dh = (dy ? dy[j] : 0.0) + (dh_carry ? dh_carry[j] : 0.0);
    const double t = d[3 * H + j];
    const double dct = dc[j] + dh * o[j] * (1.0 - t * t);
    d[j] = dct * gg[j] * i[j] * (1.0 - i[j]);
    d[H + j] = dct * c_prev[j] * f[j] * (1.0 - f[j]);
    d[2 * H + j] = dct * i[j] * (1.0 - gg[j] * gg[j]);
    d[3 * H + j] = dh * t * o[j] * (1.0 - o[j]);
    dc[j] = dct * f[j];
  }
}

template <>
void gru_cell<float>(int64_t H, int64_t u0, int64_t u1, const float* bx, const float* bhn,
                     float* g, const float* hp, const float* h_prev, float* hn, float* h_out,
                     bool keep_gates) {
  kernels().gru_cell(H, u0, u1, bx, bhn, g, hp, h_prev, hn, h_out, keep_gates);
}

template <>
void gru_cell<double>(int64_t H, int64_t u0, int64_t u1, const double* bx, const double* bhn,
                      double* g, const double* hp, const double* h_prev, double* hn,
                      double* h_out, bool keep_gates) {
  double *r = g, *z = g + H, *n = g + 2 * H;  // activated in place
  for (int64_t j = u0; j < u1; ++j) {
    r[j] += bx[j] + hp[j];
    z[j] += bx[H + j] + hp[H + j];
  }
  sigmoid_inplace(r + u0, u1 - u0);
  sigmoid_inplace(z + u0, u1 - u0);
  for (int64_t j = u0; j < u1; ++j) {
    const double hn_j = hp[2 * H + j] + bhn[j];
    n[j] += bx[2 * H + j] + r[j] * hn_j;
    if (keep_gates) hn[j] = hn_j;
  }
  tanh_inplace(n + u0, u1 - u0);
  for (int64_t j = u0; j < u1; ++j) h_out[j] = n[j] + z[j] * (h_prev[j] - n[j]);
}

template <>
void gru_cell_backward<float>(int64_t H, int64_t u0, int64_t u1, const float* g, const float* hn,
                              const float* h_prev, const float* dy, const float* dh_carry,
                              float* dhg, float* dnx, float* dh_direct) {
  kernels().gru_cell_backward(H, u0, u1, g, hn, h_prev, dy, dh_carry, dhg, dnx, dh_direct);
}

template <>
void gru_cell_backward<double>(int64_t H, int64_t u0, int64_t u1, const double* g,
                               const double* hn, const double* h_prev, const double* dy,
                               const double* dh_carry, double* dhg, double* dnx,
                               double* dh_direct) {
  const double *r = g, *z = g + H, *n = g + 2 * H;
  for (int64_t j = u0; j < u1; ++j) {
    const double dh = (dy ? dy[j] : 0.0) + (dh_carry ? dh_carry[j] : 0.0);
    const double dn = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
    const double dr = dn * hn[j];
    const double dz = dh * (h_prev[j] - n[j]);
    dhg[j] = dr * r[j] * (1.0 - r[j]);
    dhg[H + j] = dz * z[j] * (1.0 - z[j]);
    dhg[2 * H + j] = dn * r[j];
    dnx[j] = dn;
    dh_direct[j] = dh * z[j];
  }
}

template <>
void rnn_cell<float>(int64_t u0, int64_t u1, bool relu, const float* bias, const float* a,
                     const float* hp, float* h_out) {
  kernels().rnn_cell(u0, u1, relu, bias, a, hp, h_out);
}

template <>
void rnn_cell<double>(int64_t u0, int64_t u1, bool relu, const double* bias, const double* a,
                      const double* hp, double* h_out) {
  for (int64_t j = u0; j < u1; ++j) {
    const double v = (hp ? a[j] + hp[j] : a[j]) + bias[j];
    h_out[j] = relu && v <= 0.0 ? 0.0 : v;  // NaN passes, as torch's relu
  }
  if (!relu) tanh_inplace(h_out + u0, u1 - u0);
}

template <>
void rnn_cell_backward<float>(int64_t u0, int64_t u1, bool relu, const float* h, const float* dy,
                              const float* dh_carry, float* d) {
  kernels().rnn_cell_backward(u0, u1, relu, h, dy, dh_carry, d);
}

template <>
void rnn_cell_backward<double>(int64_t u0, int64_t u1, bool relu, const double* h,
                               const double* dy, const double* dh_carry, double* d) {
  for (int64_t j = u0; j < u1; ++j) {
    const double dh = (dy ? dy[j] : 0.0) + (dh_carry ? dh_carry[j] : 0.0);
    d[j] = relu ? (h[j] > 0.0 ? dh : 0.0) : dh * (1.0 - h[j] * h[j]);
  }
}

template <>
void gru_before_rz<float>(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,
                          const float* hp, const float* h_prev, float* rh) {
  kernels().gru_before_rz(H, u0, u1, bias, g, hp, h_prev, rh);
}

template <>
void gru_before_rz<double>(int64_t H, int64_t u0, int64_t u1, const double* bias, double* g,
                           const double* hp, const double* h_prev, double* rh) {
  for (int64_t j = u0; j < u1; ++j) {
    g[j] = (hp ? g[j] + hp[j] : g[j]) + bias[j];
    g[H + j] = (hp ? g[H + j] + hp[H + j] : g[H + j]) + bias[H + j];
  }
  sigmoid_inplace(g + u0, u1 - u0);
  sigmoid_inplace(g + H + u0, u1 - u0);
  for (int64_t j = u0; j < u1; ++j) rh[j] = g[j] * h_prev[j];
}

template <>
void gru_before_n<float>(int64_t H, int64_t u0, int64_t u1, const float* bias, float* g,
                         const float* hp, const float* h_prev, float* h_out, bool keep_gates) {
  kernels().gru_before_n(H, u0, u1, bias, g, hp, h_prev, h_out, keep_gates);
}

template <>
void gru_before_n<double>(int64_t H, int64_t u0, int64_t u1, const double* bias, double* g,
                          const double* hp, const double* h_prev, double* h_out, bool) {
  const double* z = g + H;
  double* n = g + 2 * H;
  for (int64_t j = u0; j < u1; ++j)
    n[j] = (hp ? n[j] + hp[2 * H + j] : n[j]) + bias[2 * H + j];
  tanh_inplace(n + u0, u1 - u0);
  for (int64_t j = u0; j < u1; ++j) h_out[j] = n[j] + z[j] * (h_prev[j] - n[j]);
}

template <>
void gru_before_n_backward<float>(int64_t H, int64_t u0, int64_t u1, const float* g,
                                  const float* h_prev, const float* dy, const float* dh_carry,
                                  float* d, float* dh_direct) {
  kernels().gru_before_n_backward(H, u0, u1, g, h_prev, dy, dh_carry, d, dh_direct);
}

template <>
void gru_before_n_backward<double>(int64_t H, int64_t u0, int64_t u1, const double* g,
                                   const double* h_prev, const double* dy,
                                   const double* dh_carry, double* d, double* dh_direct) {
  const double *z = g + H, *n = g + 2 * H;
  for (int64_t j = u0; j < u1; ++j) {
    const double dh = (dy ? dy[j] : 0.0) + (dh_carry ? dh_carry[j] : 0.0);
    d[2 * H + j] = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
    d[H + j] = dh * (h_prev[j] - n[j]) * z[j] * (1.0 - z[j]);
    dh_direct[j] = dh * z[j];
  }
}

template <>
void gru_before_rz_backward<float>(int64_t u0, int64_t u1, const float* g, const float* h_prev,
                                   const float* drh, float* d, float* dh_direct) {
  kernels().gru_before_rz_backward(u0, u1, g, h_prev, drh, d, dh_direct);
}

template <>
void gru_before_rz_backward<double>(int64_t u0, int64_t u1, const double* g,
                                    const double* h_prev, const double* drh, double* d,
                                    double* dh_direct) {
  for (int64_t j = u0; j < u1; ++j) {
    d[j] = drh[j] * h_prev[j] * g[j] * (1.0 - g[j]);
    dh_direct[j] += drh[j] * g[j];
  }
}

template <> double exp_sum<double>(double* y, const double* x, int64_t n, double shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] - shift;
  kernels().exp_f64(y, y, n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += y[i];
  return sum;
}

// additive_scores' loop in float64: th(tj, j) writes the A values of tanh(q + k_j) to tj.
template <typename Th>
static void pair_scores_f64(const double* u, int64_t A, int64_t n, double* s, double* t, Th th) {
  thread_local std::vector<double> own;
  own.resize(A);
  for (int64_t j = 0; j < n; ++j) {
    double* tj = t ? t + j * A : own.data();
    th(tj, j);
    s[j] = dot(u, tj, A);
  }
}

template <>
void additive_scores<double>(const double* q, const double* k, int64_t ld, const double* u,
                             int64_t A, int64_t n, double* s, double* t) {
  pair_scores_f64(u, A, n, s, t, [&](double* tj, int64_t j) {
    for (int64_t a = 0; a < A; ++a) tj[a] = q[a] + k[j * ld + a];
    tanh_inplace(tj, A);
  });
}

template <>
void additive_scores_exp<double>(const double* eq, const double* ek, int64_t ld, const double* u,
                                 int64_t A, int64_t n, double* s, double* t) {
  pair_scores_f64(u, A, n, s, t, [&](double* tj, int64_t j) {
    for (int64_t a = 0; a < A; ++a) tj[a] = 1.0 - 2.0 / (eq[a] * ek[j * ld + a] + 1.0);
  });
}

}  // namespace seqkern
