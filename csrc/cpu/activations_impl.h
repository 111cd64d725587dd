// Vectorized float sigmoid/tanh over arrays, written once and compiled twice: activations.cc
// (baseline x86-64-v2) and activations_avx2.cc (-mavx2 -mfma). SEQKERN_ISA names the namespace
// of each copy.
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

}  // namespace SEQKERN_ISA
}  // namespace seqkern
