// The AVX2/FMA copy of word2vec_impl.h; built with -mavx2 -mfma, called only when the CPU
// reports both (see word2vec.cc).
#define SEQKERN_ISA avx2
#include "word2vec_impl.h"
