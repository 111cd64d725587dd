// The float rows of the CTC recursions on vectors of kW lanes. Written once and compiled once
// per SIMD level: ctc.cc (baseline x86-64-v2), ctc_avx2.cc and ctc_avx512.cc; SEQKERN_ISA names
// each copy.
// Rows are padded with two -inf values on the side the recursion reads past (before s = 0 for
// alpha, after s = L - 1 for beta), so the shifted loads need no bounds checks.
#include <cstdint>
#include <cstring>
#include <limits>

#include "vector_math.h"

namespace seqkern {
namespace SEQKERN_ISA {

namespace {

// log(exp(a) + exp(b) + exp(c)) + y, -inf when all three are.
inline vf lse3_plus(vf a, vf b, vf c, vf y) {
  const vf ninf = splat(-std::numeric_limits<float>::infinity());
  vf m = vmax(a, vmax(b, c));
  const vi dead = m == ninf;
  m = dead ? splat(0.0f) : m;
  const vf r = m + vlog(vexp(a - m) + vexp(b - m) + vexp(c - m)) + y;
  return dead ? ninf : r;
}

}  // namespace

// cur[s] = lse(prev[s], prev[s-1], prev[s-2] + skip[s]) + y[s] for s < L; prev has two -inf
// values before its first element (prev[-1], prev[-2]); skip[s] is 0 where the path may skip
// from s - 2, else -inf. cur may not alias prev; L is rounded up to whole vectors (the caller's
// rows have room), so the values past L are garbage.
void ctc_alpha_row_f32(const float* prev, const float* y, const float* skip, int64_t L,
                       float* cur) {
  for (int64_t s = 0; s < L; s += kW) {
    vstore(cur + s, lse3_plus(vload(prev + s), vload(prev + s - 1),
                              vload(prev + s - 2) + vload(skip + s), vload(y + s)));
  }
}

// The same from the other side: cur[s] = lse(next[s], next[s+1], next[s+2] + skip[s]) + y[s];
// next has two -inf values after its element L - 1.
void ctc_beta_row_f32(const float* next, const float* y, const float* skip, int64_t L,
                      float* cur) {
  for (int64_t s = 0; s < L; s += kW) {
    vstore(cur + s, lse3_plus(vload(next + s), vload(next + s + 1),
                              vload(next + s + 2) + vload(skip + s), vload(y + s)));
  }
}

// gamma[s] = exp(la[s] + lb[s] + nll - y[s]): the posterior of being at s (a probability).
void ctc_gamma_row_f32(const float* la, const float* lb, const float* y, float nll, int64_t L,
                       float* gamma) {
  const vf vn = splat(nll);
  for (int64_t s = 0; s < L; s += kW) {
    vstore(gamma + s, vexp0(vload(la + s) + vload(lb + s) + vn - vload(y + s)));
  }
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
