// Lane masks for the files built with AVX2 (*_avx2.cc), and only for them: an AVX2 instruction
// in a header that a baseline file includes could run on a CPU without AVX2. static: each file
// keeps its own copy, as packed_gemm.h's helpers do.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace seqkern::avx2 {

// Lanes [0, n) of 8 (n clamped to 0..8): the mask of _mm256_maskload_ps / _mm256_maskstore_ps.
static inline __m256i first_lanes(int64_t n) {
  const int valid = static_cast<int>(std::clamp<int64_t>(n, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace seqkern::avx2
