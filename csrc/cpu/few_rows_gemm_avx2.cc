// Products of a few rows, C (M, N) = alpha * A (M, K) @ op(B) + beta * C with M up to 8 (see
// few_rows_gemm.h), reading B where it lies (AVX2/FMA; built with -mavx2 -mfma). BLAS packs B
// before a GEMM even for two rows, so a product of 2-4 rows took 3.5-5x as long as one row's
// GEMV, which streams B once (Zen 3, 2 threads, B (2600, 650): 1 row 0.11 ms, 2 rows 0.40, 3
// 0.57, 4 0.37): a decoder's step in beam search, or a batch of a few sequences generating,
// pays that at every step. Here each row of A meets B as B streams by, so a product costs
// about one pass over B: paired against BLAS, B (N, K): one row 1.0-1.13x, 2 rows 3.1-4.3x, 4
// rows 1.6-2.1x, 5-8 rows 1.2-2.8x; B (K, N): 2 rows 2.5x, 4 rows 1.1x.
//
// B stored (N, K) (trans_b): MR x NB dot products at once (rows of A by rows of B), 8 lanes of k
// each, reduced across lanes at the end; MR * NB accumulators, 5-8, hide the FMA latency. B
// stored (K, N): rows of B streamed into sums in L1 (axpy_rows), up to four rows of A.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "avx2_lanes.h"
#include "few_rows_gemm.h"
#include "packed_gemm.h"  // CacheLineAllocator

namespace seqkern::avx2 {

namespace {

// The eight lane sums of v[0..8), in that order, as one vector.
inline __m256 lane_sums(const __m256 v[8]) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

inline void store(float* c, float sum, float alpha, float beta) {
  *c = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c;
}

// Where a product's B (N, K) is read from, as its size makes likely: a thread's columns up to
// kDotCachedBytes in cache; more, but B in all under kFromMemoryBytes, from L3; else from memory.
enum class Source { cache, l3, memory };

// A thread's columns of B (N, K) up to which dot_block takes them as cached (2 rows, Zen 4, one
// core, loads held against folded: B of 8 MB 1.16-1.39x, 25 MB 0.93-0.97x).
constexpr int64_t kDotCachedBytes = int64_t{4} << 20;

// C[0..MR) x columns [n, n + NB) from rows n.. of B (N, K): C[m][n + j] = A[m] . B[n + j].
template <int MR, int NB, Source kFrom>
void dot_block(int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
               float beta, float* C, int64_t ldc) {
  static_assert(MR * NB <= 8, "accumulators");
  __m256 acc[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    // B cached, each vector held in a register once loaded (empty asm: no instruction): GCC
    // otherwise folds every load of B (of A, for NB 2) into each FMA that uses it, loading it
    // MR (NB) times, and the blocks of 2-4 rows are load-bound (Zen 4, one core, B (2000, 256),
    // paired: 2 rows 1.25x, 4 rows 1.08x; (500, 512) 3 rows 1.15x). Past the cache the folded
    // loads went 3-7% faster (2 rows, B of 80 MB, side by side): fewer instructions, so the
    // core looks further ahead for the next lines of B.
    __m256 b[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      b[j] = _mm256_loadu_ps(B + j * ldb + k);
      if constexpr (kFrom == Source::cache && MR > 1) asm("" : "+x"(b[j]));
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      __m256 a = _mm256_loadu_ps(A + m * lda + k);
      if constexpr (kFrom == Source::cache && NB > 1) asm("" : "+x"(a));
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[m * NB + j] = _mm256_fmadd_ps(a, b[j], acc[m * NB + j]);
    }
  }
  if (k < K) {
    const __m256i mask = first_lanes(K - k);
    __m256 b[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) b[j] = _mm256_maskload_ps(B + j * ldb + k, mask);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m256 a = _mm256_maskload_ps(A + m * lda + k, mask);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[m * NB + j] = _mm256_fmadd_ps(a, b[j], acc[m * NB + j]);
    }
  }
  alignas(32) float sums[8];
  _mm256_store_ps(sums, lane_sums(acc));
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) store(C + m * ldc + j, sums[m * NB + j], alpha, beta);
}

// Columns [n0, n1) for B stored (N, K): NB rows of B at a time, then one by one. From memory
// one by one throughout: each row whole before the next, one stream, where side by side (a
// vector of each in turn) they ran at half its speed. From L3 side by side is faster: there a
// row's chain of FMAs, one after another, limits one row at a time. A row's sum takes the same
// FMAs in the same order, and its lanes the same tree, either way.
template <int MR, Source kFrom>
void dot_rows(int64_t n0, int64_t n1, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int NB = kFrom == Source::memory ? 1 : 8 / MR;
  int64_t n = n0;
  for (; n + NB <= n1; n += NB)
    dot_block<MR, NB, kFrom>(K, alpha, A, lda, B + n * ldb, ldb, beta, C + n, ldc);
  for (; n < n1; ++n)
    dot_block<MR, 1, kFrom>(K, alpha, A, lda, B + n * ldb, ldb, beta, C + n, ldc);
}

template <Source kFrom>
void dot_rows(int64_t M, int64_t n0, int64_t n1, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  switch (M) {
    case 1: dot_rows<1, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 2: dot_rows<2, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 3: dot_rows<3, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 4: dot_rows<4, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 5: dot_rows<5, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 6: dot_rows<6, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 7: dot_rows<7, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 8: dot_rows<8, kFrom>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    default: break;
  }
}

// Columns [n0, n1) for B stored (K, N): B streams row by row, KR rows at a time, into sums for
// kChunk columns of each row of A kept in L1; each sum takes its k in order (one FMA after
// another), so a row's values do not depend on MR. (Sums held in registers instead, k inner,
// read B down its columns, a page per k: 2-3x slower than BLAS's GEMV once B left the cache.)
template <int MR>
void axpy_rows(int64_t n0, int64_t n1, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int KR = MR == 1 ? 8 : MR == 2 ? 4 : 2;  // broadcasts of A: MR * KR registers
  // 16 KB of sums, each row's on a 32-byte boundary (the aligned loads and stores below). MR = 3
  // took 1365 columns, so rows 1 and 2 started mid-vector: GCC's code happened to run (its loads
  // folded into the FMAs, unaligned stores), clang's faulted in an aligned move.
  constexpr int64_t kChunk = 4096 / MR / 8 * 8;
  alignas(32) float acc[MR][kChunk];
  for (int64_t c0 = n0; c0 < n1; c0 += kChunk) {
    const int64_t cols = std::min(kChunk, n1 - c0), vecs = (cols + 7) / 8;
    const __m256i tail = first_lanes(cols - 8 * (vecs - 1));
    const auto load_b = [&](const float* row, int64_t v) {
      return v < vecs - 1 ? _mm256_loadu_ps(row + 8 * v) : _mm256_maskload_ps(row + 8 * v, tail);
    };
    for (int m = 0; m < MR; ++m)
      for (int64_t v = 0; v < vecs; ++v) _mm256_store_ps(acc[m] + 8 * v, _mm256_setzero_ps());
    const float* b = B + c0;
    int64_t k = 0;
    for (; k + KR <= K; k += KR) {
      __m256 a[MR][KR];
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
        for (int r = 0; r < KR; ++r) a[m][r] = _mm256_broadcast_ss(A + m * lda + k + r);
      for (int64_t v = 0; v < vecs; ++v) {
        __m256 sum[MR];
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) sum[m] = _mm256_load_ps(acc[m] + 8 * v);
#pragma GCC unroll 8
        for (int r = 0; r < KR; ++r) {
          __m256 bv = load_b(b + (k + r) * ldb, v);
          // held in a register (empty asm), not loaded again for each row: 2 rows 1.15-1.33x
          // with B in cache, 1.03x from memory (Zen 4, one core, paired). GCC's code for 3 and
          // 4 rows ran the same either way and stays.
          if constexpr (MR == 2) asm("" : "+x"(bv));
#pragma GCC unroll 8
          for (int m = 0; m < MR; ++m) sum[m] = _mm256_fmadd_ps(a[m][r], bv, sum[m]);
        }
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) _mm256_store_ps(acc[m] + 8 * v, sum[m]);
      }
    }
    for (; k < K; ++k)
      for (int64_t v = 0; v < vecs; ++v) {
        const __m256 bv = load_b(b + k * ldb, v);
        for (int m = 0; m < MR; ++m)
          _mm256_store_ps(acc[m] + 8 * v, _mm256_fmadd_ps(_mm256_broadcast_ss(A + m * lda + k), bv,
                                                          _mm256_load_ps(acc[m] + 8 * v)));
      }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int m = 0; m < MR; ++m)
      for (int64_t v = 0; v < vecs; ++v) {
        const __m256i mask = v < vecs - 1 ? first_lanes(8) : tail;
        float* c = C + m * ldc + c0 + 8 * v;
        __m256 r = _mm256_mul_ps(va, _mm256_load_ps(acc[m] + 8 * v));
        if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, mask), r);
        _mm256_maskstore_ps(c, mask, r);
      }
  }
}

}  // namespace

void few_rows_gemm(bool trans_b, int64_t M, int64_t n0, int64_t n1, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc, bool from_memory) {
  if (trans_b) {  // every row in one pass over B
    // Rows of A copied to 64-byte boundaries where one starts off a 32-byte one: every block
    // reloads them from L1, and a row 16 bytes off (as NumPy's arrays may start, or rows of
    // K = 650) split every other load across two lines. Zen 4, one core, A 16 bytes off, paired
    // against A read in place: 8 rows, B (4000, 256) 1.34x, (300, 256) 1.32x.
    if (M > 1 && (reinterpret_cast<uintptr_t>(A) % 32 != 0 || lda % 8 != 0)) {
      thread_local std::vector<float, CacheLineAllocator<float>> rows;
      const int64_t lda_c = (K + 15) / 16 * 16;
      rows.resize(M * lda_c);
      for (int64_t m = 0; m < M; ++m) std::copy(A + m * lda, A + m * lda + K, &rows[m * lda_c]);
      A = rows.data();
      lda = lda_c;
    }
    if ((n1 - n0) * ldb * int64_t{sizeof(float)} <= kDotCachedBytes)
      dot_rows<Source::cache>(M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (from_memory)
      dot_rows<Source::memory>(M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
      dot_rows<Source::l3>(M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  switch (M) {  // B (K, N): every row in one pass over B, up to 4
    case 1: axpy_rows<1>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 2: axpy_rows<2>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 3: axpy_rows<3>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 4: axpy_rows<4>(n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    default: break;
  }
}

}  // namespace seqkern::avx2
