// The AVX2/FMA copy of activations_impl.h; built with -mavx2 -mfma, called only when the CPU
// reports both (see activations.cc).
#define SEQKERN_ISA avx2
#include "activations_impl.h"
