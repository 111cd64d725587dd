// word2vec training entry point: the loop of word2vec_impl.h, in its AVX2/FMA copy when the CPU
// has both (and SEQKERN_SIMD does not say baseline), run over the parts on the pool.
#include "seqkern/word2vec.h"

#include <cstring>
#include <vector>

#include "seqkern/activations.h"
#include "seqkern/threads.h"

#define SEQKERN_ISA baseline
#include "word2vec_impl.h"
#undef SEQKERN_ISA

namespace seqkern {

#if SEQKERN_X86
namespace avx2 {
int64_t train_part(const W2vParams& p, const int32_t* ids, const int64_t* offsets, int64_t s0,
                   int64_t s1, int64_t n_words, const float* keep, const NoiseTable& noise,
                   float alpha0, float alpha1, uint64_t& state, float* syn0,
                   float* syn1neg);
}  // namespace avx2
#endif

NoiseTable::NoiseTable(const uint32_t* cum, int64_t V) : cum(cum), V(V) {
  const int64_t slices = (int64_t{1} << 31) >> kShift;  // cum[V - 1] <= 2^31 - 1
  start.resize(slices + 1);
  int64_t word = 0;
  for (int64_t b = 0; b <= slices; ++b) {
    while (word < V - 1 && cum[word] <= static_cast<uint64_t>(b) << kShift) ++word;
    start[b] = static_cast<uint32_t>(word);
  }
}

int64_t w2v_train(const W2vParams& p, const int32_t* ids, const int64_t* offsets,
                  int64_t n_sentences, const float* keep, const uint32_t* cum_table, int64_t V,
                  float alpha0, float alpha1, uint64_t* seeds, int64_t parts, float* syn0,
                  float* syn1neg) {
  auto* part = &baseline::train_part;
#if SEQKERN_X86
  if (std::strcmp(simd_level(), "avx2+fma") == 0) part = &avx2::train_part;
#endif
  const NoiseTable noise(cum_table, V);
  std::vector<int64_t> trained(parts, 0);
  parallel_for(parts, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q)
      trained[q] = part(p, ids, offsets, n_sentences * q / parts, n_sentences * (q + 1) / parts,
                        offsets[n_sentences] - offsets[0], keep, noise, alpha0, alpha1,
                        seeds[q], syn0, syn1neg);
  });
  int64_t sum = 0;
  for (int64_t t : trained) sum += t;
  return sum;
}

}  // namespace seqkern
