// CTC loss forward and backward. Shapes: seqkern/ctc.h.
//   alpha_t(s) = (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [l'_s != blank, l'_s != l'_{s-2}]
//                 alpha_{t-1}(s-2)) * y_t(l'_s),     p = alpha_{T-1}(L-1) + alpha_{T-1}(L-2)
//   beta likewise from the end; both include y_t(l'_s), so sum_s alpha_t(s) beta_t(s) / y_t(l'_s)
//   over the s with l'_s = c is d p / d log y_t(c).
// All in log space; each sequence is one independent problem, so threads split the batch.
#include "seqkern/ctc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "seqkern/threads.h"

namespace seqkern {

namespace {

template <typename T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// log(exp(a) + exp(b)), exact at -inf.
template <typename T>
inline T log_add(T a, T b) {
  if (a < b) std::swap(a, b);
  if (b == kNegInf<T>) return a;
  return a + std::log1p(std::exp(b - a));
}

// One sequence's extended labels and the view of its log-probabilities.
template <typename T>
struct Sequence {
  const T* lp;      // (T, B, C) at this sequence: lp[t * stride + c]
  int64_t stride;   // B * C
  int64_t Ti, L;    // input length, extended length
  std::vector<int64_t> ext;  // l' (L)
  Sequence(const CtcShape& s, const T* log_probs, const int64_t* targets, const int64_t* offsets,
           const int64_t* input_lengths, const int64_t* target_lengths, int64_t blank, int64_t b)
      : lp(log_probs + b * s.C), stride(s.B * s.C), Ti(input_lengths[b]),
        L(2 * target_lengths[b] + 1), ext(L, blank) {
    for (int64_t k = 0; k < target_lengths[b]; ++k) ext[2 * k + 1] = targets[offsets[b] + k];
  }
  T y(int64_t t, int64_t s) const { return lp[t * stride + ext[s]]; }
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
      T* la = log_alpha + b * s.T * s.L;
      std::fill(la, la + q.L, kNegInf<T>);
      la[0] = q.y(0, 0);
      if (q.L > 1) la[1] = q.y(0, 1);
      for (int64_t t = 1; t < q.Ti; ++t) {
        const T* prev = la + (t - 1) * s.L;
        T* cur = la + t * s.L;
        for (int64_t k = 0; k < q.L; ++k) {
          T a = prev[k];
          if (k >= 1) a = log_add(a, prev[k - 1]);
          if (k >= 2 && q.ext[k] != blank && q.ext[k] != q.ext[k - 2]) a = log_add(a, prev[k - 2]);
          cur[k] = a == kNegInf<T> ? a : a + q.y(t, k);
        }
      }
      const T* last = la + (q.Ti - 1) * s.L;
      const T lp = q.L > 1 ? log_add(last[q.L - 1], last[q.L - 2]) : last[0];
      losses[b] = -lp;
    }
  });
}

template <typename T>
void ctc_loss_backward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                       const int64_t* offsets, const int64_t* input_lengths,
                       const int64_t* target_lengths, int64_t blank, const T* losses,
                       const T* log_alpha, const T* scale, T* grad) {
  parallel_for(s.B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> lb_prev, lb_cur, lcab(s.C);
    for (int64_t b = b0; b < b1; ++b) {
      const Sequence<T> q(s, log_probs, targets, offsets, input_lengths, target_lengths, blank, b);
      for (int64_t t = 0; t < s.T; ++t)
        std::fill(grad + (t * s.B + b) * s.C, grad + (t * s.B + b + 1) * s.C, T(0));
      const T nll = losses[b];
      if (q.Ti == 0 || !std::isfinite(nll) || scale[b] == T(0)) continue;
      const T* la = log_alpha + b * s.T * s.L;
      lb_prev.assign(q.L, kNegInf<T>);
      lb_cur.assign(q.L, kNegInf<T>);
      for (int64_t t = q.Ti - 1; t >= 0; --t) {
        if (t == q.Ti - 1) {
          lb_cur[q.L - 1] = q.y(t, q.L - 1);
          if (q.L > 1) lb_cur[q.L - 2] = q.y(t, q.L - 2);
        } else {
          for (int64_t k = 0; k < q.L; ++k) {
            T a = lb_prev[k];
            if (k + 1 < q.L) a = log_add(a, lb_prev[k + 1]);
            if (k + 2 < q.L && q.ext[k] != blank && q.ext[k] != q.ext[k + 2])
              a = log_add(a, lb_prev[k + 2]);
            lb_cur[k] = a == kNegInf<T> ? a : a + q.y(t, k);
          }
        }
        std::fill(lcab.begin(), lcab.end(), kNegInf<T>);
        for (int64_t k = 0; k < q.L; ++k)
          lcab[q.ext[k]] = log_add(lcab[q.ext[k]], la[t * s.L + k] + lb_cur[k]);
        T* g = grad + (t * s.B + b) * s.C;
        const T* lp = q.lp + t * q.stride;
        for (int64_t c = 0; c < s.C; ++c)
          if (lcab[c] != kNegInf<T>) g[c] = -scale[b] * std::exp(lcab[c] + nll - lp[c]);
        std::swap(lb_prev, lb_cur);
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
