// Vectorized float exp/sigmoid/tanh on GCC vectors, for the kernels that are written once and
// compiled once per SIMD level: baseline x86-64-v2 (8 lanes, each vector two SSE registers),
// -mavx2 -mfma (8 lanes) and AVX-512 (16 lanes: the includer defines SEQKERN_LANES 16). The
// includer defines SEQKERN_ISA, the namespace of its copy.
// Polynomials are Cephes' expf and tanhf (max error ~2 ulp over the clamped range); the double
// versions (vd, half as many lanes) Cephes' tanh and a Taylor exp, about 1 ulp.
#pragma once
#include <cstdint>
#ifdef __AVX2__  // the AVX2 and AVX-512 levels (AVX-512 flags imply AVX2); not baseline or ARM
#include <immintrin.h>
#endif

namespace seqkern {
namespace SEQKERN_ISA {

#ifndef SEQKERN_LANES
#define SEQKERN_LANES 8
#endif
constexpr int kW = SEQKERN_LANES;
typedef float vf __attribute__((vector_size(4 * kW)));
typedef int32_t vi __attribute__((vector_size(4 * kW)));
typedef float v8 __attribute__((vector_size(32)));  // eight lanes at every level

static inline vf splat(float a) { return vf{} + a; }
// GCC compiles the conditional below to a compare and a blend (two dependent ops) where
// vmaxps/vminps do the same in one, with the same result for every input (NaN included: the
// second operand). At AVX2, exp 1.06-1.09x, sigmoid 1.14-1.16x, the LSTM cell 1.04-1.07x
// (Zen 3, one core, paired), bitwise unchanged; at AVX-512 (a mask compare and a masked blend
// before), the LSTM cell pass over 32 x 256 units 1.75-1.93 -> 1.38-1.51 ns a unit (Zen 5, one
// core, best of 200), bitwise unchanged.
#if SEQKERN_LANES == 8 && defined(__AVX2__)
static inline vf vmax(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
static inline vf vmin(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
#elif SEQKERN_LANES == 16
static inline vf vmax(vf a, vf b) { return (vf)_mm512_max_ps((__m512)a, (__m512)b); }
static inline vf vmin(vf a, vf b) { return (vf)_mm512_min_ps((__m512)a, (__m512)b); }
#else
static inline vf vmax(vf a, vf b) { return a > b ? a : b; }
static inline vf vmin(vf a, vf b) { return a < b ? a : b; }
#endif
static inline vf vabs(vf a) { return (vf)((vi)a & 0x7fffffff); }
static inline vf vload(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
// The sum of the lanes, always in this order (results stay bitwise reproducible at each level).
static inline float vsum(v8 a) {
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}
#if SEQKERN_LANES == 16
static inline float vsum(vf a) {
  v8 lo, hi;
  __builtin_memcpy(&lo, &a, sizeof lo);
  __builtin_memcpy(&hi, reinterpret_cast<const char*>(&a) + sizeof lo, sizeof hi);
  return vsum(lo + hi);
}
#endif

// The largest lane (std::fmax's library call per lane took 8% of a short row's time).
static inline float lanes_max(vf a) {
  float m = a[0];
  for (int k = 1; k < kW; ++k) m = a[k] > m ? a[k] : m;
  return m;
}

// exp(x) for x clamped to [-87.3, 88.3], where 2^n stays a normal float. x is the second
// operand of the clamp's max and min, which return it when it is NaN: NaN passes through exp,
// sigmoid and tanh as through torch's and the twins' (clamped, it came out finite).
static inline vf vexp(vf x) {
  x = vmin(splat(88.3f), vmax(splat(-87.3f), x));
  // n = x / ln2 rounded to nearest: adding 1.5 * 2^23 leaves the integer in the low mantissa bits
  // (20% faster than converting to int and back, which needs a correction for negative x)
  const vf magic = splat(12582912.0f);
  const vf t = x * 1.44269504088896341f + magic;
  const vi n = (vi)t - (vi)magic;
  const vf fn = t - magic;
  x = x - fn * 0.693359375f;  // ln2 split in two for an exact reduction
  x = x - fn * -2.12194440e-4f;
  vf z = x * x;
  vf y = splat(1.9875691500E-4f);
  y = y * x + 1.3981999507E-3f;
  y = y * x + 8.3334519073E-3f;
  y = y * x + 4.1665795894E-2f;
  y = y * x + 1.6666665459E-1f;
  y = y * x + 5.0000001201E-1f;
  y = y * z + x + 1.0f;
  return y * (vf)((n + 127) << 23);
}

// exp(x), and 0 where x < -87.3 (exp under the smallest normal float; -inf included), for the
// exponentials that are probabilities (softmax, CTC posteriors): a class masked with -inf then
// has a probability and a gradient of exactly 0, as in torch and the twins, where vexp's clamp
// gave 1.2e-38 (softmax cross-entropy's gradient 3e-39 into every masked logit). NaN stays NaN.
static inline vf vexp0(vf x) {
  const vi under = x < -87.3f;
  return (vf)((vi)vexp(x) & ~under);
}

// log(x) for positive normal x (Cephes' logf): x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
static inline vf vlog(vf x) {
  vi bits = (vi)x;
  vi e = ((bits >> 23) & 0xff) - 126;
  vf m = (vf)((bits & 0x807fffff) | 0x3f000000);  // in [0.5, 1)
  const vi small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const vf z = m * m;
  vf y = splat(7.0376836292E-2f);
  y = y * m - 1.1514610310E-1f;
  y = y * m + 1.1676998740E-1f;
  y = y * m - 1.2420140846E-1f;
  y = y * m + 1.4249322787E-1f;
  y = y * m - 1.6668057665E-1f;
  y = y * m + 2.0000714765E-1f;
  y = y * m - 2.4999993993E-1f;
  y = y * m + 3.3333331174E-1f;
  y = y * m * z;
  const vf fe = __builtin_convertvector(e, vf);
  y = y + fe * -2.12194440e-4f - 0.5f * z;
  return m + y + fe * 0.693359375f;
}

// 1 / d for d >= 1. AVX-512: the 14-bit estimate and one Newton step (error ~1 ulp), which made
// the LSTM cell pass 12% faster on Zen 4 than a division; AVX2's 12-bit estimate needs two steps,
// which made it 8% slower, so other levels divide.
static inline vf vrecip(vf d) {
#if SEQKERN_LANES == 16
  const vf r = (vf)_mm512_rcp14_ps((__m512)d);
  return r + r * (1.0f - d * r);
#else
  return 1.0f / d;
#endif
}

static inline vf vsigmoid(vf x) { return vrecip(1.0f + vexp(-x)); }

// tanh: odd polynomial below |x| = 0.625, 1 - 2/(exp(2|x|)+1) above (no cancellation there).
static inline vf vtanh(vf x) {
  vf a = vabs(x);
  vf z = x * x;
  vf p = splat(-5.70498872745E-3f);
  p = p * z + 2.06390887954E-2f;
  p = p * z - 5.37397155531E-2f;
  p = p * z + 1.33314422036E-1f;
  p = p * z - 3.33332819422E-1f;
  vf small = p * z * x + x;
  vf big = 1.0f - 2.0f * vrecip(vexp(a + a) + 1.0f);
  big = (vf)((vi)big | ((vi)x & (int32_t)0x80000000));  // copy the sign of x
  vi is_small = a < 0.625f;
  return is_small ? small : big;
}

// float64: vectors of the same width, kD lanes.
constexpr int kD = kW / 2;
typedef double vd __attribute__((vector_size(4 * kW)));
typedef int64_t vl __attribute__((vector_size(4 * kW)));

static inline vd splat_d(double a) { return vd{} + a; }
static inline vd vload(const double* p) {
  vd v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(double* p, vd v) { __builtin_memcpy(p, &v, sizeof v); }

// exp(x) for x clamped to [-708, 709], where 2^n stays a normal double: x = n ln2 + r with
// |r| <= ln2/2 (ln2 in two parts, Cephes' exp), then exp(r) by its Taylor series to r^13 (the
// next term is below 4e-18 of the result).
static inline vd vexp(vd x) {
  x = x < -708.0 ? splat_d(-708.0) : x;
  x = x > 709.0 ? splat_d(709.0) : x;
  const vd magic = splat_d(6755399441055744.0);  // 1.5 * 2^52: the integer in the low bits
  const vd t = x * 1.4426950408889634073599 + magic;
  const vl n = (vl)t - (vl)magic;
  const vd fn = t - magic;
  const vd r = (x - fn * 6.93145751953125E-1) - fn * 1.42860682030941723212E-6;
  vd y = splat_d(1.0 / 6227020800.0);  // 1/13!
  y = y * r + 1.0 / 479001600.0;
  y = y * r + 1.0 / 39916800.0;
  y = y * r + 1.0 / 3628800.0;
  y = y * r + 1.0 / 362880.0;
  y = y * r + 1.0 / 40320.0;
  y = y * r + 1.0 / 5040.0;
  y = y * r + 1.0 / 720.0;
  y = y * r + 1.0 / 120.0;
  y = y * r + 1.0 / 24.0;
  y = y * r + 1.0 / 6.0;
  y = y * r + 0.5;
  y = y * r + 1.0;
  y = y * r + 1.0;
  return y * (vd)((n + 1023) << 52);
}

static inline vd vsigmoid(vd x) { return 1.0 / (1.0 + vexp(-x)); }

// tanh (Cephes' tanh): x + x^3 P(x^2)/Q(x^2) below |x| = 0.625, 1 - 2/(exp(2|x|)+1) above.
static inline vd vtanh(vd x) {
  const vd a = x < 0.0 ? -x : x;
  const vd z = x * x;
  vd p = splat_d(-9.64399179425052238628E-1);
  p = p * z - 9.92877231001918586564E1;
  p = p * z - 1.61468768441708447952E3;
  vd q = z + 1.12811678491632931402E2;
  q = q * z + 2.23548839060100448583E3;
  q = q * z + 4.84406305325125486048E3;
  const vd small = x + x * z * (p / q);
  vd big = 1.0 - 2.0 / (vexp(a + a) + 1.0);
  big = x < 0.0 ? -big : big;
  return a < 0.625 ? small : big;
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
