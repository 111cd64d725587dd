// The AVX2/FMA copy of cross_entropy_impl.h; built with -mavx2 -mfma, called only when the CPU
// reports both (see cross_entropy.cc).
#define SEQKERN_ISA avx2
#include "cross_entropy_impl.h"
