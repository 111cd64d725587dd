// The float row kernels of softmax cross-entropy, on vectors of kW lanes. Written once and
// compiled once per SIMD level: cross_entropy.cc (baseline x86-64-v2), cross_entropy_avx2.cc and
// cross_entropy_avx512.cc; SEQKERN_ISA names the namespace of each copy.
#include <cmath>
#include <cstring>

#include "vector_math.h"

namespace seqkern {
namespace SEQKERN_ISA {

namespace {

// a in lanes [lo, hi), 0 in the others.
inline vf lanes_in(vf a, int64_t lo, int64_t hi) {
  vi lane;
  for (int k = 0; k < kW; ++k) lane[k] = k;
  return (vf)((vi)a & ((lane >= static_cast<int32_t>(lo)) & (lane < static_cast<int32_t>(hi))));
}

// A row's values past its full vectors, through one more vector: x[V - kW, V), whose first
// lanes the full vectors covered already, or for a row shorter than a vector a copy padded with
// `pad`. A scalar tail (exp calls) or a padded copy for every row (a store, then a wider load
// that waits for it) took 44 and 34 us for 512 rows of 13 classes on one core.
struct Tail {
  vf v;
  int64_t lo, hi;  // the lanes of v not covered by the full vectors (lo == hi: none)
  Tail(const float* x, int64_t V, float pad) {
    if (V < kW) {
      v = splat(pad);
      std::memcpy(&v, x, V * sizeof(float));
      lo = 0, hi = V;
    } else {
      v = vload(x + V - kW);
      lo = kW - V % kW, hi = kW;
    }
  }
  bool any() const { return lo < hi; }
};

}  // namespace

// One row: returns the log-sum-exp of x (V) and puts the sum of x in *sum_x. The row is read
// twice (its max, then the sum of exponentials), the second time from cache. (The max takes
// the tail's covered lanes again, harmlessly; the sums mask them out.)
float row_lse_f32(const float* x, int64_t V, float* sum_x) {
  const Tail tail(x, V, -INFINITY);
  vf row_max = splat(-INFINITY), row_sum = splat(0.0f);
  int64_t j = 0;
  for (; j + kW <= V; j += kW) {
    const vf v = vload(x + j);
    row_max = vmax(row_max, v);
    row_sum += v;
  }
  if (tail.any()) {
    row_max = vmax(row_max, tail.v);
    row_sum += lanes_in(tail.v, tail.lo, tail.hi);
  }
  const float m = lanes_max(row_max);
  vf e = splat(0.0f);
  const vf vm = splat(m);
  for (j = 0; j + kW <= V; j += kW) e += vexp0(vload(x + j) - vm);
  if (tail.any()) e += lanes_in(vexp0(tail.v - vm), tail.lo, tail.hi);
  *sum_x = vsum(row_sum);
  return m + std::log(vsum(e));
}

// One row of the gradient without the target's spike: g = scale * exp(x - lse) - shift.
// g may be x: the tail's vector is read before the full vectors are written, and stored after
// them (its covered lanes get the values they already hold).
void row_softmax_grad_f32(const float* x, int64_t V, float lse, float scale, float shift,
                          float* g) {
  const vf vl = splat(lse), vs = splat(scale), vsh = splat(shift);
  const Tail tail(x, V, 0.0f);
  int64_t j = 0;
  for (; j + kW <= V; j += kW) {
    vstore(g + j, vexp0(vload(x + j) - vl) * vs - vsh);
  }
  if (!tail.any()) return;
  const vf out = vexp0(tail.v - vl) * vs - vsh;
  if (V < kW)
    std::memcpy(g, &out, V * sizeof(float));
  else
    vstore(g + V - kW, out);
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
