// The AVX2/FMA copy of ctc_impl.h; built with -mavx2 -mfma, called only when the CPU reports
// both (see ctc.cc).
#define SEQKERN_ISA avx2
#include "ctc_impl.h"
