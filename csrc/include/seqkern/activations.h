// Elementwise activations over contiguous arrays. float uses vectorized polynomial exp/tanh
// (AVX2/FMA when the CPU has them, chosen once at run time; max error ~2 ulp); double uses libm,
// since float64 is there for gradient checks, not speed.
#pragma once
#include <cstdint>

namespace seqkern {

template <typename T> void sigmoid_inplace(T* x, int64_t n);      // x = 1 / (1 + exp(-x))
template <typename T> void tanh_inplace(T* x, int64_t n);         // x = tanh(x)
template <typename T> void tanh_to(T* y, const T* x, int64_t n);  // y = tanh(x); y may be x

// Which SIMD level the CPU offers and the float kernels use: "avx2+fma" or "baseline".
const char* simd_level();

}  // namespace seqkern
