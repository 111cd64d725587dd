// AVX-512 micro-kernels of PackedMatrix<float>; built with AVX-512 F/BW/DQ/VL and FMA, called only
// at SIMD level avx512 (seqkern/simd.h). They read the panels that avx2::pack_panels_f32 or this
// file's copy of it writes (packed_gemm_avx2.cc says how they are laid out): a panel row of
// 16 columns is one 512-bit vector. The 32 vector registers hold blocks of up to 12 rows x 2 panels
// (24 accumulators): per value of k, 2 loads of W and 12 broadcasts of A feed 24 FMAs, where the
// AVX2 block of 6 rows x 1 panel needs 8 loads for 12 FMAs of half the width. k is summed in slices
// of kDepth, in order, on every path, so C does not depend on M or on the blocking (the sums are
// those of the AVX2 kernels, bit for bit).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "avx512_tiles.h"
#include "packed_gemm.h"
#include "rider_avx512.h"

namespace seqkern::avx512 {

namespace {

using avx512_tiles::lane_mask;
using avx512_tiles::store_tile;

constexpr int64_t kPanel = kPanelColumns;

// C[0..MR) x NP adjacent panels (n_cols columns of C from the first panel on): kc values of k
// from A and from the panels. A is read at A[r*lda + k], or at A[k*MR + r] when packed. A
// panel's rows lie kPanel values apart, or panels.row when kGrouped. kPrefetch: the same rows
// of NP panels from `next` on are fetched into L2 as the loop goes (panel_pairs).
template <int MR, int NP, bool kPackedA = false, bool kPrefetch = false, bool kGrouped = false>
void block(int64_t kc, const float* A, int64_t lda, Panels panels, float* C, int64_t ldc,
           int64_t n_cols, bool accumulate, const float* next = nullptr) {
  const int64_t row = kGrouped ? panels.row : kPanel;
  __m512 acc[MR][NP];  // every loop over r and p is unrolled, so acc stays in registers
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const float* b = panels.data + k * row;
    if constexpr (kPrefetch)
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p)
        _mm_prefetch(reinterpret_cast<const char*>(next + k * row + p * panels.stride),
                     _MM_HINT_T1);
    __m512 w[NP];
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) w[p] = _mm512_loadu_ps(b + p * panels.stride);
    // Held in registers, each load serving its MR FMAs: GCC folded the loads of 2 and 3 rows'
    // blocks into their FMAs, each panel row read from L1 once per row, and Zen 4, which loads
    // one 64-byte vector a cycle, ran out of loads before FMAs. One core, 512 KB of W in L2,
    // paired: 2 rows 96.6 -> 107.6 GFLOP/s, 3 rows 95.1 -> 112.9 (its 33 registers spill one
    // accumulator, to L1, which costs less than the loads did); the same bits. (Blocks of 4 rows
    // and more hold them without being told.)
    if constexpr (MR == 2 || MR == 3)
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) asm("" : "+v"(w[p]));
    // Row r's value of k, stepped row by row from A + k. Written A[r * lda + k], GCC kept one
    // pointer per row, and with 12 rows spilled three of them at every k (stepped, it keeps four,
    // with lda and 3 lda as index registers): 12-row blocks, one core, panels in L1, 111 against
    // 117 GFLOP/s on Zen 4; LSTM (100,64,256,256) inference 1.04x, two builds paired.
    const float* a_k = A + k;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(kPackedA ? A[k * MR + r] : *a_k);
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_fmadd_ps(a, w[p], acc[r][p]);
      if (r + 1 < MR) a_k += lda;  // (never past A's last row)
    }
  }
  store_tile(acc, C, ldc, n_cols, accumulate);
}

// The block with A read in place, for panel_rows.
template <int MR, int NP>
struct InPlaceA {
  static void run(int64_t kc, const float* A, int64_t lda, Panels panels, float* C, int64_t ldc,
                  int64_t n, bool accumulate) {
    block<MR, NP>(kc, A, lda, panels, C, ldc, n, accumulate);
  }
};

// The block of a few rows on grouped panels, for grouped_rows_f32.
template <int MR, int NP>
struct GroupedRows {
  static void run(int64_t kc, const float* a, int64_t lda, Panels panels, float* c, int64_t ldc,
                  int64_t n, bool acc) {
    block<MR, NP, false, false, true>(kc, a, lda, panels, c, ldc, n, acc);
  }
};

// Below this many rows, each row block runs down all the panels with A read in place. 8 rows go
// 3 panels at a time (24 accumulators): in C++, LSTM (50,8,256,256) inference took 2.23-2.35 ms
// against 2.37-2.51 with A packed for 8 x 2 blocks (best of 5 calls, 3 alternating runs each).
constexpr int64_t kPackedRows = 9;

// Rows [0, m), m < kPackedRows: the widest block whose accumulators fit in registers, with at
// least 8 of them (the FMA latency times two units on Intel's cores).
void few_rows(int64_t m, int64_t K, int64_t N, const float* A, int64_t lda, const float* packed,
              float* C, int64_t ldc, bool accumulate, bool descending) {
  const bool d = descending;
  switch (m) {
    case 1: panel_rows<InPlaceA, 1, 8>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    case 2: panel_rows<InPlaceA, 2, 6>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    case 3: panel_rows<InPlaceA, 3, 4>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    case 4: panel_rows<InPlaceA, 4, 4>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    case 5: panel_rows<InPlaceA, 5, 4>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    case 6: panel_rows<InPlaceA, 6, 3>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    case 7: panel_rows<InPlaceA, 7, 3>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    case 8: panel_rows<InPlaceA, 8, 3>(K, N, A, lda, packed, C, ldc, accumulate, d); break;
    default: break;
  }
}

// Rows of the next block of A when `left` rows remain (M >= kPackedRows in all): 12 at a time,
// two nearly equal blocks for 13-19 (never a block under 6 rows, whose 12 accumulators would
// leave the FMA units waiting).
inline int64_t block_rows(int64_t left) {
  if (left <= 12) return left;
  if (left < 20) return (left + 1) / 2;
  return 12;
}

// One row block of `mr` rows (6..12) against NP panels: A packed ([k][mr], lda unused) or read
// in place (row stride lda); kPrefetch as block's.
template <int NP, bool kPackedA, bool kPrefetch = false>
void packed_block(int64_t mr, int64_t kc, const float* a, int64_t lda, Panels panel, float* c,
                  int64_t ldc, int64_t n, bool acc, const float* next = nullptr) {
  switch (mr) {
    case 12: block<12, NP, kPackedA, kPrefetch>(kc, a, lda, panel, c, ldc, n, acc, next); break;
    case 11: block<11, NP, kPackedA, kPrefetch>(kc, a, lda, panel, c, ldc, n, acc, next); break;
    case 10: block<10, NP, kPackedA, kPrefetch>(kc, a, lda, panel, c, ldc, n, acc, next); break;
    case 9: block<9, NP, kPackedA, kPrefetch>(kc, a, lda, panel, c, ldc, n, acc, next); break;
    case 8: block<8, NP, kPackedA, kPrefetch>(kc, a, lda, panel, c, ldc, n, acc, next); break;
    case 7: block<7, NP, kPackedA, kPrefetch>(kc, a, lda, panel, c, ldc, n, acc, next); break;
    default: block<6, NP, kPackedA, kPrefetch>(kc, a, lda, panel, c, ldc, n, acc, next); break;
  }
}

// Rows of A a multiple of this far apart crowd L1's sets (64 sets of 64-byte lines, so 4 KB
// apart means the same set, 2 KB apart one of two): a block's 12 rows read in place would
// evict each other and the panels' lines, so they are packed. Rows 4 KB apart, LSTM
// (20,128,1024,1024) read in place on Zen 5: 1.05x slower in inference, 1.02x in training.
// 2 KB apart (H = 512) was even there (12-way L1), and on Zen 4 (8-way), packed / in place per
// call, (100,64,512,512) inference: LSTM 0.997x, eval layer 1.006x, training forward 0.987x, the
// GRU 1.004x, the RNN 1.019x; so both stay packed.
constexpr int64_t kAliasingBytes = 2048;

// Columns [k0, k0 + kc) of rows [0, M) of A packed block after block (block_rows) as [k][mr],
// 16 values of k at a time: a block's rows (at most 12, zeros beyond) transposed 16 x 16 in
// registers, then each k's mr values stored with a mask. Against scalar copies (the AVX2
// kernels' pack_a_slice), paired on Zen 5 in both orders: training LSTM (100,64,256,256)
// 1.01-1.02x, (200,32,128,128) 1.01-1.03x, GRU (100,64,512,512) 1.01-1.03x (the backward's dg
// rows, 4H apart, are packed); inference within 1%.
void pack_a_rows(const float* A, int64_t lda, int64_t M, int64_t k0, int64_t kc, float* out) {
  for (int64_t i = 0, mr; i < M; i += mr) {
    mr = block_rows(M - i);
    const __mmask16 keep = lane_mask(mr);
    float* dst = out + i * kc;
    for (int64_t k = 0; k < kc; k += kPanel) {
      const int64_t n = std::min<int64_t>(kPanel, kc - k);
      const __mmask16 m = lane_mask(n);
      __m512 r[16], cols[16];  // cols[c]: column k + c of the 16 rows
      for (int j = 0; j < 16; ++j)
        r[j] = j < mr ? _mm512_maskz_loadu_ps(m, A + (i + j) * lda + k0 + k) : _mm512_setzero_ps();
      avx512_tiles::transpose16(r, cols);
#pragma GCC unroll 16
      for (int c = 0; c < 16; ++c)
        if (c < n) _mm512_mask_storeu_ps(dst + (k + c) * mr, keep, cols[c]);
    }
  }
}

// The same layout from A stored (K, M): a block's rows lie side by side in A's rows.
void pack_a_columns(const float* A, int64_t lda, int64_t M, int64_t k0, int64_t kc, float* out) {
  for (int64_t i = 0, mr; i < M; i += mr) {
    mr = block_rows(M - i);
    const __mmask16 keep = lane_mask(mr);
    float* dst = out + i * kc;
    for (int64_t k = 0; k < kc; ++k)
      _mm512_mask_storeu_ps(dst + k * mr, keep,
                            _mm512_maskz_loadu_ps(keep, A + (k0 + k) * lda + i));
  }
}

// W larger than this has the next pair of panels' slice fetched into L2 while the first row
// block runs over the current pair (two prefetches a value of k, among its 24 FMAs), instead of
// that block waiting for L3 when it reaches it. Paired per call on Emerald Rapids (2 MB L2), 2
// threads, without / with (medians of 40-100 ABBA pairs): LSTM inference (100,64,512,512)
// 1.03x, (100,64,256,256) 1.02-1.03x, (35,64,650,650) 1.02x, (20,128,1024,1024) 1.02x,
// (50,32,256,256) 1.02x, (200,32,128,128) 1.00x (W of 256 KB); GRU and RNN (100,64,512,512)
// 1.02x and 1.03x; training LSTM (100,64,512,512) and (100,64,256,256), GRU (100,64,512,512)
// 1.01-1.02x; two builds in turns (ab_builds.py, 21-41 rounds, both orders): LSTM inference
// 1.03-1.06x, RNN (100,64,512,512) 1.03x and 1.09x. With W of 64 KB ((100,64,64,64)) the
// prefetches lost 2%. (The AVX2 kernels' prefetches, T0 before each block and each block's tile
// of C besides, had lost on Zen 5: packed_gemm_f32 below.)
constexpr int64_t kPrefetchBytes = 512 << 10;

// All panels for the row blocks of A, slice kc from k0 on: two panels at a time, each pair's
// slices staying in L1 while every block of A passes over them. a: A from column k0 (lda), or
// the slice packed block after block (kPackedA).
template <bool kPackedA>
void panel_pairs(int64_t M, int64_t K, int64_t N, int64_t k0, int64_t kc, const float* a,
                 int64_t lda, const float* packed, float* C, int64_t ldc, bool acc,
                 const ColumnBlocks& blocks) {
  const int64_t panels = (N + kPanel - 1) / kPanel;
  const bool prefetch =
      K * N * blocks.count * static_cast<int64_t>(sizeof(float)) > kPrefetchBytes;
  for (int64_t q = 0; q < blocks.count; ++q) {
    const float* packed_q = packed + q * blocks.packed_stride;
    float* c_q = C + q * blocks.c_stride;
    for (int64_t p = 0; p < panels; p += 2) {
      const Panels panel = panels_at(packed_q, K, p, k0);
      const int64_t n = N - p * kPanel;
      // the next pair's slice, during the first block (both of its panels there)
      const float* next = prefetch && p + 3 < panels ? panels_at(packed_q, K, p + 2, k0).data
                                                     : nullptr;
      for (int64_t i = 0, mr; i < M; i += mr) {
        mr = block_rows(M - i);
        const float* ai = kPackedA ? a + i * kc : a + i * lda;
        float* ci = c_q + i * ldc + p * kPanel;
        if (p + 1 >= panels)
          packed_block<1, kPackedA>(mr, kc, ai, lda, panel, ci, ldc, n, acc);
        else if (next && i == 0)
          packed_block<2, kPackedA, true>(mr, kc, ai, lda, panel, ci, ldc, n, acc, next);
        else
          packed_block<2, kPackedA>(mr, kc, ai, lda, panel, ci, ldc, n, acc);
      }
    }
  }
}

}  // namespace

// avx2::pack_panels_f32's panels, W stored (N, K) transposed in 16 x 8 tiles: each half of a
// vector holds 8 rows, so that one 8 x 8 transpose in both halves at once (24 shuffles) makes 8
// panel rows, where the AVX2 tiles took 24 for 4. Halving the shuffles gained little, as did
// prefetching W into L2 before the packing (RESULTS.md). Paired on Emerald Rapids, 2 threads,
// functional calls, AVX2 / these tiles, three runs: LSTM (50,1,256,256) inference 1.00-1.03x,
// training 1.01-1.02x, (50,2,256,256) (two runs) 1.01-1.02x and 0.99-1.01x; the GRU 1.03x and
// 1.00-1.06x, at batch 2 1.01x and 1.01-1.02x. W stored (K, N) is copied row by row, as at AVX2.
void pack_panels_f32(const float* w, int64_t ldw, bool trans, int64_t K, int64_t N, int64_t p0,
                     int64_t p1, float* out, PanelLayout layout, int64_t q) {
  if (!trans) return avx2::pack_panels_f32(w, ldw, trans, K, N, p0, p1, out, layout, q);
  const int64_t ld = layout.row() * kPanel;
  // 128-bit lanes (a: u[i], b: u[i + 4]): a0 b0 a2 b2, then a1 b1 a3 b3
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int64_t p = p0; p < p1; ++p) {
    float* panel = out + layout.offset(q, p, 0) * kPanel;
    const int64_t n0 = p * kPanel, cols = std::min<int64_t>(kPanel, N - n0);
    const float* w0 = w + n0 * ldw;
    int64_t k = 0;
    if (cols == kPanel) {
      for (; k + 8 <= K; k += 8) {
        // r[i]: columns k..k+7 of row i (low half) and of row 8 + i (high half)
        __m512 r[8], u[8];
        for (int i = 0; i < 8; ++i)
          r[i] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(w0 + i * ldw + k)),
                                    _mm256_loadu_ps(w0 + (8 + i) * ldw + k), 1);
        avx512_tiles::transpose_in_lanes(r, u);
        for (int i = 0; i < 4; ++i) {
          _mm512_storeu_ps(panel + (k + i) * ld, _mm512_permutex2var_ps(u[i], lo, u[i + 4]));
          _mm512_storeu_ps(panel + (k + 4 + i) * ld, _mm512_permutex2var_ps(u[i], hi, u[i + 4]));
        }
      }
    }
    for (; k < K; ++k)
      for (int64_t c = 0; c < kPanel; ++c) panel[k * ld + c] = c < cols ? w0[c * ldw + k] : 0.0f;
  }
}

// packed: from a panel boundary on; C's columns [0, N) match it (in each block).
void packed_gemm_f32(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                     const float* packed, float* C, int64_t ldc, bool accumulate,
                     ColumnBlocks blocks) {
  // W is read once per row block here, so the order of its panels matters: StepSlice's
  // `descending` steps start on the panels the step before used last. Zen 5 (1 MB L2), paired,
  // 2 threads, two runs: batch-1 LSTM (50,1,256,256) inference 1.09x, the GRU 1.05x. The AVX2
  // kernels' two prefetches (the next panel's slice, each block's tile of C) lost here:
  // 0.88-0.94x at (35,64,650,650) and (20,32,1024,1024), and 0.78x at (100,64,256,256)
  // inference, where 12 x 2 blocks make 48 prefetches of C each.
  if (M < kPackedRows) {
    for (int64_t i = 0; i < blocks.count; ++i) {
      const int64_t q = blocks.descending ? blocks.count - 1 - i : i;
      few_rows(M, K, N, A, lda, packed + q * blocks.packed_stride, C + q * blocks.c_stride, ldc,
               accumulate, blocks.descending);
    }
    return;
  }
  // Slice by slice of k. A's rows are read in place: packing them into one stream per block,
  // as the AVX2 kernels do, cost more than it saved. Zen 5, paired, 2 threads, packed / in
  // place: LSTM (100,64,256,256) 1.02-1.03x inference, 0.99-1.01x training; (200,32,128,128)
  // 1.05-1.08x and 1.04-1.05x; (29,128,16,256) 1.03x and 1.05x; the GRU 1.01-1.07x and
  // 1.02-1.05x; (35,20,650,650) 0.99-1.01x. Rows that crowd L1's sets (kAliasingBytes) are
  // packed, as before: (20,128,1024,1024) 0.98-0.99x.
  const bool pack_a = lda * static_cast<int64_t>(sizeof(float)) % kAliasingBytes == 0;
  thread_local std::vector<float> a_packed;
  if (pack_a) a_packed.resize(M * std::min(K, kDepth));
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t kc = std::min(kDepth, K - k0);
    const bool acc = accumulate || k0 > 0;
    if (pack_a) {
      pack_a_rows(A, lda, M, k0, kc, a_packed.data());
      panel_pairs<true>(M, K, N, k0, kc, a_packed.data(), 0, packed, C, ldc, acc, blocks);
    } else {
      panel_pairs<false>(M, K, N, k0, kc, A + k0, lda, packed, C, ldc, acc, blocks);
    }
  }
}

void packed_gemm_f32_pairwise(bool ta, int64_t M, int64_t K, int64_t N, const float* A,
                              int64_t lda, const float* w, int64_t ldw, bool trans, float alpha,
                              float* C, int64_t ldc, bool accumulate, int64_t blocks,
                              int64_t w_stride, int64_t c_stride) {
  thread_local std::vector<float, CacheLineAllocator<float>> pair;
  // block q's columns [n0, n0 + n) of op(W) over k in [k0, k0 + kc), packed as panels of kc
  // rows, times alpha
  const auto pack = [&](int64_t q, int64_t n0, int64_t n, int64_t k0, int64_t kc) {
    const float* wq = w + q * w_stride;
    const float* from = trans ? wq + n0 * ldw + k0 : wq + k0 * ldw + n0;
    const int64_t panels = (n + kPanel - 1) / kPanel;
    avx512::pack_panels_f32(from, ldw, trans, kc, n, 0, panels, pair.data(),
                            PanelLayout{kc, panels}, 0);
    if (alpha != 1.0f)
      for (int64_t v = 0; v < panels * kPanel * kc; ++v) pair[v] *= alpha;
  };
  if (!ta && M < kPackedRows) {  // few rows: each pair whole, for few_rows
    pair.resize(avx2::packed_size_f32(K, 2 * kPanel));
    for (int64_t q = 0; q < blocks; ++q)
      for (int64_t n0 = 0; n0 < N; n0 += 2 * kPanel) {
        const int64_t n = std::min(2 * kPanel, N - n0);
        pack(q, n0, n, 0, K);
        packed_gemm_f32(M, K, n, A, lda, pair.data(), C + q * c_stride + n0, ldc, accumulate);
      }
    return;
  }
  // packed_gemm_f32's slices of k, and in each, its pairs of panels packed just before their
  // products. A's rows are packed (once a slice, for every block) where packed_gemm_f32 packs
  // them (kAliasingBytes), and A^T's always.
  const bool pack_a = ta || lda * static_cast<int64_t>(sizeof(float)) % kAliasingBytes == 0;
  thread_local std::vector<float> a_packed;
  if (pack_a) a_packed.resize(M * std::min(K, kDepth));
  pair.resize(avx2::packed_size_f32(std::min(K, kDepth), 2 * kPanel));
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t kc = std::min(kDepth, K - k0);
    const bool acc = accumulate || k0 > 0;
    if (ta)
      pack_a_columns(A, lda, M, k0, kc, a_packed.data());
    else if (pack_a)
      pack_a_rows(A, lda, M, k0, kc, a_packed.data());
    for (int64_t q = 0; q < blocks; ++q)
      for (int64_t n0 = 0; n0 < N; n0 += 2 * kPanel) {
        const int64_t n = std::min(2 * kPanel, N - n0);
        float* c = C + q * c_stride + n0;
        pack(q, n0, n, k0, kc);
        if (pack_a)
          panel_pairs<true>(M, kc, n, 0, kc, a_packed.data(), 0, pair.data(), c, ldc, acc,
                            ColumnBlocks{});
        else
          panel_pairs<false>(M, kc, n, 0, kc, A + k0, lda, pair.data(), c, ldc, acc,
                             ColumnBlocks{});
      }
  }
}

namespace {

// The rider's float panel rows: X's values broadcast, W's panel rows in vectors.
struct F32Ops {
  using X = float;
  using W = float;
  static constexpr int64_t kLine = kPanel;
  static __m512 broadcast(float x) { return _mm512_set1_ps(x); }
  static __m512 load(const float* w) { return _mm512_loadu_ps(w); }
  static __m512 dot(__m512 sum, __m512 a, __m512 w) { return _mm512_fmadd_ps(a, w, sum); }
};

// The rider's units of W as it lies (Rider::rows: 16 rows x 16 columns, sums[j] column j's
// rows), as avx512_rider::panel_units runs the panel units: one load of X's transposed rows, 16
// of W's values broadcast from its 16 columns, 16 FMAs an iteration.
template <int kRatio, typename Step>
__attribute__((always_inline)) inline void row_units(Rider& rd, __m512 (&sums)[kPanel],
                                                     Step&& step, int64_t& k, int64_t kc) {
  while (rd.left > 0 && !rd.done) {
    const int64_t m = rd.run_length(kc - k, kRatio);
    if (m == 0) break;
    const int64_t kk = rd.k0 + rd.k;
    const float* x = static_cast<const float*>(rd.x) + kk * rd.ldx + rd.r0;
    const float* w = static_cast<const float*>(rd.w) + rd.q * rd.w_block + rd.u * rd.ldw + kk;
    for (int64_t i = 0; i < m; ++i) {
      if constexpr (kRatio > 0)
#pragma GCC unroll 4
        for (int j = 0; j < kRatio; ++j) step(k++);
      const __m512 rows = _mm512_loadu_ps(x);
      const float* w_j = w;  // (stepped as block's A, never past the unit's last column)
#pragma GCC unroll 16
      for (int j = 0; j < kPanel; ++j) {
        sums[j] = _mm512_fmadd_ps(_mm512_set1_ps(*w_j), rows, sums[j]);
        if (j + 1 < kPanel) w_j += rd.ldw;
      }
      x += rd.ldx;
      ++w;
    }
    rd.left -= m;
    if ((rd.k += m) < rd.unit_depth()) break;
    __m512 row[kPanel];  // row[i]: row r0 + i's 16 columns
    avx512_tiles::transpose16(sums, row);
    float* c = rd.c + rd.r0 * rd.ldc + rd.q * rd.c_block + rd.u;
    for (int64_t i = 0; i < kRowRiderRows; ++i) {
      __m512 v = row[i];
      if (rd.k0 > 0) v = _mm512_add_ps(v, _mm512_loadu_ps(c + i * rd.ldc));
      _mm512_storeu_ps(c + i * rd.ldc, v);
    }
#pragma GCC unroll 16
    for (int j = 0; j < kPanel; ++j) sums[j] = _mm512_setzero_ps();
    rd.next_unit();
  }
}

// The step's block of one row (block<1, NP, false, false, true>) with the rider's units in its k
// loop, one rider iteration after every kRatio values of k, as long as the rider has iterations
// left; kRatio 0: the rider alone (kc, A, panels and C unused). kPanels: the rider reads W's
// panels (an iteration: 2 loads, 8 broadcasts, 16 FMAs), else W as it lies (row_units). The
// rider's sums stay in registers across its units, and go to rd.acc when the block ends within
// one.
template <int NP, int kRatio, bool kPanels>
void riding_block(int64_t kc, const float* A, Panels panels, float* C, int64_t n_cols,
                  bool accumulate, Rider& rd) {
  __m512 acc[1][NP > 0 ? NP : 1], sums[kPanels ? 2 * kPanelRiderRows : kPanel];
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) acc[0][p] = _mm512_setzero_ps();
  avx512_rider::load_sums(rd, sums);
  // (a group's NP panels side by side: its panel rows NP * kPanel values apart)
  const auto step = [&](int64_t k) __attribute__((always_inline)) {
    const float* b = panels.data + k * (NP * kPanel);
    const __m512 a = _mm512_set1_ps(A[k]);
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p)
      acc[0][p] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + p * kPanel), acc[0][p]);
  };
  int64_t k = 0;
  if constexpr (kPanels)
    avx512_rider::panel_units<F32Ops, kRatio>(rd, sums, step, k, kc);
  else
    row_units<kRatio>(rd, sums, step, k, kc);
  avx512_rider::save_sums(rd, sums);
  if constexpr (kRatio > 0) {
    for (; k < kc; ++k) step(k);
    store_tile(acc, C, 0, n_cols, accumulate);
  }
}

// riding_block for the rider's way of reading W.
template <int NP, int kRatio>
void riding_any(int64_t kc, const float* A, Panels panels, float* C, int64_t n_cols,
                bool accumulate, Rider& rd) {
  if (rd.reads == Rider::panels)
    riding_block<NP, kRatio, true>(kc, A, panels, C, n_cols, accumulate, rd);
  else
    riding_block<NP, kRatio, false>(kc, A, panels, C, n_cols, accumulate, rd);
}

// The step's block of one row on 8 grouped panels, with the rider at its ratio.
void riding_block8(int64_t kc, const float* A, Panels panels, float* C, int64_t n_cols,
                   bool accumulate, Rider& rd) {
  switch (rd.ratio) {
    case 1: return riding_any<8, 1>(kc, A, panels, C, n_cols, accumulate, rd);
    case 2: return riding_any<8, 2>(kc, A, panels, C, n_cols, accumulate, rd);
    case 3: return riding_any<8, 3>(kc, A, panels, C, n_cols, accumulate, rd);
    default: return riding_any<8, 4>(kc, A, panels, C, n_cols, accumulate, rd);
  }
}

template <int MR>
void grouped_rows(int64_t K, int64_t N, const float* A, int64_t lda, const float* packed,
                  PanelLayout layout, int64_t first, int64_t count, float* C, int64_t ldc,
                  int64_t c_stride, bool accumulate, Rider* rider) {
  const int64_t p1 = first + (N + kPanel - 1) / kPanel;
  // The rows are h_{t-1} (or dg_t), half of each written by the other member just before the
  // step's barrier: fetch all their lines at once rather than as the k loop reaches each
  // (paired, Zen 5, batch 1, two orders: 0-3% faster, the RNN's (50,1,128,128) eval 7%).
  for (int r = 0; r < MR; ++r)
    for (int64_t k = 0; k < K; k += kPanel)
      _mm_prefetch(reinterpret_cast<const char*>(A + r * lda + k), _MM_HINT_T0);
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t kc = std::min(kDepth, K - k0);
    const bool acc = accumulate || k0 > 0;
    for (int64_t p = first, n; p < p1; p += n) {  // group by group, each of every block in turn
      n = layout.run(p, p1);
      const int64_t col = (p - first) * kPanel;
      for (int64_t q = 0; q < count; ++q) {
        const Panels run{packed + layout.offset(q, p, k0) * kPanel, kPanel, layout.row() * kPanel};
        float* c = C + q * c_stride + col;
        if (MR == 1 && n == 8 && rider && rider->left > 0 && !rider->done)
          riding_block8(kc, A + k0, run, c, N - col, acc, *rider);
        else if (n == 8)
          GroupedRows<MR, 8>::run(kc, A + k0, lda, run, c, ldc, N - col, acc);
        else
          narrower_block<GroupedRows, MR, 8>(n, kc, A + k0, lda, run, c, ldc, N - col, acc);
      }
    }
  }
}

}  // namespace

void grouped_rows_f32(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                      const float* packed, PanelLayout layout, int64_t first, int64_t count,
                      float* C, int64_t ldc, int64_t c_stride, bool accumulate, Rider* rider) {
  switch (M) {
    case 1: return grouped_rows<1>(K, N, A, lda, packed, layout, first, count, C, ldc, c_stride,
                                   accumulate, rider);
    case 2: return grouped_rows<2>(K, N, A, lda, packed, layout, first, count, C, ldc, c_stride,
                                   accumulate, nullptr);
    case 3: return grouped_rows<3>(K, N, A, lda, packed, layout, first, count, C, ldc, c_stride,
                                   accumulate, nullptr);
    default: break;  // (PackedMatrix sends 1 to kGroupedRows rows)
  }
}

void ride(Rider& rider) {
  while (rider.left > 0 && !rider.done)
    riding_any<0, 0>(0, nullptr, Panels{nullptr, 0}, nullptr, 0, false, rider);
}

void transpose_rows(int64_t M, int64_t K, const float* A, int64_t lda, float* out, int64_t ldo) {
  for (int64_t r0 = 0; r0 < M; r0 += kPanel) {
    const int64_t rows = std::min<int64_t>(kPanel, M - r0);
    for (int64_t k = 0; k < K; k += kPanel) {
      const int64_t n = std::min<int64_t>(kPanel, K - k);
      const __mmask16 m = lane_mask(n);
      __m512 r[16], cols[16];  // cols[c]: value k + c of the 16 rows
      for (int j = 0; j < 16; ++j)
        r[j] = j < rows ? _mm512_maskz_loadu_ps(m, A + (r0 + j) * lda + k) : _mm512_setzero_ps();
      avx512_tiles::transpose16(r, cols);
      for (int c = 0; c < n; ++c) _mm512_storeu_ps(out + (k + c) * ldo + r0, cols[c]);
    }
  }
}

}  // namespace seqkern::avx512
