// AVX2/FMA micro-kernels of PackedMatrix<float>, and the packing that the AVX-512 ones share; built
// with -mavx2 -mfma, called only at SIMD level avx2 or avx512 (seqkern/simd.h).
//
// op(W) (K, N) is stored in panels of 16 columns, one after the other, each k by k (row k of panel
// p at p*K*16 + k*16), zero-padded past N. Each panel is one sequential stream: interleaving groups
// of four panels k by k (one stream per group) measured 18% slower at 32 rows, K = 512, N = 2048
// with both cores busy, 20% slower at 8 rows, and no faster at one row. A block of MR rows times NP
// adjacent panels keeps 2*MR*NP accumulators in registers; for each k it loads 2*NP vectors and
// broadcasts MR values of A. Small batches take wide blocks (M = 1: four panels at once) so that
// enough independent FMA chains hide the FMA latency; larger ones take 6 rows x 1 panel, the panel
// slice staying in L1 across row blocks. k is summed in slices of kDepth, in order, on every path,
// so C does not depend on M or on the blocking.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "avx2_lanes.h"
#include "packed_gemm.h"

namespace seqkern::avx2 {

namespace {

constexpr int64_t kPanel = kPanelColumns;

// C[0..MR) x NP adjacent panels (n_cols columns of C from the first panel on): kc values of k
// from A and from the panels.
// A is read at A[r*lda + k], or at A[k*MR + r] when packed (lda unused): a packed block of A
// is one sequential stream instead of MR.
template <int MR, int NP, bool kPackedA = false>
void block(int64_t kc, const float* A, int64_t lda, Panels panels, float* C, int64_t ldc,
           int64_t n_cols, bool accumulate) {
  // Every loop over r, p and h is unrolled, so that acc stays in registers: left to itself, GCC
  // kept the M = 1 block's accumulators on the stack, a load and a store around every FMA (one
  // core, W in L1: 27 against 80 GFLOP/s).
  __m256 acc[MR][2 * NP];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int j = 0; j < 2 * NP; ++j) acc[r][j] = _mm256_setzero_ps();
  // C's tile is read (or written) after the k loop, and a step's pre-activations (written up
  // front for every step, or by the step's projection over all of the slice's rows) have often
  // left the cache by then: fetch its lines now, behind the FMAs. Paired, Zen 3, 2 threads:
  // LSTM (100,64,512,512) inference 1.06-1.12x, training 0.98-1.06x; (100,64,256,256) 1.07-1.08x
  // and 1.02-1.04x; the GRU and smaller layers within the noise.
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      const float* c = C + r * ldc + p * kPanel;
      _mm_prefetch(reinterpret_cast<const char*>(c), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + kPanel - 1), _MM_HINT_T0);  // if it straddles
    }
  for (int64_t k = 0; k < kc; ++k) {
    const float* b = panels.data + k * kPanel;
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      __m256 b0 = _mm256_loadu_ps(b + p * panels.stride);
      __m256 b1 = _mm256_loadu_ps(b + p * panels.stride + 8);
      // Held in registers in the 2-row block, as avx512's block holds them: GCC folded its loads
      // into its FMAs, each panel row read twice. One core, Zen 4, 512 KB of W in L2, paired:
      // 84.1 -> 99.8 GFLOP/s. (3 rows keep GCC's choice: held, with the accumulators and a
      // broadcast they need 17 of the 16 registers and spill, 112.7 -> 50.2. From 4 rows GCC
      // holds them itself.)
      if constexpr (MR == 2) asm("" : "+v"(b0), "+v"(b1));
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m256 a = _mm256_broadcast_ss(kPackedA ? A + k * MR + r : A + r * lda + k);
        acc[r][2 * p] = _mm256_fmadd_ps(a, b0, acc[r][2 * p]);
        acc[r][2 * p + 1] = _mm256_fmadd_ps(a, b1, acc[r][2 * p + 1]);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    const int64_t n = n_cols - p * kPanel;  // valid columns from this panel on
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const int64_t col = p * kPanel + 8 * h;
      if (n >= kPanel) {
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          float* c = C + r * ldc + col;
          __m256 v = acc[r][2 * p + h];
          if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(c));
          _mm256_storeu_ps(c, v);
        }
      } else {
        const __m256i mask = first_lanes(n - 8 * h);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          float* c = C + r * ldc + col;
          __m256 v = acc[r][2 * p + h];
          if (accumulate) v = _mm256_add_ps(v, _mm256_maskload_ps(c, mask));
          _mm256_maskstore_ps(c, mask, v);
        }
      }
    }
  }
}

// The block with A read in place, for panel_rows.
template <int MR, int NP>
struct InPlaceA {
  static void run(int64_t kc, const float* A, int64_t lda, Panels panels, float* C, int64_t ldc,
                  int64_t n, bool accumulate) {
    block<MR, NP>(kc, A, lda, panels, C, ldc, n, accumulate);
  }
};

// Rows [0, m) with m < 6: the widest block whose accumulators fit in registers.
void few_rows(int64_t m, int64_t K, int64_t N, const float* A, int64_t lda, const float* packed,
              float* C, int64_t ldc, bool accumulate, bool descending) {
  switch (m) {
    case 1: panel_rows<InPlaceA, 1, 4>(K, N, A, lda, packed, C, ldc, accumulate, descending); break;
    case 2: panel_rows<InPlaceA, 2, 2>(K, N, A, lda, packed, C, ldc, accumulate, descending); break;
    case 3: panel_rows<InPlaceA, 3, 2>(K, N, A, lda, packed, C, ldc, accumulate, descending); break;
    case 4: panel_rows<InPlaceA, 4, 1>(K, N, A, lda, packed, C, ldc, accumulate, descending); break;
    case 5: panel_rows<InPlaceA, 5, 1>(K, N, A, lda, packed, C, ldc, accumulate, descending); break;
    default: break;
  }
}

}  // namespace

// Panels [p0, p1) of op(W), as block q of `layout` (in lines of one panel row) from out on.
// Reads run along rows of W, as stored: for trans, 8x8 tiles are
// transposed in registers so that both the reads and the writes stay sequential; otherwise rows
// of W are dealt out to the panels 16 at a time, so that each panel is written 1 KB at a stretch
// while those rows stay in L1. (One core, 1 MB in cache: one panel at a time down all K rows of W
// 105 us; each row dealt out to every panel at once 57 us, 64 write streams; 16 rows at once
// 31 us.)
void pack_panels_f32(const float* w, int64_t ldw, bool trans, int64_t K, int64_t N, int64_t p0,
                     int64_t p1, float* out, PanelLayout layout, int64_t q) {
  const int64_t ld = layout.row() * kPanel;  // from a panel row to the next
  if (!trans) {  // row k of W holds row k of every panel, 16 values each
    constexpr int64_t kRows = 16;
    for (int64_t k0 = 0; k0 < K; k0 += kRows)
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t cols = std::min<int64_t>(kPanel, N - p * kPanel);
        const __m256i m0 = first_lanes(cols), m1 = first_lanes(cols - 8);
        for (int64_t k = k0; k < std::min(K, k0 + kRows); ++k) {
          const float* src = w + k * ldw + p * kPanel;
          float* dst = out + layout.offset(q, p, k) * kPanel;
          _mm256_storeu_ps(dst, _mm256_maskload_ps(src, m0));
          _mm256_storeu_ps(dst + 8, _mm256_maskload_ps(src + 8, m1));
        }
      }
    return;
  }
  for (int64_t p = p0; p < p1; ++p) {
    float* panel = out + layout.offset(q, p, 0) * kPanel;
    const int64_t n0 = p * kPanel, cols = std::min<int64_t>(kPanel, N - n0);
    int64_t k = 0;
    if (cols == kPanel) {
      for (; k + 8 <= K; k += 8)
        for (int h = 0; h < 2; ++h) {  // rows n0+8h.. of W, columns k..k+7 -> 8 panel rows
          __m256 r[8];
          for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(w + (n0 + 8 * h + i) * ldw + k);
          __m256 t[8], u[8];
          for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
          }
          for (int i = 0; i < 8; i += 4) {
            u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
            u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
            u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
            u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
          }
          // u[0..3]: columns k+{0,1,2,3} (lanes 0-3) and k+{4,5,6,7} (lanes 4-7) of rows 0-3,
          // u[4..7] the same for rows 4-7
          for (int i = 0; i < 4; ++i) {
            _mm256_storeu_ps(panel + (k + i) * ld + 8 * h,
                             _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
            _mm256_storeu_ps(panel + (k + 4 + i) * ld + 8 * h,
                             _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
          }
        }
    }
    for (; k < K; ++k)
      for (int64_t c = 0; c < kPanel; ++c)
        panel[k * ld + c] = c < cols ? w[(n0 + c) * ldw + k] : 0.0f;
  }
}

int64_t packed_size_f32(int64_t K, int64_t N) { return (N + kPanel - 1) / kPanel * K * kPanel; }

// Rows of the next block of A when `left` rows remain (M >= 6 in all): 6 at a time, but no
// block of 1 or 2 at the end, whose 2 or 4 accumulators leave the FMA units idle half the time:
// 7 = 4 + 3, 8 = 4 + 4, 9 = 5 + 4. (One core, K = 256, N = 1024: +8% at M = 14, +5% at 32.)
inline int64_t block_rows(int64_t left) {
  if (left >= 7 && left <= 9) return left - 4 > 4 ? 5 : 4;
  return std::min<int64_t>(6, left);
}

// Columns [k0, k0 + kc) of rows [0, M) of A, packed block after block of rows (block_rows(rows
// left) each) as [k][mr]: each block one sequential stream for the micro-kernels.
inline void pack_a_slice(const float* A, int64_t lda, int64_t M, int64_t k0, int64_t kc,
                         float* out) {
  for (int64_t i = 0, mr; i < M; i += mr) {
    mr = block_rows(M - i);
    float* dst = out + i * kc;
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = 0; r < mr; ++r) dst[k * mr + r] = A[(i + r) * lda + k0 + k];
  }
}

// The next panel's slice is prefetched, a share before each row block, when a product of this
// many rows or more reads more than kPrefetchBytes of weights: those come from L3 or memory,
// and the first row block over each slice would otherwise wait for them. Fewer rows leave too
// little work per slice to hide the prefetches behind, and smaller weights stay in L3 where the
// hardware's own prefetch keeps up. One core, two builds alternating (without / with):
// (M, K, N) = (64, 1024, 4096) 1.26x, (32, 1024, 4096) 1.18x, (14, 1024, 4096) 1.13x,
// (16, 650, 2600) 1.17x, (20, 650, 2600) 1.11x; but (10, 650, 2600) 0.90x, (12, 650, 2600)
// 0.95x, (16, 512, 2048) 0.90x and (32, 512, 2048) 1.00x. Whole LSTM layers on 2 threads
// (benchmarks/ab_builds.py, paired, Zen 3): (20,128,1024,1024) 1.08x inference, 1.06x training;
// (35,64,650,650) 1.20x and 1.05x. The language model's (35,20,650,650), 10 rows a thread,
// keeps its path. (The AVX-512 kernels fetch the next pair of panels into L2 instead:
// packed_gemm_avx512.cc, kPrefetchBytes.)
constexpr int64_t kPrefetchRows = 14;
constexpr int64_t kPrefetchBytes = 4 << 20;

// packed: from a panel boundary on; C's columns [0, N) match it (in each block).
void packed_gemm_f32(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                     const float* packed, float* C, int64_t ldc, bool accumulate,
                     ColumnBlocks blocks) {
  if (M < 6) {  // W read once per row block: the order of its panels can matter (StepSlice)
    for (int64_t i = 0; i < blocks.count; ++i) {
      const int64_t q = blocks.descending ? blocks.count - 1 - i : i;
      few_rows(M, K, N, A, lda, packed + q * blocks.packed_stride, C + q * blocks.c_stride, ldc,
               accumulate, blocks.descending);
    }
    return;
  }
  // Slice by slice of k: the slice of A is packed into 6-row blocks ([k][6], one stream each),
  // once for every column block, then panel by panel, so each panel slice stays in L1 while
  // every block of A passes over it.
  thread_local std::vector<float> a_packed;
  a_packed.resize(M * std::min(K, kDepth));
  const int64_t panels = (N + kPanel - 1) / kPanel, count = blocks.count * panels;
  const bool prefetch = M >= kPrefetchRows &&
                        K * N * blocks.count * static_cast<int64_t>(sizeof(float)) > kPrefetchBytes;
  const auto slice_at = [&](int64_t pq, int64_t k0) {
    return panels_at(packed + pq / panels * blocks.packed_stride, K, pq % panels, k0);
  };
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t kc = std::min(kDepth, K - k0);
    pack_a_slice(A, lda, M, k0, kc, a_packed.data());
    const bool acc = accumulate || k0 > 0;
    for (int64_t pq = 0; pq < count; ++pq) {
      const int64_t q = pq / panels, p = pq % panels;
      const Panels panel = slice_at(pq, k0);
      // the next slice (kc rows of 64 bytes) in shares before each block; none after the last
      const float* next = prefetch && pq + 1 < count ? slice_at(pq + 1, k0).data : nullptr;
      float* c = C + q * blocks.c_stride + p * kPanel;
      const int64_t n = N - p * kPanel;
      for (int64_t i = 0, mr, fetched = 0; i < M; i += mr) {
        mr = block_rows(M - i);
        if (next)
          for (const int64_t upto = kc * (i + mr) / M; fetched < upto; ++fetched)
            _mm_prefetch(reinterpret_cast<const char*>(next + fetched * kPanel), _MM_HINT_T0);
        const float* a = a_packed.data() + i * kc;
        float* ci = c + i * ldc;
        switch (mr) {
          case 6: block<6, 1, true>(kc, a, 0, panel, ci, ldc, n, acc); break;
          case 5: block<5, 1, true>(kc, a, 0, panel, ci, ldc, n, acc); break;
          case 4: block<4, 1, true>(kc, a, 0, panel, ci, ldc, n, acc); break;
          case 3: block<3, 1, true>(kc, a, 0, panel, ci, ldc, n, acc); break;
          case 2: block<2, 1, true>(kc, a, 0, panel, ci, ldc, n, acc); break;
          default: block<1, 1, true>(kc, a, 0, panel, ci, ldc, n, acc); break;
        }
      }
    }
  }
}

}  // namespace seqkern::avx2
