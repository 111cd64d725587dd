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

// m <= kW values at p (the rest of the vector zero), and back; a whole vector is one move (a
// copy of variable size would be a call).
static inline vf load_n(const float* p, int64_t m) {
  vf v = {};
  if (m == kW) std::memcpy(&v, p, sizeof v);
  else std::memcpy(&v, p, m * sizeof(float));
  return v;
}
static inline void store_n(float* p, vf v, int64_t m) {
  if (m == kW) std::memcpy(p, &v, sizeof v);
  else std::memcpy(p, &v, m * sizeof(float));
}

// See lstm_cell in seqkern/activations.h: one pass, eight hidden units at a time.
void lstm_cell_f32(int64_t H, const float* bias, float* g, const float* c_prev, float* c_out,
                   float* h_out, bool keep_gates) {
  for (int64_t j = 0; j < H; j += kW) {
    const int64_t m = H - j < kW ? H - j : kW;
    const vf i = vsigmoid(load_n(g + j, m) + load_n(bias + j, m));
    const vf f = vsigmoid(load_n(g + H + j, m) + load_n(bias + H + j, m));
    const vf gg = vtanh(load_n(g + 2 * H + j, m) + load_n(bias + 2 * H + j, m));
    const vf o = vsigmoid(load_n(g + 3 * H + j, m) + load_n(bias + 3 * H + j, m));
    const vf c = f * load_n(c_prev + j, m) + i * gg;
    store_n(c_out + j, c, m);
    store_n(h_out + j, o * vtanh(c), m);
    if (keep_gates) {
      store_n(g + j, i, m);
      store_n(g + H + j, f, m);
      store_n(g + 2 * H + j, gg, m);
      store_n(g + 3 * H + j, o, m);
    }
  }
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
