// CTC loss forward and backward. Shapes: seqkern/ctc.h.
//   alpha_t(s) = (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [l'_s != blank, l'_s != l'_{s-2}]
//                 alpha_{t-1}(s-2)) * y_t(l'_s),     p = alpha_{T-1}(L-1) + alpha_{T-1}(L-2)
//   beta likewise from the end. Both include y_t(l'_s), so
//   gamma_t(s) = alpha_t(s) beta_t(s) / (y_t(l'_s) p) is the probability of being at s at t, and
//   d(-log p) / d log y_t(c) = -sum of gamma_t(s) over the s with l'_s = c.
// All in log space, a row of s at a time: float rows run on 8- or 16-lane vectors (log-sum-exp of the
// three predecessors with vectorized exp and log, ctc_impl.h), float64 rows in plain loops. Each
// sequence is one independent problem, so threads split the batch.
#include "seqkern/ctc.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "seqkern/simd.h"
#include "seqkern/threads.h"

#define SEQKERN_ISA baseline
#include "ctc_impl.h"
#undef SEQKERN_ISA

namespace seqkern {

#if SEQKERN_X86
#define SEQKERN_DECLARE_CTC_ROWS                                                               \
  void ctc_alpha_row_f32(const float* prev, const float* y, const float* skip, int64_t L,      \
                         float* cur);                                                          \
  void ctc_beta_row_f32(const float* next, const float* y, const float* skip, int64_t L,       \
                        float* cur);                                                           \
  void ctc_gamma_row_f32(const float* la, const float* lb, const float* y, float nll,         \
                         int64_t L, float* gamma);
namespace avx2 {
SEQKERN_DECLARE_CTC_ROWS
}  // namespace avx2
namespace avx512 {
SEQKERN_DECLARE_CTC_ROWS
}  // namespace avx512
#undef SEQKERN_DECLARE_CTC_ROWS
#endif

namespace {

template <typename T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();
constexpr int64_t kPad = 16;  // -inf values on each side of a row (two are read, 16 align)

struct RowKernels {
  decltype(&baseline::ctc_alpha_row_f32) alpha;
  decltype(&baseline::ctc_beta_row_f32) beta;
  decltype(&baseline::ctc_gamma_row_f32) gamma;
};

const RowKernels& float_rows() {
  static const RowKernels k = [] {
#if SEQKERN_X86
    if (simd() == Simd::avx512)
      return RowKernels{avx512::ctc_alpha_row_f32, avx512::ctc_beta_row_f32,
                        avx512::ctc_gamma_row_f32};
    if (simd() == Simd::avx2)
      return RowKernels{avx2::ctc_alpha_row_f32, avx2::ctc_beta_row_f32, avx2::ctc_gamma_row_f32};
#endif
    return RowKernels{baseline::ctc_alpha_row_f32, baseline::ctc_beta_row_f32,
                      baseline::ctc_gamma_row_f32};
  }();
  return k;
}

template <typename T>
T lse3(T a, T b, T c) {
  const T m = std::max(a, std::max(b, c));
  if (m == kNegInf<T>) return m;
  return m + std::log(std::exp(a - m) + std::exp(b - m) + std::exp(c - m));
}

// The float64 rows, same contracts as ctc_impl.h's.
void alpha_row(const double* prev, const double* y, const double* skip, int64_t L, double* cur) {
  for (int64_t s = 0; s < L; ++s) cur[s] = lse3(prev[s], prev[s - 1], prev[s - 2] + skip[s]) + y[s];
}
void beta_row(const double* next, const double* y, const double* skip, int64_t L, double* cur) {
  for (int64_t s = 0; s < L; ++s) cur[s] = lse3(next[s], next[s + 1], next[s + 2] + skip[s]) + y[s];
}
void gamma_row(const double* la, const double* lb, const double* y, double nll, int64_t L,
               double* gamma) {
  for (int64_t s = 0; s < L; ++s) gamma[s] = std::exp(la[s] + lb[s] + nll - y[s]);
}
void alpha_row(const float* prev, const float* y, const float* skip, int64_t L, float* cur) {
  float_rows().alpha(prev, y, skip, L, cur);
}
void beta_row(const float* next, const float* y, const float* skip, int64_t L, float* cur) {
  float_rows().beta(next, y, skip, L, cur);
}
void gamma_row(const float* la, const float* lb, const float* y, float nll, int64_t L,
               float* gamma) {
  float_rows().gamma(la, lb, y, nll, L, gamma);
}

// One sequence: its extended labels, the skip masks and reusable padded rows.
template <typename T>
struct Sequence {
  const T* lp;      // log_probs at this sequence: lp[t * stride + c]
  int64_t stride;   // B * C
  int64_t Ti, L, Lv;  // input length, extended length, L rounded up to whole vectors
  std::vector<int64_t> ext;
  std::vector<T> skip_a, skip_b;  // 0 where alpha may come from s - 2 (beta from s + 2), else -inf

  Sequence(const CtcShape& s, const T* log_probs, const int64_t* targets, const int64_t* offsets,
           const int64_t* input_lengths, const int64_t* target_lengths, int64_t blank, int64_t b)
      : lp(log_probs + b * s.C), stride(s.B * s.C), Ti(input_lengths[b]),
        L(2 * target_lengths[b] + 1), Lv((L + kPad - 1) / kPad * kPad), ext(L, blank),
        skip_a(Lv, kNegInf<T>), skip_b(Lv, kNegInf<T>) {
    for (int64_t k = 0; k < target_lengths[b]; ++k) ext[2 * k + 1] = targets[offsets[b] + k];
    for (int64_t k = 1; k < L; k += 2) {
      if (k >= 2 && ext[k] != ext[k - 2]) skip_a[k] = 0;
      if (k + 2 < L && ext[k] != ext[k + 2]) skip_b[k] = 0;
    }
  }
  // y (Lv): the log-probabilities of l' at step t, -inf past L (so padding lanes stay -inf)
  void emissions(int64_t t, T* y) const {
    const T* row = lp + t * stride;
    for (int64_t k = 0; k < L; ++k) y[k] = row[ext[k]];
    std::fill(y + L, y + Lv, kNegInf<T>);
  }
};

// A row of Lv values with kPad -inf values on both sides.
template <typename T>
struct PaddedRow {
  std::vector<T> v;
  explicit PaddedRow(int64_t Lv) : v(Lv + 2 * kPad, kNegInf<T>) {}
  T* data() { return v.data() + kPad; }
  void clear() { std::fill(v.begin(), v.end(), kNegInf<T>); }
};

}  // namespace

template <typename T>
void ctc_loss_forward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                      const int64_t* offsets, const int64_t* input_lengths,
                      const int64_t* target_lengths, int64_t blank, T* losses, T* log_alpha) {
  parallel_for(s.B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const Sequence<T> q(s, log_probs, targets, offsets, input_lengths, target_lengths, blank, b);
      if (q.Ti == 0) {
        losses[b] = q.L == 1 ? T(0) : std::numeric_limits<T>::infinity();
        continue;
      }
      PaddedRow<T> prev(q.Lv), cur(q.Lv);
      std::vector<T> y(q.Lv);
      T* la = log_alpha + b * s.T * s.L;
      q.emissions(0, y.data());
      cur.data()[0] = y[0];
      if (q.L > 1) cur.data()[1] = y[1];
      std::memcpy(la, cur.data(), q.L * sizeof(T));
      for (int64_t t = 1; t < q.Ti; ++t) {
        std::swap(prev, cur);
        q.emissions(t, y.data());
        alpha_row(prev.data(), y.data(), q.skip_a.data(), q.Lv, cur.data());
        std::memcpy(la + t * s.L, cur.data(), q.L * sizeof(T));
      }
      const T* last = la + (q.Ti - 1) * s.L;
      losses[b] = -(q.L > 1 ? lse3(last[q.L - 1], last[q.L - 2], kNegInf<T>) : last[0]);
    }
  });
}

template <typename T>
void ctc_loss_backward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                       const int64_t* offsets, const int64_t* input_lengths,
                       const int64_t* target_lengths, int64_t blank, const T* losses,
                       const T* log_alpha, const T* scale, T* grad) {
  parallel_for(s.B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t t = 0; t < s.T; ++t)
        std::fill(grad + (t * s.B + b) * s.C, grad + (t * s.B + b + 1) * s.C, T(0));
      const Sequence<T> q(s, log_probs, targets, offsets, input_lengths, target_lengths, blank, b);
      const T nll = losses[b];
      if (q.Ti == 0 || !std::isfinite(nll) || scale[b] == T(0)) continue;
      PaddedRow<T> next(q.Lv), cur(q.Lv), la(q.Lv);
      std::vector<T> y(q.Lv), gamma(q.Lv);
      for (int64_t t = q.Ti - 1; t >= 0; --t) {
        q.emissions(t, y.data());
        if (t == q.Ti - 1) {
          cur.data()[q.L - 1] = y[q.L - 1];
          if (q.L > 1) cur.data()[q.L - 2] = y[q.L - 2];
        } else {
          std::swap(next, cur);
          beta_row(next.data(), y.data(), q.skip_b.data(), q.Lv, cur.data());
        }
        std::memcpy(la.data(), log_alpha + (b * s.T + t) * s.L, q.L * sizeof(T));
        gamma_row(la.data(), cur.data(), y.data(), nll, q.Lv, gamma.data());
        T* g = grad + (t * s.B + b) * s.C;
        for (int64_t k = 0; k < q.L; ++k) g[q.ext[k]] -= scale[b] * gamma[k];
      }
    }
  });
}

template void ctc_loss_forward<float>(const CtcShape&, const float*, const int64_t*,
                                      const int64_t*, const int64_t*, const int64_t*, int64_t,
                                      float*, float*);
template void ctc_loss_forward<double>(const CtcShape&, const double*, const int64_t*,
                                       const int64_t*, const int64_t*, const int64_t*, int64_t,
                                       double*, double*);
template void ctc_loss_backward<float>(const CtcShape&, const float*, const int64_t*,
                                       const int64_t*, const int64_t*, const int64_t*, int64_t,
                                       const float*, const float*, const float*, float*);
template void ctc_loss_backward<double>(const CtcShape&, const double*, const int64_t*,
                                        const int64_t*, const int64_t*, const int64_t*, int64_t,
                                        const double*, const double*, const double*, double*);

}  // namespace seqkern
