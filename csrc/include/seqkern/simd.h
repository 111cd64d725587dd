// The SIMD level of the float kernels, chosen once at run time: the best the CPU and the OS
// support, or a lower one forced with SEQKERN_SIMD=baseline|avx2|avx512 (tests run every level the
// machine has; a level the machine lacks falls back to the best it has).
#pragma once

namespace seqkern {

enum class Simd { baseline = 0, avx2 = 1, avx512 = 2 };

Simd simd();                // the level in use
const char* simd_level();   // its name: "baseline", "avx2" or "avx512"
const char* simd_levels();  // every level this machine runs, comma-separated, lowest first

// Whether the level in use is avx512 on an AMD CPU (Zen 4, and Zen 5, whose 512-bit FMAs run at
// full width): there a choice between a memory round trip and streaming weights from L3 tips
// toward the stream (recurrent.h, kStepProjectionBytesWide).
bool amd_avx512();
// Whether the level in use is avx512 on an Intel CPU, where one such choice tips from enough
// rows a thread on (recurrent.h, kStepProjectionRowsIntel).
bool intel_avx512();

#if SEQKERN_X86
// XCR0: which register states the OS saves on a context switch (call only where cpuid reports
// OSXSAVE, as AVX2 support implies).
unsigned long long xcr0();
#endif

}  // namespace seqkern
