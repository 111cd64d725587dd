// word2vec training and scoring entry points: the loops of word2vec_impl.h, in the copy of the
// SIMD level in use (seqkern/simd.h), run on the pool.
#include "seqkern/word2vec.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "seqkern/simd.h"
#include "seqkern/threads.h"

#define SEQKERN_ISA baseline
#include "word2vec_impl.h"
#undef SEQKERN_ISA

namespace seqkern {

#if SEQKERN_X86
#define SEQKERN_DECLARE_PARTS                                                             \
  int64_t train_part(const W2vParams& p, const int32_t* ids, const int64_t* offsets, int64_t s0, \
                     int64_t s1, int64_t n_words, const float* keep, const NoiseTable& noise,  \
                     float alpha0, float alpha1, uint64_t& state, float* syn0, float* syn1neg, \
                     const Tree& tree, float* syn1, int64_t top0, int64_t n_top,              \
                     int64_t merge_every, double* loss);                                     \
  void score_part(const W2vParams& p, const int32_t* ids, const int64_t* offsets, int64_t s0,  \
                  int64_t s1, const float* syn0, const Tree& tree, const float* syn1,          \
                  float* out);
namespace avx2 {
SEQKERN_DECLARE_PARTS
}  // namespace avx2
namespace avx512 {
SEQKERN_DECLARE_PARTS
}  // namespace avx512
#undef SEQKERN_DECLARE_PARTS
#endif

NoiseTable::NoiseTable(const uint32_t* cum, int64_t V) : cum(cum), V(V) {
  if (V == 0) return;
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
                  float alpha0, float alpha1, uint64_t* seeds, int64_t parts,
                  const int64_t* bounds, float* syn0, float* syn1neg, const Tree& tree,
                  float* syn1, double* loss) {
  auto* part = &baseline::train_part;
#if SEQKERN_X86
  if (simd() == Simd::avx2) part = &avx2::train_part;
  if (simd() == Simd::avx512) part = &avx512::train_part;
#endif
  const NoiseTable noise(cum_table, p.negative ? V : 0);  // no table without noise words
  // Every hierarchical-softmax update writes the rows of the nodes nearest the root (syn1's
  // last rows: the tree makes its nodes in ascending count order). Written from two cores at
  // every context word, their cache lines moved between the cores at each write, and a second
  // worker gained nothing (GCIDE, one epoch: 5.3 s with one, 5.0-12.8 s with two). So parts
  // run at once keep the kTopRows most used nodes in copies of their own, merged into syn1
  // every kMergeEvery words (3.1 s with two). Analogy accuracy over six seeds: 16.55% so,
  // 16.35% with one worker, 16.92% without the copies, gensim's 16.87%.
  constexpr int64_t kTopRows = 64, kMergeEvery = 512;
  const int64_t n_top = (p.hs && parts > 1) ? std::min<int64_t>(V - 1, kTopRows) : 0;
  std::vector<int64_t> trained(parts, 0);
  std::vector<double> losses(parts, 0.0);
  const auto first = [&](int64_t q) { return bounds ? bounds[q] : n_sentences * q / parts; };
  // Parts run at once only with kPartWords words each on average (gensim's job, batch_words).
  // Below that a part takes a thread a millisecond or so, and parts racing on the same rows
  // would make a small corpus train to other vectors at each run; gensim, too, trains a corpus
  // smaller than one job on one thread, so that a seed gives the same vectors.
  constexpr int64_t kPartWords = 10000;
  const int64_t words = offsets[n_sentences] - offsets[0];
  parallel_for(parts, words >= kPartWords * parts ? 1 : parts, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q)
      trained[q] = part(p, ids, offsets, first(q), first(q + 1), words, keep, noise, alpha0,
                        alpha1, seeds[q], syn0, syn1neg, tree, syn1, V - 1 - n_top, n_top,
                        kMergeEvery, loss ? &losses[q] : nullptr);
  });
  int64_t sum = 0;
  for (int64_t q = 0; q < parts; ++q) {
    sum += trained[q];
    if (loss) *loss += losses[q];  // in part order, whatever the threads
  }
  return sum;
}

void w2v_score(const W2vParams& p, const int32_t* ids, const int64_t* offsets,
               int64_t n_sentences, const float* syn0, const Tree& tree, const float* syn1,
               float* scores) {
  auto* part = &baseline::score_part;
#if SEQKERN_X86
  if (simd() == Simd::avx2) part = &avx2::score_part;
  if (simd() == Simd::avx512) part = &avx512::score_part;
#endif
  // Sentences are independent and read-only: chunks of them on the pool, each sentence's sum
  // made by one thread in word order, so the scores do not depend on the thread count.
  parallel_for(n_sentences, 16, [&](int64_t s0, int64_t s1) {
    part(p, ids, offsets, s0, s1, syn0, tree, syn1, scores);
  });
}

}  // namespace seqkern

namespace seqkern {

void huffman_tree(const int64_t* counts, int64_t V, std::vector<int64_t>& offsets,
                  std::vector<int32_t>& points, std::vector<uint8_t>& codes) {
  // word2vec.c's two-queue merge: leaves sorted by descending count, inner nodes made in
  // ascending count order; the two smallest of both queues' fronts are merged each time.
  std::vector<int64_t> order(V);
  for (int64_t i = 0; i < V; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return counts[a] > counts[b]; });
  std::vector<int64_t> count(2 * V, INT64_MAX), parent(2 * V, 0);
  std::vector<uint8_t> branch(2 * V, 0);
  for (int64_t a = 0; a < V; ++a) count[a] = counts[order[a]];
  int64_t leaf = V - 1, inner = V;
  const auto smallest = [&] {
    if (leaf >= 0 && count[leaf] < count[inner]) return leaf--;
    return inner++;
  };
  for (int64_t a = 0; a + 1 < V; ++a) {
    const int64_t m1 = smallest(), m2 = smallest();
    count[V + a] = count[m1] + count[m2];
    parent[m1] = parent[m2] = V + a;
    branch[m2] = 1;
  }
  // Paths from the root (node 2V - 2, row V - 2 of syn1) down to each leaf.
  std::vector<std::vector<int32_t>> path(V);
  std::vector<std::vector<uint8_t>> bits(V);
  for (int64_t a = 0; a < V; ++a) {
    for (int64_t b = a; b != 2 * V - 2; b = parent[b]) {
      bits[a].push_back(branch[b]);
      path[a].push_back(static_cast<int32_t>(parent[b] - V));
    }
    std::reverse(path[a].begin(), path[a].end());
    std::reverse(bits[a].begin(), bits[a].end());
  }
  std::vector<int64_t> at(V);  // word -> its rank by count
  for (int64_t a = 0; a < V; ++a) at[order[a]] = a;
  offsets.assign(V + 1, 0);
  points.clear();
  codes.clear();
  for (int64_t w = 0; w < V; ++w) {
    const int64_t a = at[w];
    points.insert(points.end(), path[a].begin(), path[a].end());
    codes.insert(codes.end(), bits[a].begin(), bits[a].end());
    offsets[w + 1] = static_cast<int64_t>(points.size());
  }
}

}  // namespace seqkern
