// Run-time choice of the SIMD level (seqkern/simd.h).
// avx2 means AVX2 and FMA; avx512 means AVX-512 F, BW, DQ and VL, with the OS saving the opmask
// and the upper halves of the 32 vector registers (XCR0 bits 5-7) as well as the AVX state.
#include "seqkern/simd.h"

#include <cctype>
#include <cstdlib>
#include <initializer_list>

#if SEQKERN_X86
#include <cpuid.h>
#endif

namespace seqkern {

#if SEQKERN_X86
unsigned long long xcr0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

namespace {

Simd detect() {
#if SEQKERN_X86
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return Simd::baseline;
  const unsigned long long x = xcr0();  // cpuid's OSXSAVE is implied by avx2 support above
  if ((x & 0x6) != 0x6) return Simd::baseline;  // SSE and AVX state
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      (x & 0xe0) == 0xe0)
    return Simd::avx512;
  return Simd::avx2;
#else
  return Simd::baseline;
#endif
}

// The best level the CPU and the OS support, detected once.
Simd best_supported() {
  static const Simd best = detect();
  return best;
}

const char* const kNames[] = {"baseline", "avx2", "avx512"};
const char* const kCoreNames[] = {"none", "intel", "zen4", "zen5", "other"};  // Avx512Cores

bool same_ignoring_case(const char* a, const char* b) {
  for (; *a && *b; ++a, ++b)
    if (std::tolower(static_cast<unsigned char>(*a)) != *b) return false;
  return *a == *b;
}

Simd choose() {
  const Simd best = best_supported();
  const char* forced = std::getenv("SEQKERN_SIMD");
  if (!forced || !*forced) return best;  // empty counts as unset, as in a shell's `VAR= cmd`
  for (int level = 0; level <= static_cast<int>(best); ++level)
    if (same_ignoring_case(forced, kNames[level])) return static_cast<Simd>(level);
  return best;  // unknown, or above what the machine has (the Python package warns)
}

}  // namespace

Simd simd() {
  static const Simd level = choose();
  return level;
}

Avx512Cores avx512_cores() {
#if SEQKERN_X86
  static const Avx512Cores cores = [] {
    if (const char* asked = std::getenv("SEQKERN_TUNE"))
      for (auto c : {Avx512Cores::intel, Avx512Cores::zen4, Avx512Cores::zen5})
        if (same_ignoring_case(asked, kCoreNames[static_cast<int>(c)])) return c;
    __builtin_cpu_init();
    if (__builtin_cpu_is("intel")) return Avx512Cores::intel;
    unsigned a, b, c, d;
    if (!__builtin_cpu_is("amd") || !__get_cpuid(1, &a, &b, &c, &d)) return Avx512Cores::other;
    const unsigned base = (a >> 8) & 0xf, family = base == 0xf ? base + ((a >> 20) & 0xff) : base;
    return family >= 0x1a ? Avx512Cores::zen5 : Avx512Cores::zen4;
  }();
  return simd() == Simd::avx512 ? cores : Avx512Cores::none;
#else
  return Avx512Cores::none;
#endif
}

const char* avx512_cores_name() { return kCoreNames[static_cast<int>(avx512_cores())]; }

const char* simd_level() { return kNames[static_cast<int>(simd())]; }

const char* simd_levels() {
  static const char* const lists[] = {"baseline", "baseline,avx2", "baseline,avx2,avx512"};
  return lists[static_cast<int>(best_supported())];
}

}  // namespace seqkern
