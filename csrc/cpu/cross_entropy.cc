// Softmax cross-entropy forward and backward. Shapes: seqkern/cross_entropy.h.
// Rows are split between the pool's threads; each row is one independent problem, so results
// do not depend on the thread count.
#include "seqkern/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "seqkern/simd.h"
#include "seqkern/threads.h"

#define SEQKERN_ISA baseline
#include "cross_entropy_impl.h"
#undef SEQKERN_ISA

namespace seqkern {

#if SEQKERN_X86
#define SEQKERN_DECLARE_CE_ROWS                                                                \
  float row_lse_f32(const float* x, int64_t V, float* sum_x);                                 \
  void row_softmax_grad_f32(const float* x, int64_t V, float lse, float scale, float shift,    \
                            float* g);
namespace avx2 {
SEQKERN_DECLARE_CE_ROWS
}  // namespace avx2
namespace avx512 {
SEQKERN_DECLARE_CE_ROWS
}  // namespace avx512
#undef SEQKERN_DECLARE_CE_ROWS
#endif

namespace {

struct RowKernels {
  decltype(&baseline::row_lse_f32) lse;
  decltype(&baseline::row_softmax_grad_f32) grad;
};

// The copy of the level in use (seqkern/simd.h).
const RowKernels& float_rows() {
  static const RowKernels k = [] {
#if SEQKERN_X86
    if (simd() == Simd::avx512) return RowKernels{avx512::row_lse_f32, avx512::row_softmax_grad_f32};
    if (simd() == Simd::avx2) return RowKernels{avx2::row_lse_f32, avx2::row_softmax_grad_f32};
#endif
    return RowKernels{baseline::row_lse_f32, baseline::row_softmax_grad_f32};
  }();
  return k;
}

float row_lse(const float* x, int64_t V, float* sum_x) { return float_rows().lse(x, V, sum_x); }

void row_softmax_grad(const float* x, int64_t V, float lse, float scale, float shift, float* g) {
  float_rows().grad(x, V, lse, scale, shift, g);
}

// float64 is for gradient checks: plain loops.
double row_lse(const double* x, int64_t V, double* sum_x) {
  double m = -INFINITY, sx = 0.0, s = 0.0;
  for (int64_t j = 0; j < V; ++j) {
    m = std::fmax(m, x[j]);
    sx += x[j];
  }
  for (int64_t j = 0; j < V; ++j) s += std::exp(x[j] - m);
  *sum_x = sx;
  return m + std::log(s);
}

void row_softmax_grad(const double* x, int64_t V, double lse, double scale, double shift,
                      double* g) {
  for (int64_t j = 0; j < V; ++j) g[j] = std::exp(x[j] - lse) * scale - shift;
}

// Rows per chunk: enough work to be worth a thread (about 16K values).
int64_t row_grain(int64_t V) { return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(V, 1)); }

}  // namespace

template <typename T>
void softmax_cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                                   int64_t ignore_index, T smoothing, T* losses, T* lse) {
  parallel_for(N, row_grain(V), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const T* x = logits + n * V;
      T sum_x;
      lse[n] = row_lse(x, V, &sum_x);
      const int64_t t = targets[n];
      // Without smoothing the other logits add nothing: left out, a logit of -inf (a class
      // masked out) cannot make the loss NaN through 0 * -inf.
      losses[n] = t == ignore_index ? T(0)
                  : smoothing == T(0)
                      ? lse[n] - x[t]
                      : lse[n] - (T(1) - smoothing) * x[t] - smoothing * sum_x / T(V);
    }
  });
}

template <typename T>
void softmax_cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                                    int64_t ignore_index, T smoothing, const T* lse,
                                    const T* scale, T* dlogits) {
  parallel_for(N, row_grain(V), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      T* g = dlogits + n * V;
      const int64_t t = targets[n];
      if (t == ignore_index) {
        std::fill(g, g + V, T(0));
        continue;
      }
      const T s = scale[n];
      row_softmax_grad(logits + n * V, V, lse[n], s, s * smoothing / T(V), g);
      g[t] -= s * (T(1) - smoothing);
    }
  });
}

template void softmax_cross_entropy_forward<float>(int64_t, int64_t, const float*, const int64_t*,
                                                   int64_t, float, float*, float*);
template void softmax_cross_entropy_forward<double>(int64_t, int64_t, const double*,
                                                    const int64_t*, int64_t, double, double*,
                                                    double*);
template void softmax_cross_entropy_backward<float>(int64_t, int64_t, const float*,
                                                    const int64_t*, int64_t, float, const float*,
                                                    const float*, float*);
template void softmax_cross_entropy_backward<double>(int64_t, int64_t, const double*,
                                                     const int64_t*, int64_t, double,
                                                     const double*, const double*, double*);

}  // namespace seqkern
