// word2vec training: skip-gram and CBOW with negative sampling, word2vec.c's algorithm with
// skip-gram batched as in pWord2Vec (Ji et al., 2016). Written once and compiled twice:
// word2vec.cc (baseline x86-64-v2) and word2vec_avx2.cc (-mavx2 -mfma); SEQKERN_ISA names the
// namespace of each copy.
//
// For each kept word (the center), a window shrunk at random gives its context words and
// `negative` noise words are drawn. Each window is one small dense problem: the inputs are the
// contexts' vectors (skip-gram) or their mean or sum (CBOW), the outputs are the output vectors
// syn1neg of the center (label 1) and of the noise words (label 0; a draw equal to the center is
// dropped). With F = inputs . outputs^T,
//   G = (label - sigmoid(F)) * alpha        sigmoid saturating past |f| = 6, as word2vec.c's table
//   outputs += G^T . inputs,  inputs += G . outputs     both from the values before the window.
// CBOW then adds the input's update to every context vector (divided by the context size when
// summing, as gensim does). word2vec.c's skip-gram draws new noise words for each context word
// and updates one pair at a time; sharing the noise words across the window reads each noise row
// once per window instead of once per context word, and the scattered rows' cache misses were
// where the time went.

#include <algorithm>
#include <cstring>
#include <vector>

#include "seqkern/word2vec.h"
#include "vector_math.h"

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

inline void ld(vf& v, const float* p) { std::memcpy(&v, p, sizeof v); }
inline void ld(float& v, const float* p) { v = *p; }
inline void st(float* p, const vf& v) { std::memcpy(p, &v, sizeof v); }
inline void st(float* p, const float& v) { *p = v; }

inline float sum_lanes(vf a) {
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

// f[j] = a . b[j] for j < N, one FMA chain per row so that their latencies overlap.
template <int N>
inline void dots(const float* a, float* const* b, int64_t dim, float* f) {
  vf acc[N] = {};
  int64_t k = 0;
  for (; k + kW <= dim; k += kW) {
    vf x;
    ld(x, a + k);
    for (int j = 0; j < N; ++j) {
      vf y;
      ld(y, b[j] + k);
      acc[j] += x * y;
    }
  }
  for (int j = 0; j < N; ++j) {
    float s = sum_lanes(acc[j]);
    for (int64_t t = k; t < dim; ++t) s += a[t] * b[j][t];
    f[j] = s;
  }
}

// f[j] = a . b[j] for j < n, four rows at a time.
inline void scores(const float* a, float* const* b, int64_t n, int64_t dim, float* f) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) dots<4>(a, b + j, dim, f + j);
  switch (n - j) {
    case 3: dots<3>(a, b + j, dim, f + j); break;
    case 2: dots<2>(a, b + j, dim, f + j); break;
    case 1: dots<1>(a, b + j, dim, f + j); break;
    default: break;
  }
}

// (label - sigmoid(f)) * alpha in place over the n_in x n_out scores; column 0 has label 1.
inline void gains(float* g, int64_t n_in, int64_t n_out, float alpha) {
  const int64_t n = n_in * n_out;
  for (int64_t i = 0; i < n; i += kW) {
    vf f = {};
    const int64_t m = std::min<int64_t>(kW, n - i);
    std::memcpy(&f, g + i, m * sizeof(float));
    vf s = vsigmoid(f);
    s = f > kMaxExp ? splat(1.0f) : s;
    s = f < -kMaxExp ? splat(0.0f) : s;
    std::memcpy(g + i, &s, m * sizeof(float));
  }
  for (int64_t i = 0; i < n_in; ++i)
    for (int64_t j = 0; j < n_out; ++j) {
      float& v = g[i * n_out + j];
      v = ((j == 0 ? 1.0f : 0.0f) - v) * alpha;
    }
}

// Columns [k, k + lanes of V) of both updates: d_in = G . outputs into d_in, G^T . inputs added
// to the output rows. Everything is read before anything is written, and the output rows are
// updated one after the other, so a noise word drawn twice gets both updates.
template <typename V>
inline void update_columns(int64_t k, float* const* in, int64_t n_in, float* const* out,
                           int64_t n_out, const float* g, int64_t dim, float* d_in, V* x, V* o) {
  for (int64_t i = 0; i < n_in; ++i) ld(x[i], in[i] + k);
  for (int64_t j = 0; j < n_out; ++j) ld(o[j], out[j] + k);
  for (int64_t i = 0; i < n_in; ++i) {
    V acc{};
    for (int64_t j = 0; j < n_out; ++j) acc += g[i * n_out + j] * o[j];
    st(d_in + i * dim + k, acc);
  }
  for (int64_t j = 0; j < n_out; ++j) {
    V acc{};
    for (int64_t i = 0; i < n_in; ++i) acc += g[i * n_out + j] * x[i];
    V cur;
    ld(cur, out[j] + k);
    st(out[j] + k, cur + acc);
  }
}

// Buffers of one run, sized once: inputs up to 2 * window, outputs up to 1 + kMaxNegative.
struct Window {
  Window(int64_t window, int64_t dim)
      : in(2 * window), out(kMaxNegative + 1), ids(2 * window),
        g(2 * window * (kMaxNegative + 1)), d_in(2 * window * dim), neu1(dim),
        vx(2 * window), vo(kMaxNegative + 1), sx(2 * window), so(kMaxNegative + 1) {}
  std::vector<float*> in, out;
  std::vector<int32_t> ids;  // the input rows' words (skip-gram)
  std::vector<float> g, d_in, neu1;
  std::vector<vf> vx, vo;
  std::vector<float> sx, so;
};

// One window (see the top of the file): g = gains, d_in = the inputs' updates (n_in x dim), the
// outputs updated in place.
void update_window(Window& w, int64_t n_in, int64_t n_out, float alpha, int64_t dim) {
  for (int64_t i = 0; i < n_in; ++i) scores(w.in[i], w.out.data(), n_out, dim, &w.g[i * n_out]);
  gains(w.g.data(), n_in, n_out, alpha);
  int64_t k = 0;
  for (; k + kW <= dim; k += kW)
    update_columns(k, w.in.data(), n_in, w.out.data(), n_out, w.g.data(), dim, w.d_in.data(),
                   w.vx.data(), w.vo.data());
  for (; k < dim; ++k)
    update_columns(k, w.in.data(), n_in, w.out.data(), n_out, w.g.data(), dim, w.d_in.data(),
                   w.sx.data(), w.so.data());
}

inline void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    vf u, v;
    ld(u, x + i);
    ld(v, y + i);
    st(y + i, v + a * u);
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// A noise word drawn from the cumulative table (gensim's bisection).
inline int32_t noise_word(uint64_t& state, const uint32_t* cum_table, int64_t V) {
  const uint64_t r = (next(state) >> 16) % cum_table[V - 1];
  return static_cast<int32_t>(std::upper_bound(cum_table, cum_table + V, r) - cum_table);
}

}  // namespace

// One run of sentences [s0, s1) of a chunk of n_words words, on one random stream.
int64_t train_part(const W2vParams& p, const int32_t* ids, const int64_t* offsets, int64_t s0,
                   int64_t s1, int64_t n_words, const float* keep, const uint32_t* cum_table,
                   int64_t V, float alpha0, float alpha1, uint64_t& state, float* syn0,
                   float* syn1neg) {
  const int64_t dim = p.dim;
  const int64_t negative = std::min(p.negative, kMaxNegative);
  const float alpha_step = (alpha1 - alpha0) / static_cast<float>(std::max<int64_t>(1, n_words));
  std::vector<int32_t> sen;
  std::vector<int64_t> where;  // position of each kept word in the chunk, for alpha
  Window w(p.window, dim);
  int64_t trained = 0;
  for (int64_t s = s0; s < s1; ++s) {
    sen.clear();
    where.clear();
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
      const int32_t word = ids[i];
      if (keep[word] < 1.0f && keep[word] < (next(state) & 0xFFFF) / 65536.0f) continue;
      sen.push_back(word);
      where.push_back(i - offsets[0]);
    }
    const int64_t n = static_cast<int64_t>(sen.size());
    trained += n;
    for (int64_t pos = 0; pos < n; ++pos) {
      const float alpha = alpha0 + alpha_step * static_cast<float>(where[pos]);
      const int64_t b = static_cast<int64_t>(next(state) % static_cast<uint64_t>(p.window));
      const int64_t lo = std::max<int64_t>(0, pos - p.window + b);
      const int64_t hi = std::min<int64_t>(n, pos + p.window - b + 1);
      int64_t n_ctx = 0;
      for (int64_t c = lo; c < hi; ++c)
        if (c != pos) w.ids[n_ctx++] = sen[c];
      if (n_ctx == 0) continue;
      int64_t n_in = 1;
      if (p.sg) {
        for (int64_t i = 0; i < n_ctx; ++i) w.in[i] = syn0 + static_cast<int64_t>(w.ids[i]) * dim;
        n_in = n_ctx;
      } else {
        std::fill(w.neu1.begin(), w.neu1.end(), 0.0f);
        for (int64_t i = 0; i < n_ctx; ++i)
          axpy(1.0f, syn0 + static_cast<int64_t>(w.ids[i]) * dim, w.neu1.data(), dim);
        if (p.cbow_mean) {
          const float inv = 1.0f / static_cast<float>(n_ctx);
          for (float& v : w.neu1) v *= inv;
        }
        w.in[0] = w.neu1.data();
      }
      // The noise rows are scattered over the table: prefetch each as it is drawn.
      const int32_t center = sen[pos];
      w.out[0] = syn1neg + static_cast<int64_t>(center) * dim;
      int64_t n_out = 1;
      for (int64_t d = 0; d < negative; ++d) {
        const int32_t target = noise_word(state, cum_table, V);
        if (target == center) continue;
        const char* row = reinterpret_cast<const char*>(syn1neg + static_cast<int64_t>(target) * dim);
        for (int64_t byte = 0; byte < dim * 4; byte += 64) __builtin_prefetch(row + byte, 1);
        w.out[n_out++] = syn1neg + static_cast<int64_t>(target) * dim;
      }
      update_window(w, n_in, n_out, alpha, dim);
      if (p.sg) {
        for (int64_t i = 0; i < n_ctx; ++i)
          axpy(1.0f, &w.d_in[i * dim], syn0 + static_cast<int64_t>(w.ids[i]) * dim, dim);
        continue;
      }
      const float scale = p.cbow_mean ? 1.0f : 1.0f / static_cast<float>(n_ctx);
      for (int64_t i = 0; i < n_ctx; ++i)
        axpy(scale, w.d_in.data(), syn0 + static_cast<int64_t>(w.ids[i]) * dim, dim);
    }
  }
  return trained;
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
