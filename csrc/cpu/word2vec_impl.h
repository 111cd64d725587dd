// word2vec training: the negative-sampling updates of word2vec.c, as gensim runs them. Written
// once and compiled twice: word2vec.cc (baseline x86-64-v2) and word2vec_avx2.cc (-mavx2 -mfma);
// SEQKERN_ISA names the namespace of each copy.
//
// For each kept word (the center) and each context word inside a window shrunk at random:
//   skip-gram: the context's input vector l1 = syn0[context] scores the center (label 1) and
//     `negative` noise words (label 0) through their output vectors syn1neg; each gets
//     g = (label - sigmoid(l1 . out)) * alpha, out += g * l1, and l1 += sum of g * out.
//   CBOW: l1 = mean (or sum) of the context's input vectors scores the center and the noise;
//     every context vector then gets the accumulated error (divided by the context size when
//     summing, as gensim does).
// sigmoid saturates past |f| = 6, as word2vec.c's table does; inside it is computed exactly.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "seqkern/word2vec.h"

namespace seqkern {
namespace SEQKERN_ISA {

namespace {

constexpr float kMaxExp = 6.0f;
constexpr int64_t kMaxNegative = 64;  // Word2Vec checks negative against it

// word2vec.c's linear congruential generator.
inline uint64_t next(uint64_t& state) {
  state = state * 25214903917ULL + 11;
  return state;
}

typedef float vf __attribute__((vector_size(32)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// Sixteen lanes at a time in two chains (so that the FMA latency overlaps), then eight, then the
// tail; the lanes are summed in a fixed order.
inline float dot(const float* a, const float* b, int64_t n) {
  vf acc = {}, acc2 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc += load(a + i) * load(b + i);
    acc2 += load(a + i + 8) * load(b + i + 8);
  }
  for (; i + 8 <= n; i += 8) acc += load(a + i) * load(b + i);
  acc += acc2;
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store(y + i, load(y + i) + a * load(x + i));
  for (; i < n; ++i) y[i] += a * x[i];
}

// A noise word drawn from the cumulative table (gensim's bisection).
inline int32_t noise_word(uint64_t& state, const uint32_t* cum_table, int64_t V) {
  const uint64_t r = (next(state) >> 16) % cum_table[V - 1];
  return static_cast<int32_t>(std::upper_bound(cum_table, cum_table + V, r) - cum_table);
}

// Scores l1 against the center (label 1) and the noise words (label 0); adds each output
// vector's update and accumulates the error for l1 in neu1e.
void negative_sampling(const W2vParams& p, int32_t center, const float* l1, float alpha,
                       const uint32_t* cum_table, int64_t V, uint64_t& state, float* syn1neg,
                       float* neu1e) {
  const int64_t dim = p.dim;
  // Draw every target first (the random stream sees the same calls) and prefetch their rows:
  // noise rows are scattered over the table and would each stall on a cache miss.
  int32_t targets[kMaxNegative + 1];
  const int64_t n_targets = std::min<int64_t>(p.negative, kMaxNegative) + 1;
  targets[0] = center;
  for (int64_t d = 1; d < n_targets; ++d) {
    targets[d] = noise_word(state, cum_table, V);
    const char* row = reinterpret_cast<const char*>(syn1neg + static_cast<int64_t>(targets[d]) * dim);
    for (int64_t b = 0; b < dim * 4; b += 64) __builtin_prefetch(row + b, 1);
  }
  for (int64_t d = 0; d < n_targets; ++d) {
    const int32_t target = targets[d];
    if (d > 0 && target == center) continue;
    const float label = d == 0 ? 1.0f : 0.0f;
    float* l2 = syn1neg + static_cast<int64_t>(target) * dim;
    const float f = dot(l1, l2, dim);
    float g;
    if (f > kMaxExp) g = (label - 1.0f) * alpha;
    else if (f < -kMaxExp) g = label * alpha;
    else g = (label - 1.0f / (1.0f + std::exp(-f))) * alpha;
    axpy(g, l2, neu1e, dim);
    axpy(g, l1, l2, dim);
  }
}

}  // namespace

// One run of sentences [s0, s1) of a chunk of n_words words, on one random stream.
int64_t train_part(const W2vParams& p, const int32_t* ids, const int64_t* offsets, int64_t s0,
                   int64_t s1, int64_t n_words, const float* keep, const uint32_t* cum_table,
                   int64_t V, float alpha0, float alpha1, uint64_t& state, float* syn0,
                   float* syn1neg) {
  const int64_t dim = p.dim;
  const float alpha_step = (alpha1 - alpha0) / static_cast<float>(std::max<int64_t>(1, n_words));
  std::vector<int32_t> sen;
  std::vector<int64_t> where;  // position of each kept word in the chunk, for alpha
  std::vector<float> neu1(dim), neu1e(dim);
  int64_t trained = 0;
  for (int64_t s = s0; s < s1; ++s) {
    sen.clear();
    where.clear();
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
      const int32_t w = ids[i];
      if (keep[w] < 1.0f && keep[w] < (next(state) & 0xFFFF) / 65536.0f) continue;
      sen.push_back(w);
      where.push_back(i - offsets[0]);
    }
    const int64_t n = static_cast<int64_t>(sen.size());
    trained += n;
    for (int64_t pos = 0; pos < n; ++pos) {
      const float alpha = alpha0 + alpha_step * static_cast<float>(where[pos]);
      const int64_t b = static_cast<int64_t>(next(state) % static_cast<uint64_t>(p.window));
      const int64_t lo = std::max<int64_t>(0, pos - p.window + b);
      const int64_t hi = std::min<int64_t>(n, pos + p.window - b + 1);
      const int32_t center = sen[pos];
      if (p.sg) {
        for (int64_t c = lo; c < hi; ++c) {
          if (c == pos) continue;
          float* l1 = syn0 + static_cast<int64_t>(sen[c]) * dim;
          std::fill(neu1e.begin(), neu1e.end(), 0.0f);
          negative_sampling(p, center, l1, alpha, cum_table, V, state, syn1neg, neu1e.data());
          axpy(1.0f, neu1e.data(), l1, dim);
        }
        continue;
      }
      std::fill(neu1.begin(), neu1.end(), 0.0f);
      int64_t count = 0;
      for (int64_t c = lo; c < hi; ++c) {
        if (c == pos) continue;
        axpy(1.0f, syn0 + static_cast<int64_t>(sen[c]) * dim, neu1.data(), dim);
        ++count;
      }
      if (count == 0) continue;
      const float inv = 1.0f / static_cast<float>(count);
      if (p.cbow_mean)
        for (float& v : neu1) v *= inv;
      std::fill(neu1e.begin(), neu1e.end(), 0.0f);
      negative_sampling(p, center, neu1.data(), alpha, cum_table, V, state, syn1neg,
                        neu1e.data());
      if (!p.cbow_mean)
        for (float& v : neu1e) v *= inv;
      for (int64_t c = lo; c < hi; ++c)
        if (c != pos) axpy(1.0f, neu1e.data(), syn0 + static_cast<int64_t>(sen[c]) * dim, dim);
    }
  }
  return trained;
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
