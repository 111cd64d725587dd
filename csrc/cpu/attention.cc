// Attention forward and backward, dot-product and additive. Shapes: seqkern/attention.h.
//
// Dot scores run on small GEMMs over blocks of kQBlock queries x kKBlock keys: S = scale Q K^T,
// then each row's running max m and sum l are updated (online softmax: the context accumulated
// so far is rescaled by exp(m_old - m_new) when the max grows) and context += exp(S - m) V. The
// backward recomputes each block's probabilities from the saved log-sum-exp (FlashAttention's
// scheme): P = exp(S - lse), dP = dO V^T, dS = scale P (dP - rowsum(dO o O)), dQ += dS K,
// dK += dS^T Q, dV += P^T dO.
// Work is split by sequence, and by block of queries (forward) or of keys (backward); GEMMs
// inside run single-threaded.
#include "seqkern/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "packed_gemm.h"
#include "seqkern/activations.h"
#include "seqkern/gemm.h"
#include "seqkern/simd.h"
#include "seqkern/threads.h"

namespace seqkern {

namespace {

constexpr int64_t kQBlock = 128;  // query rows per block
constexpr int64_t kMinQBlock = 16;  // ... at least, when the forward splits a small batch finer
constexpr int64_t kKBlock = 512;  // keys per block

// Per-thread scratch, reused from call to call; `slot` keeps one call's buffers apart.
template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> slots[5];
  if (static_cast<int64_t>(slots[slot].size()) < n) slots[slot].resize(n);
  return slots[slot].data();
}

inline int64_t length_of(const AttnShape& s, const int32_t* lengths, int64_t b) {
  return lengths ? lengths[b] : s.Tk;
}

// Queries per call from which the products that read a key block's K or V run on the packed
// AVX-512 micro-kernels (float32, level avx512). Paired on Ice Lake, 2 threads, forward and
// backward, BLAS / packed time: (32,64,64,128) and (8,64,256,64) 1.09x; (16,32,32,128) 0.87x.
constexpr int64_t kPackedQueries = 64;

// The products of a block of queries with a key block's K (kn rows of H) or V (kn rows of Hv).
// Packed calls pack each operand once per key block on this thread (an object lives for one
// thread's share of one call) and reuse it for every block of queries after; OpenBLAS packed
// both operands of each of its calls, and its kernels ran these small products at 78-101
// GFLOP/s on one Ice Lake core, against 121-145 for the packed kernels (packed_gemm.py, M = 128).
// Otherwise BLAS runs them. The products with a transposed block of queries, dV and dK, stay
// with BLAS either way: on the packed kernels, reading P and dS transposed in place and packing
// dO and Q for one use each, they were no faster (Ice Lake, paired, 0.94-1.05x).
template <typename T>
class KeyBlockProducts {
 public:
  KeyBlockProducts(const AttnShape& s, T scale) : s_(s), scale_(scale) {
#if SEQKERN_X86
    packed_ = std::is_same_v<T, float> && simd() == Simd::avx512 && s.Tq >= kPackedQueries;
#endif
  }

  // S (mq, kn), row stride lds, = scale Q K^T.
  void scores(int64_t mq, int64_t kn, const T* Q, const T* K, T* S, int64_t lds) {
    run(k_t_, mq, s_.H, kn, Q, s_.H, K, s_.H, true, scale_, S, lds, false);
  }
  // C (mq, Hv) = P V, or C += P V when accumulate; P row stride ldp.
  void context(int64_t mq, int64_t kn, const T* P, int64_t ldp, const T* V, T* C,
               bool accumulate) {
    run(v_, mq, kn, s_.Hv, P, ldp, V, s_.Hv, false, T(1), C, s_.Hv, accumulate);
  }
  // dP (mq, kn) = dO V^T.
  void probability_grad(int64_t mq, int64_t kn, const T* dO, const T* V, T* dP) {
    run(v_t_, mq, s_.Hv, kn, dO, s_.Hv, V, s_.Hv, true, T(1), dP, kn, false);
  }
  // dQ (mq, H) += dS K.
  void query_grad(int64_t mq, int64_t kn, const T* dS, const T* K, T* dQ) {
    run(k_, mq, kn, s_.H, dS, kn, K, s_.H, false, T(1), dQ, s_.H, true);
  }

 private:
  // op(W) (K, N) packed, and the W it was packed from (with its K and N).
  struct Panels {
    const T* from = nullptr;
    int64_t K = 0, N = 0;
    std::vector<float, CacheLineAllocator<float>> data;
  };

  // C (M, N) = alpha A (M, K) @ op(W), or C += A @ op(W) (accumulate, alpha 1): W stored (N, K)
  // when trans, else (K, N), row stride ldw. Packed, op(W) is packed into p unless p holds it.
  void run([[maybe_unused]] Panels& p, int64_t M, int64_t K, int64_t N, const T* A, int64_t lda,
           const T* W, int64_t ldw, bool trans, T alpha, T* C, int64_t ldc, bool accumulate) {
#if SEQKERN_X86
    if constexpr (std::is_same_v<T, float>) {
      if (packed_) {
        const int64_t panels = (N + kPanelColumns - 1) / kPanelColumns;
        if (p.from != W || p.K != K || p.N != N) {
          p.data.resize(avx2::packed_size_f32(K, N));
          pack_panels_f32(W, ldw, trans, K, N, 0, panels, p.data.data(), PanelLayout{K, panels},
                          0);
          p.from = W, p.K = K, p.N = N;
        }
        avx512::packed_gemm_f32(M, K, N, A, lda, p.data.data(), C, ldc, accumulate);
        if (alpha != T(1))  // (never with accumulate)
          for (int64_t r = 0; r < M; ++r)
            for (int64_t j = 0; j < N; ++j) C[r * ldc + j] *= alpha;
        return;
      }
    }
#endif
    gemm<T>(false, trans, M, N, K, alpha, A, lda, W, ldw, accumulate ? T(1) : T(0), C, ldc);
  }

  const AttnShape& s_;
  T scale_;
  bool packed_ = false;
  Panels k_t_, v_, v_t_, k_;  // K^T (scores), V (context), V^T (dP), K (dQ)
};

// Writes one block of weights rows [i0, i0+mq), keys [0, Tk): exp(scale q k - lse), zero past len.
// (With one block of keys the forward has these values at hand and writes them itself.)
template <typename T>
void write_weights(const AttnShape& s, KeyBlockProducts<T>& products, const T* Q, const T* K,
                   int64_t mq, int64_t len, const T* lse, T* W) {
  products.scores(mq, len, Q, K, W, s.Tk);
  for (int64_t r = 0; r < mq; ++r) {
    T* row = W + r * s.Tk;
    exp_sum(row, row, len, lse[r]);
    std::fill(row + len, row + s.Tk, T(0));
  }
}

}  // namespace

template <typename T>
void attention_forward(const AttnShape& s, const T* q, const T* k, const T* v,
                       const int32_t* lengths, T scale, T* context, T* lse, T* weights) {
  // Blocks of queries halve (down to kMinQBlock) until every thread has one: a single sequence
  // of up to 128 queries ran on one thread. Paired on Zen 5, 2 threads, forward, old / new:
  // (1,100,1000,64) 1.37x and 1.39x, (1,64,512,64) 1.35x (with the backward 1.13-1.18x);
  // (1,30,30,256) 1.04-1.20x; batches of 4 and more (no change of blocks) 0.98-1.01.
  int64_t qb = kQBlock;
  while (qb > kMinQBlock && s.B * ((s.Tq + qb - 1) / qb) < get_num_threads()) qb /= 2;
  const int64_t qblocks = (s.Tq + qb - 1) / qb;
  parallel_for(s.B * qblocks, 1, [&](int64_t w0, int64_t w1) {
    T* S = scratch<T>(0, kQBlock * kKBlock);
    T* m = scratch<T>(1, kQBlock);
    T* l = scratch<T>(2, kQBlock);
    T* row_lse = scratch<T>(3, kQBlock);
    KeyBlockProducts<T> products(s, scale);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / qblocks, i0 = w % qblocks * qb;
      const int64_t mq = std::min(qb, s.Tq - i0), len = length_of(s, lengths, b);
      const T* Q = q + (b * s.Tq + i0) * s.H;
      const T* K = k + b * s.Tk * s.H;
      const T* V = v + b * s.Tk * s.Hv;
      T* C = context + (b * s.Tq + i0) * s.Hv;
      // The first block of keys writes the context, the next ones rescale and add to it. (Zeroed
      // first and scaled by alpha = 0, the rows had cost a tenth of a call with few keys:
      // paired on Emerald Rapids, forward and backward, (64,30,30,256) 1.06x; 1.01x at
      // (8,256,256,128) and (4,1024,1024,64).)
      if (len == 0) std::fill(C, C + mq * s.Hv, T(0));  // (the bindings refuse length 0)
      std::fill(m, m + mq, -std::numeric_limits<T>::infinity());
      std::fill(l, l + mq, T(0));
      for (int64_t j0 = 0; j0 < len; j0 += kKBlock) {
        const int64_t kn = std::min(kKBlock, len - j0);
        products.scores(mq, kn, Q, K + j0 * s.H, S, kn);
        for (int64_t r = 0; r < mq; ++r) {
          T* row = S + r * kn;
          const T m_new = std::max(m[r], max_of(row, kn));
          const T alpha = std::exp(m[r] - m_new);  // 0 on the first block (m = -inf)
          l[r] = l[r] * alpha + exp_sum(row, row, kn, m_new);
          if (j0 > 0 && alpha != T(1))
            for (int64_t c = 0; c < s.Hv; ++c) C[r * s.Hv + c] *= alpha;
          m[r] = m_new;
        }
        products.context(mq, kn, S, kn, V + j0 * s.Hv, C, j0 > 0);
      }
      T* W = weights ? weights + (b * s.Tq + i0) * s.Tk : nullptr;
      for (int64_t r = 0; r < mq; ++r) {
        const T inv = T(1) / l[r];
        for (int64_t c = 0; c < s.Hv; ++c) C[r * s.Hv + c] *= inv;
        row_lse[r] = m[r] + std::log(l[r]);
        if (W && len <= kKBlock) {  // one block of keys: S holds exp(s - m) of all of them
          for (int64_t j = 0; j < len; ++j) W[r * s.Tk + j] = S[r * len + j] * inv;
          std::fill(W + r * s.Tk + len, W + (r + 1) * s.Tk, T(0));
        }
      }
      if (lse) std::memcpy(lse + b * s.Tq + i0, row_lse, mq * sizeof(T));
      if (W && len > kKBlock) write_weights(s, products, Q, K, mq, len, row_lse, W);
    }
  });
}

// The backward splits its work by sequence; a batch smaller than the thread count, by (sequence,
// block of keys). Each item owns its keys' rows of dk and dv; with key blocks apart, each writes
// its share of dq (the sum over its keys) to a buffer of its own, and the shares are summed
// after, in key order. Split by sequence alone, one sequence (1,1024,1024,64) ran its backward
// at 180 GFLOP/s on 2 threads, against 346 with two sequences. Blocks of keys halve (down to
// kMinKBlock) until every thread has an item. Paired on Zen 5, 2 threads, forward and backward,
// old / new time: (1,1024,1024,64) 1.59x and 1.65x, (1,256,256,128) 1.41x and 1.44x; batches
// of 4 and more (split by sequence either way) 0.97-1.03.
constexpr int64_t kMinKBlock = 64;

template <typename T>
void attention_backward(const AttnShape& s, const T* q, const T* k, const T* v,
                        const int32_t* lengths, T scale, const T* context, const T* lse,
                        const T* weights, const T* dcontext, T* dq, T* dk, T* dv) {
  const int64_t threads = get_num_threads();
  const bool split_keys = s.B < threads;
  int64_t kb = kKBlock;
  while (split_keys && kb > kMinKBlock && s.B * ((s.Tk + kb - 1) / kb) < threads) kb /= 2;
  const int64_t kblocks = (s.Tk + kb - 1) / kb, items = split_keys ? kblocks : 1;
  // dq's shares (B, kblocks, Tq, H), when the key blocks run apart (each item zeroes its own)
  const bool apart = split_keys && kblocks > 1;
  std::unique_ptr<T[]> shares(apart ? new T[s.B * kblocks * s.Tq * s.H] : nullptr);
  parallel_for(s.B * items, 1, [&](int64_t w0, int64_t w1) {
    T* recomputed = scratch<T>(0, kQBlock * kKBlock);
    T* dP = scratch<T>(1, kQBlock * kKBlock);
    T* D = scratch<T>(2, kQBlock);
    KeyBlockProducts<T> products(s, scale);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / items, jb0 = split_keys ? w % items : 0;
      const int64_t jb1 = split_keys ? jb0 + 1 : kblocks, len = length_of(s, lengths, b);
      T* dQ = apart ? shares.get() + w * s.Tq * s.H : dq + b * s.Tq * s.H;
      std::fill(dQ, dQ + s.Tq * s.H, T(0));
      for (int64_t j0 = jb0 * kb; j0 < jb1 * kb && j0 < s.Tk; j0 += kb) {
        const int64_t kn = std::min(kb, std::max<int64_t>(len - j0, 0));  // keys that count
        const T* K = k + (b * s.Tk + j0) * s.H;
        const T* V = v + (b * s.Tk + j0) * s.Hv;
        T* dK = dk + (b * s.Tk + j0) * s.H;
        T* dV = dv + (b * s.Tk + j0) * s.Hv;
        // The masked keys' rows are zero; the first block of queries writes the others (beta 0),
        // the next ones add to them. (dk is dv when the keys are the values: dK adds to dV.)
        const int64_t rows = std::min(kb, s.Tk - j0);
        std::fill(dK + kn * s.H, dK + rows * s.H, T(0));
        std::fill(dV + kn * s.Hv, dV + rows * s.Hv, T(0));
        for (int64_t i0 = 0; kn > 0 && i0 < s.Tq; i0 += kQBlock) {
          const T beta_v = i0 == 0 ? T(0) : T(1), beta_k = i0 == 0 && dk != dv ? T(0) : T(1);
          const int64_t mq = std::min(kQBlock, s.Tq - i0), row0 = b * s.Tq + i0;
          const T* Q = q + row0 * s.H;
          const T* dO = dcontext + row0 * s.Hv;
          // D and dS on the level's vector kernels (seqkern/activations.h), where this file's
          // loops ran at baseline (a sum's lanes one at a time): paired on Emerald Rapids,
          // forward and backward, old / new time, two runs: (8,256,256,128) 1.016-1.022x,
          // (64,30,30,256) 1.039-1.041x, (32,1,512,512) 1.002-1.019x, (4,1024,1024,64)
          // 1.011-1.014x, (16,50,50,256) 1.025-1.030x.
          for (int64_t r = 0; r < mq; ++r)
            D[r] = dot(dO + r * s.Hv, context + (row0 + r) * s.Hv, s.Hv);
          // P (mq, kn), row stride ldp: the forward's weights, or recomputed from the scores
          const T* P = weights ? weights + row0 * s.Tk + j0 : recomputed;
          const int64_t ldp = weights ? s.Tk : kn;
          if (!weights) {
            products.scores(mq, kn, Q, K, recomputed, kn);
            for (int64_t r = 0; r < mq; ++r)
              exp_sum(recomputed + r * kn, recomputed + r * kn, kn, lse[row0 + r]);
          }
          products.probability_grad(mq, kn, dO, V, dP);
          gemm<T>(true, false, kn, s.Hv, mq, T(1), P, ldp, dO, s.Hv, beta_v, dV, s.Hv);
          for (int64_t r = 0; r < mq; ++r)  // dS
            score_grad(dP + r * kn, P + r * ldp, kn, D[r], scale);
          products.query_grad(mq, kn, dP, K, dQ + i0 * s.H);
          gemm<T>(true, false, kn, s.H, mq, T(1), dP, kn, Q, s.H, beta_k, dK, s.H);
        }
      }
    }
  });
  if (!apart) return;
  // dq = its shares summed in key order, rows split between the threads
  parallel_for(s.B * s.Tq, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* share = shares.get() + (r / s.Tq * kblocks * s.Tq + r % s.Tq) * s.H;
      T* out = dq + r * s.H;
      std::copy(share, share + s.H, out);
      for (int64_t jb = 1; jb < kblocks; ++jb)
        for (int64_t c = 0; c < s.H; ++c) out[c] += share[jb * s.Tq * s.H + c];
    }
  });
}

// Additive scores, forward and backward, on the level's vector kernels (additive_scores or
// additive_scores_exp, as AdditiveRows chooses, and additive_grad in seqkern/activations.h):
// tanh(q + k_j) and its dot with u in one pass. Queries go in blocks of up to kAdditiveQBlock,
// whose products with the values run as GEMMs: the context P V, and in the backward dP = dO V^T
// and dV += P^T dO, where one value row at a time (a dot product per (query, key) pair, an axpy
// per key) took a fifth of the call's time.
// Emerald Rapids, 2 threads, forward and backward, four alternating processes per build, (B,
// Tq, Tk, Hq = Hk = Hv, A), ms: (8,100,100,128,64) 7.6-11.4 -> 6.5-9.1, (4,200,300,64,32)
// 18.4-19.8 -> 8.8-15.7, (32,20,30,256,128) 5.5-7.2 -> 3.8-6.3, (1,50,50,256,128) 0.78-0.92 ->
// 0.58-0.88; one query, (32,1,30,256,128) 1.5-1.9 -> 1.2-2.0, (1,1,50,256,128) even.
constexpr int64_t kAdditiveQBlock = 16;
// The backward keeps tanh(q_i + k_j) of a block's queries (mq x len x A values) for their
// gradients, the forward their probabilities (mq x len): blocks shrink so that these stay
// within kAdditiveKept values (1 MB of floats), down to one query.
constexpr int64_t kAdditiveKept = int64_t{1} << 18;

// Queries per block, when each keeps `per_query` values.
inline int64_t additive_block(int64_t per_query) {
  return std::clamp<int64_t>(kAdditiveKept / std::max<int64_t>(1, per_query), 1, kAdditiveQBlock);
}

// Additive scores of the queries of sequence b: tanh(pq_i + pk_j) from exp(2 pq_i) and
// exp(2 pk_j) (additive_scores_exp: a product and a reciprocal per value in place of a tanh,
// which took half of a call's time) where the query's row and all the sequence's keys lie within
// kExpRange, so that the products stay normal numbers; else the tanh itself. Near tanh = 0 this
// is accurate to about 1e-7 absolute rather than relative, as the sum pq + pk is. Calls of one
// query a sequence (a decoder's step) take the tanh: each exponential would serve one pair (32
// sequences of 30 keys, A = 128: 1.46-1.79 ms with the tanh, 1.67-1.99 with exponentials). The
// choice depends on the call alone, not on how threads split it, so the backward recomputes
// the forward's scores bit for bit. Emerald Rapids, 2 threads, forward and backward,
// three alternating processes per build, tanh / exponentials, ms: (8,100,100,128,64) 8.6-10.6
// / 4.6-6.5, (4,200,300,64,32) 14.4-19.8 / 7.7-13.1, (32,20,30,256,128) 5.6-6.4 / 4.1-4.6,
// (1,50,50,256,128) 0.77-0.91 / 0.57-0.69, (16,5,1000,128,128) 27.8-29.9 / 21.3-23.1, two
// queries (64,2,30,128,128) 2.41-2.63 / 2.29-2.48.
template <typename T>
class AdditiveRows {
 public:
  static constexpr T kExpRange = std::is_same_v<T, float> ? T(20) : T(150);

  // Keys [0, len) of the sequence (pk_b).
  AdditiveRows(const AttnShape& s, const T* pq, const T* pk_b, const T* u, int64_t len)
      : s_(s), pq_(pq), pk_(pk_b), u_(u), len_(len) {
    if (s.Tq < 2) return;
    ek_ = scratch<T>(3, len * s.H);
    eq_ = scratch<T>(4, s.H);
    keys_in_ = exp_doubled(ek_, pk_b, len * s.H, kExpRange);
  }

  // p[j] = u . tanh(pq_w + pk_j) for query row w (of all B * Tq), keys [0, len); t as in
  // additive_scores.
  void scores(int64_t w, T* p, T* t) const {
    const T* q = pq_ + w * s_.H;
    if (keys_in_ && exp_doubled(eq_, q, s_.H, kExpRange))
      additive_scores_exp(eq_, ek_, s_.H, u_, s_.H, len_, p, t);
    else
      additive_scores(q, pk_, s_.H, u_, s_.H, len_, p, t);
  }

 private:
  const AttnShape& s_;
  const T *pq_, *pk_, *u_;
  int64_t len_;
  T *ek_ = nullptr, *eq_ = nullptr;  // exp(2 pk_j) of the keys, exp(2 pq_w) of the query
  bool keys_in_ = false;
};

template <typename T>
void additive_attention_forward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                const T* v, const int32_t* lengths, T* context, T* lse,
                                T* weights) {
  const int64_t most = additive_block(s.Tk), blocks = (s.Tq + most - 1) / most;
  parallel_for(s.B * blocks, 1, [&](int64_t w0, int64_t w1) {
    T* P = scratch<T>(1, most * s.Tk);  // the block's probabilities, len a row
    // A thread's blocks come sequence by sequence: each sequence's key exponentials once, not
    // once per block (ceil(Tq / 16) times). Emerald Rapids, 2 threads, forward alone, five
    // alternating processes per build, medians, ms: (8,100,100,128,64) 1.26 -> 1.17,
    // (4,200,300,64,32) 2.12 -> 2.01, one block a sequence (32,20,30,256,128) 1.25 -> 1.23.
    std::optional<AdditiveRows<T>> rows;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / blocks, i0 = w % blocks * most;
      const int64_t mq = std::min(most, s.Tq - i0), len = length_of(s, lengths, b);
      if (w == w0 || i0 == 0) rows.emplace(s, pq, pk + b * s.Tk * s.H, u, len);
      for (int64_t i = 0; i < mq; ++i) {
        const int64_t row = b * s.Tq + i0 + i;
        T* p = P + i * len;
        rows->scores(row, p, nullptr);
        const T m = *std::max_element(p, p + len);
        const T sum = exp_sum(p, p, len, m);
        for (int64_t j = 0; j < len; ++j) p[j] /= sum;
        if (lse) lse[row] = m + std::log(sum);
        if (weights) {
          std::memcpy(weights + row * s.Tk, p, len * sizeof(T));
          std::fill(weights + row * s.Tk + len, weights + (row + 1) * s.Tk, T(0));
        }
      }
      gemm<T>(false, false, mq, s.Hv, len, T(1), P, len, v + b * s.Tk * s.Hv, s.Hv, T(0),
              context + (b * s.Tq + i0) * s.Hv, s.Hv);
    }
  });
}

template <typename T>
void additive_attention_backward(const AttnShape& s, const T* pq, const T* pk, const T* u,
                                 const T* v, const int32_t* lengths, const T* lse,
                                 const T* dcontext, T* dpq, T* dpk, T* du, T* dv) {
  // Work splits by sequence; a batch smaller than the thread count, by (sequence, block of
  // queries), each block adding its queries' share of the keys' and values' gradients to rows of
  // its own, summed after in block order. By sequence alone, one sequence's backward ran on one
  // thread: Emerald Rapids, 2 threads, forward and backward, (B, Tq, Tk, Hq = Hk = Hv, A) =
  // (1,50,50,256,128), four alternating processes per build, 0.95-1.08 ms -> 0.67-0.91 ms
  // (torch's explicit ops / seqkern 0.85-1.23x -> 1.04-1.37x); batches of 2 and more unchanged.
  const int64_t threads = get_num_threads();
  const int64_t chunks = s.B < threads ? std::min(s.Tq, (threads + s.B - 1) / s.B) : 1;
  const int64_t items = s.B * chunks, KV = s.Tk * (s.H + s.Hv);
  const int64_t most = additive_block(s.Tk * s.H);
  std::vector<T> du_parts(items * s.H, T(0));  // one row per item, summed in order after
  std::vector<T> kv_parts(chunks > 1 ? items * KV : 0);  // each item's dpk rows, then its dv rows
  parallel_for(items, 1, [&](int64_t w0, int64_t w1) {
    T* t = scratch<T>(0, most * s.Tk * s.H);  // tanh(pq_i + pk_j) of a block's queries
    T* P = scratch<T>(1, most * s.Tk);        // their probabilities, len a row
    T* dP = scratch<T>(2, most * s.Tk);       // and the probabilities' gradients
    for (int64_t item = w0; item < w1; ++item) {
      const int64_t b = item / chunks, c = item % chunks, len = length_of(s, lengths, b);
      const int64_t i0 = s.Tq * c / chunks, i1 = s.Tq * (c + 1) / chunks;
      const AdditiveRows<T> rows(s, pq, pk + b * s.Tk * s.H, u, len);
      const T* v_b = v + b * s.Tk * s.Hv;
      T* du_b = du_parts.data() + item * s.H;
      T* dpk_b = chunks > 1 ? kv_parts.data() + item * KV : dpk + b * s.Tk * s.H;
      T* dv_b = chunks > 1 ? dpk_b + s.Tk * s.H : dv + b * s.Tk * s.Hv;
      std::fill(dpk_b, dpk_b + s.Tk * s.H, T(0));
      std::fill(dv_b, dv_b + s.Tk * s.Hv, T(0));
      for (int64_t i_b = i0, mq; i_b < i1; i_b += mq) {
        mq = std::min(most, i1 - i_b);
        const int64_t w = b * s.Tq + i_b;  // the block's first row
        const T* dO = dcontext + w * s.Hv;
        for (int64_t i = 0; i < mq; ++i) {
          T* p = P + i * len;
          rows.scores(w + i, p, t + i * len * s.H);
          exp_sum(p, p, len, lse[w + i]);  // the probabilities (their sum is not needed)
        }
        gemm<T>(false, true, mq, len, s.Hv, T(1), dO, s.Hv, v_b, s.Hv, T(0), dP, len);
        gemm<T>(true, false, len, s.Hv, mq, T(1), P, len, dO, s.Hv, T(1), dv_b, s.Hv);
        for (int64_t i = 0; i < mq; ++i) {
          // D = sum_j P_ij dP_ij, which is dO_i . context_i, summed from the same dP as ds: a
          // single key's ds is then exactly 0, as its score's gradient is (with D = dO . O
          // summed in another order than dP's GEMM, 300 queries on one key gave w_k a
          // gradient of 1e-4 where the twin's is 0)
          const T D = dot(P + i * len, dP + i * len, len);
          T* dpq_i = dpq + (w + i) * s.H;
          std::fill(dpq_i, dpq_i + s.H, T(0));
          for (int64_t j = 0; j < len; ++j) {
            const T ds = P[i * len + j] * (dP[i * len + j] - D);
            additive_grad(ds, t + (i * len + j) * s.H, u, s.H, du_b, dpq_i, dpk_b + j * s.H);
          }
        }
      }
    }
  });
  if (chunks > 1)  // dpk, dv = their blocks' rows summed in block order, rows split between threads
    parallel_for(s.B * s.Tk, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / s.Tk, j = r % s.Tk;
        const T* part = kv_parts.data() + b * chunks * KV;
        T* k_out = dpk + r * s.H;
        T* v_out = dv + r * s.Hv;
        std::copy_n(part + j * s.H, s.H, k_out);
        std::copy_n(part + s.Tk * s.H + j * s.Hv, s.Hv, v_out);
        for (int64_t c = 1; c < chunks; ++c) {
          axpy(T(1), part + c * KV + j * s.H, k_out, s.H);
          axpy(T(1), part + c * KV + s.Tk * s.H + j * s.Hv, v_out, s.Hv);
        }
      }
    });
  std::fill(du, du + s.H, T(0));
  for (int64_t item = 0; item < items; ++item)
    for (int64_t a = 0; a < s.H; ++a) du[a] += du_parts[item * s.H + a];
}

#define SEQKERN_ATTENTION(T)                                                                   \
  template void attention_forward<T>(const AttnShape&, const T*, const T*, const T*,           \
                                     const int32_t*, T, T*, T*, T*);                           \
  template void attention_backward<T>(const AttnShape&, const T*, const T*, const T*,          \
                                      const int32_t*, T, const T*, const T*, const T*,         \
                                      const T*, T*, T*, T*);                                   \
  template void additive_attention_forward<T>(const AttnShape&, const T*, const T*, const T*,  \
                                              const T*, const int32_t*, T*, T*, T*);           \
  template void additive_attention_backward<T>(const AttnShape&, const T*, const T*, const T*, \
                                               const T*, const int32_t*, const T*, const T*,   \
                                               T*, T*, T*, T*);
SEQKERN_ATTENTION(float)
SEQKERN_ATTENTION(double)
#undef SEQKERN_ATTENTION

}  // namespace seqkern
