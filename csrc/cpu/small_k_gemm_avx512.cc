// The AVX-512 copy of small_k_gemm_impl.h, on 16-lane vectors; built with AVX-512 F/BW/DQ/VL and
// FMA, called only at SIMD level avx512 (seqkern/simd.h).
#define SEQKERN_ISA avx512
#define SEQKERN_LANES 16
#include "small_k_gemm_impl.h"
