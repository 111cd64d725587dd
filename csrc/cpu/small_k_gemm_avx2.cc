// The AVX2/FMA copy of small_k_gemm_impl.h, on 8-lane vectors; built with -mavx2 -mfma, called
// only at SIMD level avx2 or avx512 (seqkern/simd.h).
#define SEQKERN_ISA avx2
#include "small_k_gemm_impl.h"
