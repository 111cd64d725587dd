// The AVX-512 copy of word2vec_impl.h, on 16-lane vectors; built with AVX-512 F/BW/DQ/VL and FMA,
// called only at SIMD level avx512 (seqkern/simd.h).
#define SEQKERN_ISA avx512
#define SEQKERN_LANES 16
#include "word2vec_impl.h"
