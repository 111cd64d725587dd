// The float row kernels of softmax cross-entropy, on vectors of kW lanes. Written once and
// compiled once per SIMD level: cross_entropy.cc (baseline x86-64-v2), cross_entropy_avx2.cc and
// cross_entropy_avx512.cc; SEQKERN_ISA names the namespace of each copy.
#include <cmath>
#include <cstring>

#include "vector_math.h"

namespace seqkern {
namespace SEQKERN_ISA {

namespace {

inline float lanes_max(vf a) {
  float m = a[0];
  for (int k = 1; k < kW; ++k) m = std::fmax(m, a[k]);
  return m;
}

}  // namespace

// One row: returns the log-sum-exp of x (V) and puts the sum of x in *sum_x. The row is read
// twice (its max, then the sum of exponentials), the second time from cache.
float row_lse_f32(const float* x, int64_t V, float* sum_x) {
  vf row_max = splat(-INFINITY), row_sum = splat(0.0f);
  int64_t j = 0;
  for (; j + kW <= V; j += kW) {
    const vf v = vload(x + j);
    row_max = vmax(row_max, v);
    row_sum += v;
  }
  float m = lanes_max(row_max), sx = vsum(row_sum);
  for (int64_t k = j; k < V; ++k) {
    m = std::fmax(m, x[k]);
    sx += x[k];
  }
  vf e = splat(0.0f);
  const vf vm = splat(m);
  for (j = 0; j + kW <= V; j += kW) e += vexp(vload(x + j) - vm);
  float s = vsum(e);
  for (int64_t k = j; k < V; ++k) s += std::exp(x[k] - m);
  *sum_x = sx;
  return m + std::log(s);
}

// One row of the gradient without the target's spike: g = scale * exp(x - lse) - shift.
// g may be x.
void row_softmax_grad_f32(const float* x, int64_t V, float lse, float scale, float shift,
                          float* g) {
  const vf vl = splat(lse), vs = splat(scale), vsh = splat(shift);
  int64_t j = 0;
  for (; j + kW <= V; j += kW) {
    vstore(g + j, vexp(vload(x + j) - vl) * vs - vsh);
  }
  for (; j < V; ++j) g[j] = std::exp(x[j] - lse) * scale - shift;
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
