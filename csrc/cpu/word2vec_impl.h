// word2vec training: skip-gram and CBOW with negative sampling and/or hierarchical softmax,
// word2vec.c's algorithm with skip-gram batched as in pWord2Vec (Ji et al., 2016). Written once
// and compiled once per SIMD level: word2vec.cc (baseline x86-64-v2), word2vec_avx2.cc and
// word2vec_avx512.cc; SEQKERN_ISA names the namespace of each copy.
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
//
// Hierarchical softmax is the same dense problem with other outputs: the syn1 rows of the inner
// nodes on the center's path in the Huffman tree, each labelled 1 - its branch bit. Skip-gram
// runs it one context word after the other, as word2vec.c does, each seeing the path rows as the
// previous one left them: the path's rows near the root are shared by every word, and batching
// them over the window as the noise words are batched (each context against the rows before the
// window) cost 1.4 points of analogy accuracy on a 4.6M-word corpus. With both, the inputs'
// updates of the two problems add up, both computed from the inputs before the window. Parts
// that run at once keep the rows of the nodes nearest the root in copies of their own, merged
// into syn1 every few hundred words (word2vec.cc says why); run one after the other, they give
// the twin's vectors, to float32 rounding.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "seqkern/word2vec.h"
#include "vector_math.h"

namespace seqkern {
namespace SEQKERN_ISA {

namespace {

constexpr float kMaxExp = 6.0f;
constexpr float kSkipped = -1.0f;  // in place of a sigmoid: a score left out (never a sigmoid)
constexpr int64_t kMaxNegative = 64;  // Word2Vec checks negative against it
constexpr int64_t kAhead = 4;         // words between a window's prefetch and its update
constexpr int64_t kMaxOut = std::max(kMaxNegative + 1, Tree::kMaxCode);  // outputs of a window

// word2vec.c's linear congruential generator.
inline uint64_t next(uint64_t& state) {
  state = state * 25214903917ULL + 11;
  return state;
}

// A draw uniform in [0, 1) from the generator's top 24 bits, for subsampling. word2vec.c takes
// its low 16 bits, which repeat every 2^16 draws (an LCG modulo 2^64: bit i has period 2^(i+1)),
// so the keep-or-drop draws of the frequent words followed a fixed cycle. Skip-gram on GCIDE, 2
// threads: analogy accuracy 15.8% with the low bits (seeds 1-6), 16.4% with the top ones (seeds
// 1-9), gensim's 16.3-16.9% (it takes bits 16-47 of its 48-bit generator); on the Linux
// kernel's documentation, and CBOW on both, the scores moved within their seeds' spread.
inline float uniform24(uint64_t& state) {
  return static_cast<float>(next(state) >> 40) * (1.0f / 16777216.0f);
}

// Four lanes, for the columns past the last whole vector (dim = 100 or 300 leaves 4 with 8
// lanes), which would otherwise go one float at a time. With 16 lanes, eight-lane vectors (v8)
// come first (dim = 300 leaves 12).
typedef float vh __attribute__((vector_size(16)));
constexpr int kH = 4;

template <typename V>
inline void ld(V& v, const float* p) { std::memcpy(&v, p, sizeof v); }
template <typename V>
inline void st(float* p, const V& v) { std::memcpy(p, &v, sizeof v); }

// The lower and upper halves of a vector, added: 16 lanes to 8, 8 to 4.
template <typename H, typename V>
inline H fold(const V& v) {
  H lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  return lo + hi;
}

// f[i * stride + j] = a[i] . b[j] for i < I, j < J: I * J FMA chains, so that their latencies
// overlap, and each row loaded serves I or J of them. The columns past the last whole vector
// are added one score at a time after folding its sum to 8 and 4 lanes, so each score costs one
// short reduction (and no array of partial sums lives on the stack).
template <int I, int J>
inline void dots(float* const* a, float* const* b, int64_t dim, float* f, int64_t stride) {
  vf acc[I][J];
  for (int i = 0; i < I; ++i)
    for (int j = 0; j < J; ++j) acc[i][j] = vf{};
  int64_t k0 = 0;
  for (; k0 + kW <= dim; k0 += kW) {
    vf x[I], y[J];
    for (int i = 0; i < I; ++i) ld(x[i], a[i] + k0);
    for (int j = 0; j < J; ++j) ld(y[j], b[j] + k0);
    for (int i = 0; i < I; ++i)
      for (int j = 0; j < J; ++j) acc[i][j] += x[i] * y[j];
  }
  for (int i = 0; i < I; ++i)
    for (int j = 0; j < J; ++j) {
      int64_t k = k0;
      v8 s8;
      if constexpr (kW > 8) {
        s8 = fold<v8>(acc[i][j]);
        if (k + 8 <= dim) {
          v8 x, y;
          ld(x, a[i] + k);
          ld(y, b[j] + k);
          s8 += x * y;
          k += 8;
        }
      } else {
        s8 = acc[i][j];
      }
      vh s4 = fold<vh>(s8);
      if (k + kH <= dim) {
        vh x, y;
        ld(x, a[i] + k);
        ld(y, b[j] + k);
        s4 += x * y;
        k += kH;
      }
      float s = (s4[0] + s4[2]) + (s4[1] + s4[3]);
      for (; k < dim; ++k) s += a[i][k] * b[j][k];
      f[i * stride + j] = s;
    }
}

// f[i * n_out + j] = in[i] . out[j]: two inputs by four outputs at a time.
template <int I>
inline void score_rows(float* const* in, float* const* out, int64_t n_out, int64_t dim, float* f) {
  int64_t j = 0;
  for (; j + 4 <= n_out; j += 4) dots<I, 4>(in, out + j, dim, f + j, n_out);
  switch (n_out - j) {
    case 3: dots<I, 3>(in, out + j, dim, f + j, n_out); break;
    case 2: dots<I, 2>(in, out + j, dim, f + j, n_out); break;
    case 1: dots<I, 1>(in, out + j, dim, f + j, n_out); break;
    default: break;
  }
}

inline void scores(float* const* in, int64_t n_in, float* const* out, int64_t n_out,
                   int64_t dim, float* f) {
  int64_t i = 0;
  for (; i + 2 <= n_in; i += 2) score_rows<2>(in + i, out, n_out, dim, f + i * n_out);
  if (i < n_in) score_rows<1>(in + i, out, n_out, dim, f + i * n_out);
}

// (label[j] - sigmoid(f)) * alpha in place over the n_in x n_out scores. Past |f| = 6
// word2vec.c's table ends: negative sampling saturates the sigmoid to 0 or 1 there; hierarchical
// softmax (skip) leaves the score out with a gain of 0, as word2vec.c and gensim do. With loss,
// adds -log sigmoid(f) (label 1) or -log sigmoid(-f) (label 0) of every score with |f| < 6.
inline void gains(float* g, int64_t n_in, int64_t n_out, const float* label, float alpha,
                  bool skip, double* loss) {
  const int64_t n = n_in * n_out;
  if (loss) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float f = label[i % n_out] > 0 ? g[i] : -g[i];
      if (f > -kMaxExp && f < kMaxExp) sum += std::log1p(std::exp(-static_cast<double>(f)));
    }
    *loss += sum;
  }
  for (int64_t i = 0; i < n; i += kW) {
    vf f = {};
    const int64_t m = std::min<int64_t>(kW, n - i);
    std::memcpy(&f, g + i, m * sizeof(float));
    vf s = vsigmoid(f);
    s = f > kMaxExp ? splat(1.0f) : s;
    s = f < -kMaxExp ? splat(0.0f) : s;
    if (skip) s = vabs(f) >= kMaxExp ? splat(kSkipped) : s;
    std::memcpy(g + i, &s, m * sizeof(float));
  }
  for (int64_t i = 0; i < n_in; ++i)
    for (int64_t j = 0; j < n_out; ++j) {
      float& v = g[i * n_out + j];
      v = v == kSkipped ? 0.0f : (label[j] - v) * alpha;
    }
}

// Both updates, G . outputs into d_in and G^T . inputs added to the output rows, as small
// products blocked in registers: R destination rows by C vectors of columns accumulate over all
// source rows, so each source vector loaded serves R rows and R * C independent FMA chains hide
// the FMA latency. (One chain per row and column vector was latency-bound.)
//   dst[r][k..] (+)= sum over q < n of w[r * w_r + q * w_q] * src[q][k..]
// The inputs are never output rows, and every output row is read (for d_in) before any is written;
// the output rows are updated one after the other (each stored before the next is loaded), so a
// noise word drawn twice gets both updates. Rows are read in place: copying them to a buffer
// first stalls each load on store forwarding.
template <typename V, int R, int C>
inline void block(float* const* dst, float* const* src, int64_t n, const float* w, int64_t w_r,
                  int64_t w_q, int64_t k, bool add) {
  constexpr int L = sizeof(V) / sizeof(float);
  V acc[R][C] = {};
  for (int64_t q = 0; q < n; ++q) {
    V v[C];
    for (int c = 0; c < C; ++c) ld(v[c], src[q] + k + c * L);
    for (int r = 0; r < R; ++r) {
      const float b = w[r * w_r + q * w_q];
      for (int c = 0; c < C; ++c) acc[r][c] += b * v[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      V cur{};
      if (add) ld(cur, dst[r] + k + c * L);
      st(dst[r] + k + c * L, cur + acc[r][c]);
    }
}

// block over all n_dst rows, R at a time.
template <typename V, int C>
inline void rows(float* const* dst, int64_t n_dst, float* const* src, int64_t n, const float* w,
                 int64_t w_r, int64_t w_q, int64_t k, bool add) {
  constexpr int R = 4;
  int64_t r = 0;
  for (; r + R <= n_dst; r += R) block<V, R, C>(dst + r, src, n, w + r * w_r, w_r, w_q, k, add);
  switch (n_dst - r) {
    case 3: block<V, 3, C>(dst + r, src, n, w + r * w_r, w_r, w_q, k, add); break;
    case 2: block<V, 2, C>(dst + r, src, n, w + r * w_r, w_r, w_q, k, add); break;
    case 1: block<V, 1, C>(dst + r, src, n, w + r * w_r, w_r, w_q, k, add); break;
    default: break;
  }
}

// Calls f(V{}, C, k) over [0, dim) in the pieces the updates take at a time: C (an
// integral_constant) vectors of type V from column k. Two whole vectors, then one, then 8 lanes
// (with 16-lane vectors), 4 lanes and single floats.
template <typename F>
inline void column_pieces(int64_t dim, F&& f) {
  using one = std::integral_constant<int, 1>;
  int64_t k = 0;
  for (; k + 2 * kW <= dim; k += 2 * kW) f(vf{}, std::integral_constant<int, 2>{}, k);
  if (k + kW <= dim) {
    f(vf{}, one{}, k);
    k += kW;
  }
  if (kW > 8 && k + 8 <= dim) {
    f(v8{}, one{}, k);
    k += 8;
  }
  if (k + kH <= dim) {
    f(vh{}, one{}, k);
    k += kH;
  }
  for (; k < dim; ++k) f(0.0f, one{}, k);
}

// dst (+)= W . src over all dim columns.
inline void product(float* const* dst, int64_t n_dst, float* const* src, int64_t n,
                    const float* w, int64_t w_r, int64_t w_q, int64_t dim, bool add) {
  column_pieces(dim, [&](auto v, auto c, int64_t k) {
    rows<decltype(v), decltype(c)::value>(dst, n_dst, src, n, w, w_r, w_q, k, add);
  });
}

// Buffers of one run, sized once: inputs up to 2 * window, outputs up to kMaxOut.
struct Window {
  Window(int64_t window, int64_t dim)
      : in(2 * window), out(kMaxOut), ids(2 * window), label(kMaxOut),
        g(2 * window * kMaxOut), d_in(2 * window * dim), neu1(dim), d_in_rows(2 * window) {
    for (int64_t i = 0; i < 2 * window; ++i) d_in_rows[i] = &d_in[i * dim];
  }
  std::vector<float*> in, out;
  std::vector<int32_t> ids;  // the context words
  std::vector<float> label, g, d_in, neu1;
  std::vector<float*> d_in_rows;  // row i of d_in
};

// One window (see the top of the file) against the n_out outputs in w.out with labels w.label:
// the outputs updated in place, the inputs' updates (n_in x dim) written to d_in (or added to
// it, with add).
void update_window(Window& w, int64_t n_in, int64_t n_out, float alpha, int64_t dim, bool add,
                   double* loss) {
  scores(w.in.data(), n_in, w.out.data(), n_out, dim, w.g.data());
  gains(w.g.data(), n_in, n_out, w.label.data(), alpha, false, loss);
  product(w.d_in_rows.data(), n_in, w.out.data(), n_out, w.g.data(), n_out, 1, dim, add);
  product(w.out.data(), n_out, w.in.data(), n_in, w.g.data(), 1, n_out, dim, true);
}

// Columns [k, k + C lanes of V) of a path's updates from one input x (see update_path): each
// path row is loaded once, for both d_in += g[j] * out[j] and out[j] += g[j] * x, in two sets of
// accumulators (even and odd rows) so that the sums' FMA chains overlap.
template <typename V, int C>
inline void path_columns(const float* x, float* d_in, float* const* out, int64_t n_out,
                         const float* g, int64_t k, bool add) {
  constexpr int L = sizeof(V) / sizeof(float);
  V xv[C], acc[2][C] = {};
  for (int c = 0; c < C; ++c) ld(xv[c], x + k + c * L);
  const auto step = [&](int64_t j, V* a) {
    for (int c = 0; c < C; ++c) {
      V o;
      ld(o, out[j] + k + c * L);
      a[c] += g[j] * o;
      st(out[j] + k + c * L, o + g[j] * xv[c]);
    }
  };
  int64_t j = 0;
  for (; j + 2 <= n_out; j += 2) {
    step(j, acc[0]);
    step(j + 1, acc[1]);
  }
  if (j < n_out) step(j, acc[0]);
  for (int c = 0; c < C; ++c) {
    V cur{};
    if (add) ld(cur, d_in + k + c * L);
    st(d_in + k + c * L, cur + acc[0][c] + acc[1][c]);
  }
}

// Hierarchical softmax for one input x against the n_out rows of its path in w.out (labels in
// w.label), as word2vec.c updates one pair: the rows updated in place, x's update written to
// d_in (or added to it, with add). A path's rows are distinct, so one sweep reads each row for
// d_in and then writes it.
void update_path(Window& w, const float* x, float* d_in, int64_t n_out, float alpha, int64_t dim,
                 bool add, double* loss) {
  float* const in[1] = {const_cast<float*>(x)};
  scores(in, 1, w.out.data(), n_out, dim, w.g.data());
  gains(w.g.data(), 1, n_out, w.label.data(), alpha, true, loss);
  const float* g = w.g.data();
  column_pieces(dim, [&](auto v, auto c, int64_t k) {
    path_columns<decltype(v), decltype(c)::value>(x, d_in, w.out.data(), n_out, g, k, add);
  });
}

inline void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    vf u, v;
    ld(u, x + i);
    ld(v, y + i);
    st(y + i, v + a * u);
  }
  if (kW > 8 && i + 8 <= n) {
    v8 u, v;
    ld(u, x + i);
    ld(v, y + i);
    st(y + i, v + a * u);
    i += 8;
  }
  if (i + kH <= n) {
    vh u, v;
    ld(u, x + i);
    ld(v, y + i);
    st(y + i, v + a * u);
    i += kH;
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

inline void prefetch_row(const float* row, int64_t dim) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t byte = 0; byte < dim * 4; byte += 64) __builtin_prefetch(p + byte, 1);
}

// A noise word drawn from the cumulative table (gensim's bisection).
inline int32_t noise_word(uint64_t& state, const NoiseTable& noise) {
  const uint64_t r = (next(state) >> 16) % noise.cum[noise.V - 1];
  const uint64_t b = r >> NoiseTable::kShift;
  const uint32_t* lo = noise.cum + noise.start[b];
  const uint32_t* hi = noise.cum + noise.start[b + 1];  // the word of a draw past the slice
  return static_cast<int32_t>(std::upper_bound(lo, hi, r) - noise.cum);
}

}  // namespace

// One run of sentences [s0, s1) of a chunk of n_words words, on one random stream.
int64_t train_part(const W2vParams& p, const int32_t* ids, const int64_t* offsets, int64_t s0,
                   int64_t s1, int64_t n_words, const float* keep, const NoiseTable& noise,
                   float alpha0, float alpha1, uint64_t& state, float* syn0, float* syn1neg,
                   const Tree& tree, float* syn1, int64_t top0, int64_t n_top, int64_t merge_every,
                   double* loss) {
  const int64_t dim = p.dim;
  // syn1's rows [top0, top0 + n_top), the nodes nearest the root, in a copy of this part's own
  // (top) with their values when copied (base); merged into syn1 every merge_every words.
  std::vector<float> top(n_top * dim), base(n_top * dim);
  const auto pull = [&] {
    std::memcpy(top.data(), syn1 + top0 * dim, top.size() * sizeof(float));
    base = top;
  };
  const auto merge = [&] {
    float* shared = syn1 + top0 * dim;
    for (size_t i = 0; i < top.size(); ++i) shared[i] += top[i] - base[i];
    pull();
  };
  const auto node_row = [&](int64_t point) {
    return point >= top0 ? top.data() + (point - top0) * dim : syn1 + point * dim;
  };
  if (n_top) pull();
  int64_t since_merge = 0;
  const int64_t negative = std::min(p.negative, kMaxNegative);
  const float alpha_step = (alpha1 - alpha0) / static_cast<float>(std::max<int64_t>(1, n_words));
  std::vector<int32_t> sen;
  std::vector<int64_t> where;  // position of each kept word in the chunk, for alpha
  std::vector<int64_t> shrink;  // of each word's window
  std::vector<int32_t> drawn;   // each word's noise words
  // A window reaches at most the rest of its sentence: the buffers need no more than the
  // longest sentence (a window of 2^40 asked for terabytes).
  int64_t longest = 0;
  for (int64_t s = s0; s < s1; ++s) longest = std::max(longest, offsets[s + 1] - offsets[s]);
  Window w(std::min(p.window, longest), dim);
  int64_t trained = 0;
  for (int64_t s = s0; s < s1; ++s) {
    sen.clear();
    where.clear();
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
      const int32_t word = ids[i];
      if (keep[word] < 1.0f && keep[word] < uniform24(state)) continue;
      sen.push_back(word);
      where.push_back(i - offsets[0]);
    }
    const int64_t n = static_cast<int64_t>(sen.size());
    trained += n;
    if (n < 2) {  // no context: the window is drawn, nothing else
      if (n == 1 && p.shrink_windows) next(state);
      continue;
    }
    // Every window of the sentence is drawn first, in the order the words use the stream (each
    // word's shrink, then its noise words), so that rows can be prefetched a few words ahead:
    // the noise rows are scattered over the table and each would stall on a cache miss.
    shrink.resize(n);
    drawn.resize(n * negative);
    for (int64_t pos = 0; pos < n; ++pos) {
      shrink[pos] = p.shrink_windows
                        ? static_cast<int64_t>(next(state) % static_cast<uint64_t>(p.window))
                        : 0;
      for (int64_t d = 0; d < negative; ++d) drawn[pos * negative + d] = noise_word(state, noise);
    }
    const auto prefetch_window = [&](int64_t pos) {
      if (negative) prefetch_row(syn1neg + static_cast<int64_t>(sen[pos]) * dim, dim);
      for (int64_t d = 0; d < negative; ++d)
        prefetch_row(syn1neg + static_cast<int64_t>(drawn[pos * negative + d]) * dim, dim);
      if (pos + p.window < n)
        prefetch_row(syn0 + static_cast<int64_t>(sen[pos + p.window]) * dim, dim);
      if (p.hs) {  // the center's path: its nodes and branch bits
        __builtin_prefetch(tree.points + tree.offsets[sen[pos]]);
        __builtin_prefetch(tree.codes + tree.offsets[sen[pos]]);
      }
    };
    for (int64_t pos = 0; pos < std::min<int64_t>(n, kAhead); ++pos) prefetch_window(pos);
    for (int64_t pos = 0; pos < n; ++pos) {
      if (pos + kAhead < n) prefetch_window(pos + kAhead);
      if (n_top && ++since_merge == merge_every) {
        merge();
        since_merge = 0;
      }
      const float alpha = alpha0 + alpha_step * static_cast<float>(where[pos]);
      const int64_t lo = std::max<int64_t>(0, pos - p.window + shrink[pos]);
      const int64_t hi = std::min<int64_t>(n, pos + p.window - shrink[pos] + 1);
      int64_t n_ctx = 0;
      for (int64_t c = lo; c < hi; ++c)
        if (c != pos) w.ids[n_ctx++] = sen[c];
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
      const int32_t center = sen[pos];
      bool add = false;  // whether d_in holds the first problem's updates
      if (p.hs) {
        int64_t n_out = 0;
        for (int64_t k = tree.offsets[center]; k < tree.offsets[center + 1]; ++k, ++n_out) {
          w.out[n_out] = node_row(tree.points[k]);
          w.label[n_out] = 1.0f - static_cast<float>(tree.codes[k]);
        }
        for (int64_t i = 0; i < n_in; ++i)  // one context word at a time, as word2vec.c
          update_path(w, w.in[i], w.d_in_rows[i], n_out, alpha, dim, add, loss);
        add = true;
      }
      if (negative) {
        w.out[0] = syn1neg + static_cast<int64_t>(center) * dim;
        w.label[0] = 1.0f;
        int64_t n_out = 1;
        for (int64_t d = 0; d < negative; ++d) {
          const int32_t target = drawn[pos * negative + d];
          if (target != center) {
            w.label[n_out] = 0.0f;
            w.out[n_out++] = syn1neg + static_cast<int64_t>(target) * dim;
          }
        }
        update_window(w, n_in, n_out, alpha, dim, add, loss);
      }
      const auto lock = [&](int32_t word) { return p.lockf ? p.lockf[word % p.n_lockf] : 1.0f; };
      if (p.sg) {
        for (int64_t i = 0; i < n_ctx; ++i)
          axpy(lock(w.ids[i]), &w.d_in[i * dim], syn0 + static_cast<int64_t>(w.ids[i]) * dim, dim);
        continue;
      }
      const float scale = p.cbow_mean ? 1.0f : 1.0f / static_cast<float>(n_ctx);
      for (int64_t i = 0; i < n_ctx; ++i)
        axpy(scale * lock(w.ids[i]), w.d_in.data(), syn0 + static_cast<int64_t>(w.ids[i]) * dim,
             dim);
    }
  }
  if (n_top) merge();
  return trained;
}

// gensim's log sigmoid table (word2vec_inner.pyx): entry i is log sigmoid((i / 1000 * 2 - 1) * 6),
// computed with gensim's mix of float and double, and a score f in (-6, 6) reads entry
// int((f + 6) * 83) (its 1000 / 6 / 2 in integer arithmetic): about log sigmoid(0.996 f - 0.024)
// in steps of 0.012. Word2Vec.score promises gensim's figures, so it reads the same entries.
inline float log_sigmoid_entry(float f) {
  static const std::vector<float> table = [] {
    std::vector<float> t(1000);
    for (int i = 0; i < 1000; ++i) {
      float e = static_cast<float>(
          std::exp((static_cast<double>(static_cast<float>(i) / 1000.0f) * 2.0 - 1.0) * 6.0));
      e = static_cast<float>(e / (e + 1.0));
      t[i] = static_cast<float>(std::log(static_cast<double>(e)));
    }
    return t;
  }();
  return table[static_cast<int>((static_cast<double>(f) + 6.0) * 83)];
}

// Sentences [s0, s1) of w2v_score (word2vec.h): each word's path against its window's inputs,
// the n_in x n_out scores of the dense problem training solves, summed by gensim's table.
void score_part(const W2vParams& p, const int32_t* ids, const int64_t* offsets, int64_t s0,
                int64_t s1, const float* syn0, const Tree& tree, const float* syn1,
                float* out) {
  const int64_t dim = p.dim;
  int64_t longest = 0;
  for (int64_t s = s0; s < s1; ++s) longest = std::max(longest, offsets[s + 1] - offsets[s]);
  Window w(std::min(p.window, longest), dim);
  for (int64_t s = s0; s < s1; ++s) {
    const int32_t* sen = ids + offsets[s];
    const int64_t n = offsets[s + 1] - offsets[s];
    double sum = 0;
    for (int64_t pos = 0; pos < n; ++pos) {
      const int32_t center = sen[pos];
      int64_t n_out = 0;
      for (int64_t k = tree.offsets[center]; k < tree.offsets[center + 1]; ++k, ++n_out) {
        w.out[n_out] = const_cast<float*>(syn1) + static_cast<int64_t>(tree.points[k]) * dim;
        w.label[n_out] = tree.codes[k] ? -1.0f : 1.0f;  // the sign of the branch taken
      }
      const int64_t lo = std::max<int64_t>(0, pos - p.window);
      const int64_t hi = std::min<int64_t>(n, pos + p.window + 1);
      int64_t n_in = 0;
      for (int64_t c = lo; c < hi; ++c)
        if (c != pos) w.in[n_in++] = const_cast<float*>(syn0) + static_cast<int64_t>(sen[c]) * dim;
      if (!p.sg) {  // one input: the window's mean or sum (zeros for a word alone)
        std::fill(w.neu1.begin(), w.neu1.end(), 0.0f);
        for (int64_t i = 0; i < n_in; ++i) axpy(1.0f, w.in[i], w.neu1.data(), dim);
        if (p.cbow_mean && n_in) {
          const float inv = 1.0f / static_cast<float>(n_in);
          for (float& v : w.neu1) v *= inv;
        }
        w.in[0] = w.neu1.data();
        n_in = 1;
      }
      if (!n_in || !n_out) continue;
      scores(w.in.data(), n_in, w.out.data(), n_out, dim, w.g.data());
      for (int64_t i = 0; i < n_in; ++i)
        for (int64_t j = 0; j < n_out; ++j) {
          const float f = w.g[i * n_out + j] * w.label[j];
          if (f > -kMaxExp && f < kMaxExp) sum += log_sigmoid_entry(f);
        }
    }
    out[s] = static_cast<float>(sum);
  }
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
