// The SIMD level of the float kernels, chosen once at run time: the best the CPU and the OS
// support, or a lower one forced with SEQKERN_SIMD=baseline|avx2|avx512 (tests run every level the
// machine has; a level the machine lacks falls back to the best it has).
#pragma once

namespace seqkern {

enum class Simd { baseline = 0, avx2 = 1, avx512 = 2 };

Simd simd();                // the level in use
const char* simd_level();   // its name: "baseline", "avx2" or "avx512"
const char* simd_levels();  // every level this machine runs, comma-separated, lowest first

// The cores behind level avx512 (none below it), for the few choices measured to tip
// differently on them: AMD's Zen 4 (family 19h) splits each 512-bit FMA in two halves, Zen 5
// (1Ah and later) runs it at full width, twice the work per cycle of AVX2. The input projection
// in the time loop (recurrent.h, kStepProjectionBytesWide), the batch split of mid-sized
// layers (packed_gemm.h, column_split) and the batch-1 step products that carry the projection
// (recurrent.h, Rider). SEQKERN_TUNE=intel|zen4|zen5 makes the choices of another kind of cores
// (tests run each kind's paths on any AVX-512 machine); another word is ignored.
enum class Avx512Cores { none, intel, zen4, zen5, other };
Avx512Cores avx512_cores();
const char* avx512_cores_name();  // "none", "intel", "zen4", "zen5" or "other"

#if SEQKERN_X86
// XCR0: which register states the OS saves on a context switch (call only where cpuid reports
// OSXSAVE, as AVX2 support implies).
unsigned long long xcr0();
#endif

}  // namespace seqkern
