// The AVX2/FMA copy of cross_entropy_impl.h; built with -mavx2 -mfma, called only at SIMD level avx2
// (seqkern/simd.h).
#define SEQKERN_ISA avx2
#include "cross_entropy_impl.h"
