// The recurrent product of every step, C (M, N) (+)= A (M, K) @ op(W), with op(W) packed once per
// kernel call and reused at each of the T steps. A BLAS call would repack W at every step, which
// at small batch costs as much as the product itself. (Internal to csrc/cpu.)
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "seqkern/bf16.h"
#include "seqkern/common.h"
#include "seqkern/f32_panels.h"
#include "seqkern/simd.h"
#include "seqkern/threads.h"

namespace seqkern {

constexpr int64_t kPanelColumns = 16;  // columns of op(W) per packed panel

// Below this many sequences per thread, the threads share each step's product by columns (the
// columns of their units) instead of splitting the batch: each keeps its share of the packed
// recurrent weights hot in its own cache, and a batch of 1 still uses every core. The price is a
// barrier per step (two for the GRU with reset before the product and the LSTM with projection).
// Teams take up to kColumnSplitRows sequences a thread when a gate block of w_hh has
// kColumnSplitMid values or more (H = 182 and up), up to kColumnSplitRowsSmall below. Smaller
// weights stay in each core's L2 whole, and then the batch split, with no barrier, is as fast
// or faster from 4 sequences a thread on. Paired on Zen 5, 2 threads, T = 50, I = H, batch
// split / team time, inference and training: at B = 8, LSTM H = 64 0.85 and 0.86, H = 128
// 0.93 and 0.95, the GRU 0.54-0.73 and 0.72-0.84, 0.59 and 0.84; at B = 12 0.49-0.97. From
// H = 192 the team stays ahead at B = 8 (LSTM 1.12-1.16 inference and 0.92-1.04 training, GRU
// 0.97-1.06; H = 256: LSTM 1.22 and 0.98, GRU 1.15 and 1.06); at B = 4 it is ahead from H = 64
// on (LSTM 1.18-2.3, GRU 0.90-2.0 inference and 1.02-1.5 training). On Zen 4, where the step
// products are bound by the half-width FMAs rather than by streaming w_hh, the batch split is
// ahead from 4 sequences a thread at every size up to H = 512 (the barriers and a cell pass cut
// in two cost more than streaming all of w_hh), so kColumnSplitRowsSmall holds there. Paired per
// call (ABBA, 20-40 pairs), 2 threads, batch split / team time: LSTM (50,8,256,256) 0.96
// inference, 0.93-0.95 eval layer, 0.97 training; (50,12,256,256) 0.93 and 0.95 training;
// (50,8,512,512) 0.82, (50,12,512,512) 0.85, (50,8,192,192) 0.95; the GRU (50,8,256,256) 0.97
// and 0.88 training, (50,12,256,256) 0.75, (50,8,512,512) 0.95; the RNN 0.76 and 0.96;
// bfloat16 0.98-1.02 at B = 8, 0.90 at B = 12. Teams stay ahead at 3 sequences a thread (LSTM
// (50,6,256,256) 1.13, (50,6,512,512) 1.12) and at H = 1024 ((20,16,1024,1024) 1.06).
constexpr int64_t kColumnSplitRows = 8;
constexpr int64_t kColumnSplitRowsSmall = 4;
constexpr int64_t kColumnSplitMid = int64_t{1} << 15;

// A team whose members would hold fewer than kTeamPanels panels of units each leaves a batch of
// at least one sequence a thread to the batch split: the barrier then costs more than a step's
// product. Paired as above, H = 32, batch split / team at B = 2, 3, 4, 8, 12: LSTM 0.73-0.99
// inference, 0.86-1.00 training; the GRU 0.60-0.82 and 0.72-0.88.
constexpr int64_t kTeamPanels = 2;

// Teams also take batches of up to kColumnSplitRowsLarge sequences a thread when a gate block of
// w_hh has kColumnSplitLarge values or more (state x H: H = 1024 and up). Each thread then
// streams only its share of those megabytes at every step; with the batch split, each streams
// all of them. Paired on Zen 3, 2 threads, batch split / team: LSTM (20,16,1024,1024)
// 1.28-1.37x inference, 1.33-1.37x training; (20,30,1024,1024) 1.07x and 1.05x; the GRU 1.09x
// / 1.26x and 1.10x / 1.02x; the RNN within the noise. At H = 650 the LSTM gained up to 5% in
// training, but the GRU lost 5% in inference at (35,20,650,650), so smaller layers keep the
// batch split.
constexpr int64_t kColumnSplitRowsLarge = 16;
constexpr int64_t kColumnSplitLarge = int64_t{1} << 20;

// A single step on weights the call must pack (a cell's step in training, a batched decoder's
// step) leaves its products to BLAS, which packs all of w_hh on every thread of a batch split;
// a team packs each member's columns only. So one-step calls take teams up to this many
// sequences a thread. Paired on Ice Lake, 2 threads, H = 256, functional calls (ab_builds.py),
// batch split / team time: B = 16 and 24 0.87-1.36x (one run in each order); B = 32, 48 and 64
// 1.02-1.31x in all 12 cases of each order (LSTM and GRU, inference and training); B = 96
// 1.01-1.07x (one run); B = 128 0.88-1.02x, so there the batch split stays.
constexpr int64_t kColumnSplitRowsOneStep = 48;

// From this many rows per product on, BLAS runs the step products (repacking W at every step).
// It was 36, when BLAS was 8% faster at 48 rows; the kernels have since caught up. Measured
// 2026-12-01 on Zen 4, one core, C (M, 1024) += A (M, 256) @ W^T (benchmarks/packed_gemm.py):
// the packed kernels 1.31x OpenBLAS at 36 rows, 1.32x at 48, 1.16x at 64; whole layers on 2
// threads (medians of two alternating runs, training): LSTM (29,128,16,256) 47.4 -> 42.5 ms,
// (35,128,650,650) 529 -> 502 ms, (50,256,256,256) 237 -> 229 ms, inference 76.9 -> 70.4 ms;
// GRU (50,128,256,256) 96.7 -> 91.6 ms; (20,512,128,128), 256 rows a thread, even. Beyond
// 256 rows a thread, unmeasured, BLAS stays.
constexpr int64_t kBlasRows = 288;

// A step matrix this small stays packed at any batch size: beyond kBlasRows rows, BLAS's products
// of small K (H = 64: K = 64) ran at a third of the kernels' speed inside a layer, and without
// the packed product the input projection of every step runs up front, into a T*B*G*H buffer
// far larger than the caches (LSTM (28,1000,28,64): 28.7 MB, written, then read back step by
// step). Packed, each step projects its own rows while they are in cache. Measured on Zen 3,
// 2 threads, LSTM inference: (28,1000,28,64) 28.4-29.0 -> 17.1-18.4 ms, (50,2048,64,64) 116 ->
// 86 ms; a 1 MB matrix, (50,600,256,256), was 5-10% slower packed.
constexpr int64_t kPackedAnyRowsBytes = 256 << 10;

// At level avx512 the packed kernels also take up to kAvx512PackedRows rows a thread where W is
// at most kAvx512PackedBytes: BLAS packs W again at every step's product (each thread all of
// it), or at a single step over the whole batch its columns, where the call packs it once (or
// not at all: weights packed once, eval layers). Paired on Zen 5 in one process, 2 threads,
// BLAS / packed kernels:
// - weights packed once: LSTM (10,1000,64,256) 1.46x, (5,600,256,256) 1.28x, one step
//   (1,B,64,256) at 300, 500, 700 and 1000 rows a thread 1.18x, 1.19x, 1.15x and 1.10x; the GRU
//   at H = 256 1.09-1.24x, (10,1000,64,256) 1.24x; the RNN at H = 400 and 512 1.01-1.08x; one
//   thread, LSTM (1,B,64,256), 1.02-1.04x;
// - packed at the call (T >= 2): LSTM inference (2,700,16,256) 1.28x, (5,600,256,256) 1.15x,
//   (20,1000,64,256) 1.41x, (50,600,256,256) 1.27x, the GRU (20,1000,64,256) 1.16x; training
//   1.02-1.05x;
// - larger W lost at 700 rows a thread and more (LSTM (1,B,64,512) 0.83-0.95x, H = 384 0.85x at
//   1,000) and the GRU at H = 290 (1.0 MB) 0.95-0.97x from 500 rows, so both bounds stay below
//   those.
// The AVX2 kernels, run on Zen 5 (SEQKERN_SIMD=avx2) against OpenBLAS's AVX-512 kernels, lost
// (0.60-0.91x) and keep kBlasRows (Zen 3, AVX2 BLAS against them: unmeasured).
constexpr int64_t kAvx512PackedRows = 640;
constexpr int64_t kAvx512PackedBytes = 1 << 20;

// With one row per product on one thread, BLAS's GEMV reads W in place (it packs nothing,
// unlike its GEMM), so packing W pays only over this many steps. (A team keeps packing: BLAS on
// each member's columns would make the results depend on the thread count.) Measured on one
// core, LSTM I = 16, H = 128, B = 1, per call: T = 2 18.6 us unpacked against 31.9 packed,
// T = 4 27.4 / 39.2, T = 7 37.6 / 49.2, T = 16 58.3 / 54.5 (packing ~12 us, then 1.2 us a step
// less).
constexpr int64_t kPackedStepsOneRow = 12;

// Below this much work in a layer call (T*B*H*(I + h's width) multiply-adds per gate) one thread
// runs it all: waking the others and meeting them at each step's barrier costs more. Measured
// here, LSTM T = 1, B = 1, I = 144, H = 128 (one step of a decoder generating a token): 75 us
// per call on 2 threads, 24 us on one.
constexpr int64_t kSerialWork = int64_t{1} << 17;

// One sequence of fewer steps than this, on weights the call must pack, also runs on one thread:
// there BLAS reads the weights in place (kPackedStepsOneRow), and a team would first pack its
// members' shares. Paired on Zen 5, 2 threads, functional calls, one thread / team time: LSTM
// (2,1,256,256) 0.49, (3,1,256,256) 0.62-0.65, (5,1,256,256) 0.77-0.86, (3,1,512,512)
// 0.72-0.79, (5,1,512,512) 0.87-0.88; the GRU 0.58-0.98 (1.14-1.22 at (5,1,256,256)) and the
// RNN 0.65-1.07 at the same shapes; at T = 8 0.92-1.42, at T = 10 1.05-1.72. Weights packed before
// the call (eval layers) leave the team ahead at any T: LSTM (2,1,256,256) 1.90, (3,1,512,512)
// 2.33, bfloat16 1.70 and 2.14.
constexpr int64_t kTeamStepsOneRow = 8;

inline bool serial(const RnnShape& s) {
  if (s.B == 1 && s.T < kTeamStepsOneRow && !s.prepacked) return true;
  return s.T * s.B * s.H * (s.I + s.state()) < kSerialWork;
}

// Whether a layer call splits its steps by columns (a team) rather than by rows of the batch.
// Not at SIMD level baseline: there BLAS runs each member's columns, and its GEMV rounds the
// columns of a vector's tail differently, so the results would depend on the thread count.
inline bool column_split(const RnnShape& s) {
  const int64_t block = s.state() * s.H, threads = get_num_threads();
  const bool mid = block >= kColumnSplitMid && avx512_cores() != Avx512Cores::zen4;
  const int64_t rows = block >= kColumnSplitLarge ? kColumnSplitRowsLarge
                       : mid                      ? kColumnSplitRows
                                                  : kColumnSplitRowsSmall;
  const bool narrow = s.H < kTeamPanels * kPanelColumns * threads && s.B >= threads;
  // (kColumnSplitRowsOneStep exceeds every `rows` above)
  const int64_t most = s.T == 1 && !s.prepacked ? kColumnSplitRowsOneStep : rows;
  return !serial(s) && !narrow && s.B < most * threads && simd() != Simd::baseline;
}

// One thread's part of a recurrent time step. Without a team: the sequences [b0, b1), their
// product rows and their cell updates. With one: the member's units of every sequence (b0, b1 =
// 0, B), the same units in each phase: the columns of those units in every gate block of a
// product's output (PackedMatrix::multiply), and their cell updates. A cell update then reads
// only what its own member's product wrote, so it follows the product without a barrier, and
// the cell work splits evenly even when the batch is smaller than the team. sync() separates
// the phases that read what other members wrote.
struct StepSlice {
  int64_t b0, b1;
  Team* team;
  // Whether this step's products visit W's panels last to first (PackedMatrix::multiply). The
  // time loop alternates it step by step, so that each step starts on the panels the step
  // before used last, still in cache when a thread's share of W is a little larger than its
  // cache: a batch-1 LSTM with H = 256 on 2 threads reads 512 KB of w_hh a step on each core,
  // Zen 3's whole L2 (inference 1.17x, paired). Each column sums k in the same order either way.
  bool descending = false;
  void sync() const {
    if (team) team->sync();
  }
  // This slice's share [u0, u1) of n units: all of them, or the member's block of whole panels
  // (kPanelColumns units), the last member's ending at n.
  std::pair<int64_t, int64_t> units(int64_t n) const {
    if (!team) return {0, n};
    const int64_t panels = (n + kPanelColumns - 1) / kPanelColumns;
    const auto edge = [&](int r) {
      return std::min(n, panels * r / team->size * kPanelColumns);
    };
    return {edge(team->rank), edge(team->rank + 1)};
  }
};

// 64-byte aligned blocks, kept after they are freed (up to a bound in all) and handed out again
// for the same size: every kernel call packs its weights afresh, and a freshly mapped block costs
// a page fault and a zeroed page per 4 KB on first touch (packed_gemm.cc).
void* take_block(size_t bytes);
void give_block(void* p, size_t bytes);

// Storage on 64-byte boundaries, so that the micro-kernels' 32-byte loads of a panel row never
// straddle two cache lines. (malloc aligns large blocks to 16 bytes; measured with a panel in L1:
// 58-62 GFLOP/s on one core against 74-77 when aligned.)
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(take_block(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { give_block(p, n * sizeof(T)); }
  // Elements start uninitialized: packing writes every one, and zeroing 1 MB of packed weights
  // first cost 3% of a batch-1 LSTM call.
  template <typename U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;
  }
  bool operator==(const CacheLineAllocator&) const { return true; }
  bool operator!=(const CacheLineAllocator&) const { return false; }
};

// The helpers below are compiled into each SIMD level's file with its own flags: static, so that
// each file keeps its own copy (one shared copy, built with AVX-512, could run on an AVX2 CPU).

// Depth of one pass over a panel, at both levels (so that they sum k in the same order): 256
// values keep a panel slice (16 KB) and a block of A in L1 together.
constexpr int64_t kDepth = 256;

// Adjacent panels from row k0 on: row k of the q-th of them at data + q * stride + k * 16.
struct Panels {
  const float* data;
  int64_t stride;          // from a panel to the next
  int64_t row = kPanelColumns;  // from a panel row to the next (grouped: the group's panels)
};

// Panels p, p+1, ... of op(W) (K rows each, packed as the micro-kernels read it), from row k0 on.
static inline Panels panels_at(const float* packed, int64_t K, int64_t p, int64_t k0) {
  return {packed + (p * K + k0) * kPanelColumns, K * kPanelColumns};
}

// Block<MR, n>::run(args...) for 1 <= n < NP: a run's last panels.
template <template <int, int> class Block, int MR, int NP, typename... Args>
static void narrower_block(int64_t n, Args... args) {
  if constexpr (NP > 1) {
    if (n == NP - 1)
      Block<MR, NP - 1>::run(args...);
    else
      narrower_block<Block, MR, NP - 1>(n, args...);
  }
}

// All panels of op(W) for rows [0, MR) of A, k slice by k slice: NP adjacent panels at a time,
// then the remaining ones as one narrower block (descending: the same blocks, last first).
// Block<MR, NP>::run is a micro-kernel level's block: C[0..MR) x NP panels (n columns of C from
// the first on), kc values of k, A read in place. The remaining panels went one at a time
// before: a team member's 8 panels at batch 8 ran as 3 + 3 + 1 + 1, and the one-panel blocks'
// 8 accumulators (one load of W and 8 broadcasts for 8 FMAs) took a third of the products' time
// for a quarter of their work. Paired on Emerald Rapids, one core, C (M, 128) += A (M, 256) @ W:
// 6-8 rows 1.12-1.14x, 2 rows 1.08x; layers, 2 threads, both orders: LSTM and GRU (50,8,256,256)
// and (50,6,256,256) inference 1.03-1.05x, eval layers 1.03-1.05x, training 1.02-1.03x. (Each
// column sums k in the same order in any block.)
template <template <int, int> class Block, int MR, int NP>
static void panel_rows(int64_t K, int64_t N, const float* A, int64_t lda, const float* packed,
                       float* C, int64_t ldc, bool accumulate, bool descending = false) {
  const int64_t panels = (N + kPanelColumns - 1) / kPanelColumns, full = panels / NP * NP;
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t kc = std::min(kDepth, K - k0);
    const bool acc = accumulate || k0 > 0;
    const auto run = [&](int64_t p, int64_t n) {  // panels [p, p + n), 1 <= n <= NP
      const Panels at = panels_at(packed, K, p, k0);
      float* c = C + p * kPanelColumns;
      const int64_t cols = N - p * kPanelColumns;
      if (n == NP)
        Block<MR, NP>::run(kc, A + k0, lda, at, c, ldc, cols, acc);
      else
        narrower_block<Block, MR, NP>(n, kc, A + k0, lda, at, c, ldc, cols, acc);
    };
    if (descending) {
      if (full < panels) run(full, panels - full);
      for (int64_t p = full - NP; p >= 0; p -= NP) run(p, NP);
    } else {
      for (int64_t p = 0; p < full; p += NP) run(p, NP);
      if (full < panels) run(full, panels - full);
    }
  }
}

// `count` blocks of a product's N columns: block q's panels start at packed + q *
// packed_stride, its columns of C at C + q * c_stride.
struct ColumnBlocks {
  int64_t count = 1, packed_stride = 0, c_stride = 0;
  // Visit the blocks and their panels last to first (StepSlice): the products of few rows (below
  // 6 at the AVX2 level, 9 at AVX-512), where W's reads dominate.
  bool descending = false;
  // bfloat16 products: panels per group of the packed layout (PanelLayout, whose blocks are
  // these `count`); `packed` is block 0's start (packed_stride unused), and the product's
  // columns start at panel `first` of a block of `panels`. (Float panels lie one after the
  // other: group 1, `packed` from the product's first panel.)
  int64_t group = 1, first = 0, panels = 0;
};

// bfloat16 pair panels (seqkern/bf16.h): pair row kk of a panel holds its 16 columns x rows 2kk
// and 2kk+1 of op(W), interleaved.
constexpr int64_t kPairRow = 2 * kPanelColumns;

// Where the pair panels of a Bf16Matrix's column blocks lie: `blocks` blocks of `panels` panels
// of K pair rows (64-byte lines) each, either
// - block after block, each block's panels one after the other (group 1: pair row kk of panel
//   p at line p * K + kk from its block's start), as the float panels always lie (panels_at), or
// - by groups of G adjacent panels, interleaved row by row, so that pair row kk of a group
//   holds pair row kk of each of its panels side by side (G lines, the last group of a block
//   padded to G): a product of one row, reading NP panels at a time, then reads one sequential
//   stream instead of NP streams K lines apart. One core, Zen 5, 256 KB in L2, one row, 8 panels
//   at a time: 1.60-1.77 us grouped against 1.98-2.45 (float, 512 KB: 2.36-2.38 against
//   4.23-4.33, but float weights are packed at every call, and packed grouped the batch-1 layers
//   did not gain: RESULTS.md, Zen 5 second session). Group g of every block comes before group
//   g + 1 of any (block q's at line (g * blocks + q) * G * K), so that a team member, whose
//   share of each block is a run of whole groups, reads one stream over all the blocks: its 8
//   panels of each of an LSTM's 4 gate blocks (H = 256, 2 members) read as one 256 KB stream
//   took 1.64-1.72 us a product, as 4 streams 128 KB apart 2.0-2.3 (one core, Zen 5, the
//   prefetcher starting over at each block); eval(precision="bfloat16") layers, paired, batch
//   1: LSTM (50,1,256,256) 1.06-1.13x in five runs, the GRU 0.98-1.07x; shares of 1 MB and more,
//   streamed from L3 either way, within the noise.
struct PanelLayout {
  int64_t K, panels, group = 1, blocks = 1;

  // In lines: from block 0's start to pair row kk of block q's panel p; from a panel to the next
  // one of its run; from a pair row to the next.
  int64_t offset(int64_t q, int64_t p, int64_t kk) const {
    if (group == 1) return (q * panels + p) * K + kk;
    const int64_t g = p / group;
    return (g * blocks + q) * group * K + kk * group + p % group;
  }
  int64_t stride() const { return group == 1 ? K : 1; }
  int64_t row() const { return group; }
  // Panels from p on that one stride reaches, up to p1: all of them in group 1, else the rest
  // of p's group.
  int64_t run(int64_t p, int64_t p1) const {
    return group == 1 ? p1 - p : std::min(p1, (p / group + 1) * group) - p;
  }
  // Lines in all: every block padded to whole groups.
  int64_t lines() const { return blocks * (panels + group - 1) / group * group * K; }
};

// An input projection that a team member's step products of one row carry in their k loop
// (avx512::grouped_rows_f32, avx512bf16::bf16_gemm): those read the member's share of w_hh from
// L2 and leave the dot-product units idle part of the time, and the projection, projected step
// by step a block of rows at a time, is work on weights of its own. C (rows, n) (+)= X @ W^T in
// each of `blocks` column blocks, unit after unit: a few of a block's columns over one slice of
// k (depth values: kDepth, or all of a bfloat16 product's pairs), the slices of each unit in
// order, so that every value is the sum the product's own kernels make, bit for bit. W is read
// - as panels (`panels`: float W packed before the call, as eval layers keep it): kPanelRiderRows
//   rows x 2 panels a unit, X's rows broadcast, W's panel rows a vector;
// - as it lies (`rows`: units of K values, as float w_ih is stored), with X transposed:
//   kRowRiderRows rows x 16 columns a unit, one accumulator per column holding its rows, W's
//   values broadcast (a product's two factors commute in an FMA: the same bits);
// - as bfloat16 pair panels (`bf16_panels`: a Bf16Matrix, on the CPU's bf16 dot products): as
//   `panels`, X's rows rounded to bfloat16 pairs (K counts pairs).
// A unit under way keeps its sums in acc between products.
constexpr int64_t kPanelRiderRows = 8;
constexpr int64_t kRowRiderRows = kPanelColumns;

struct Rider {
  enum Reads { panels, rows, bf16_panels } reads;
  // X: row r at x + r * ldx (float, or bf16 pairs as uint32), or for `rows` transposed, value k
  // of row r at x + k * ldx + r
  const void* x;
  int64_t ldx, K, depth;
  // panels: block q's panel p0 + p, row k at w + layout.offset(q, p0 + p, k) lines (16 floats,
  // or 16 bf16 pairs); rows: block q's column u (K values) at w + q * w_block + u * ldw
  const void* w;
  PanelLayout layout;
  int64_t p0, ldw, w_block;
  float* c;  // row r's columns of block q at c + r * ldc + q * c_block, n of them
  int64_t ldc, c_block, n, blocks;
  int64_t r0 = 0;  // the rows: [r0, r0 + block_rows())
  // the unit under way: block q, columns from u on, k from k0 + k on
  int64_t q = 0, u = 0, k0 = 0, k = 0;
  int64_t left = 0;  // iterations (one value of k for the unit) this product may still run
  int ratio = 2;     // step iterations per iteration of the rider, in the k loop they share
  bool done = true;  // every unit of these rows summed and stored
  alignas(64) float acc[kRowRiderRows * kPanelColumns];

  // Rows a block, and columns a unit.
  int64_t block_rows() const { return reads == rows ? kRowRiderRows : kPanelRiderRows; }
  int64_t unit_columns() const { return reads == rows ? kPanelColumns : 2 * kPanelColumns; }
  // Values of k the unit under way sums (the last slice of K may be short).
  int64_t unit_depth() const { return std::min(depth, K - k0); }
  // Iterations to run now: what the unit and the product have left, and beside a step product
  // (every > 0), one for each `every` of the step's `step_left` values of k.
  int64_t run_length(int64_t step_left, int every) const {
    const int64_t m = std::min(left, unit_depth() - k);
    return every > 0 ? std::min(m, step_left / every) : m;
  }
  // Rows [r0, r0 + block_rows()) from their first unit on.
  void start(int64_t first_row) {
    r0 = first_row;
    q = u = k0 = k = 0;
    done = false;
  }
  // The next unit: the unit's slices of k, then its columns, then its blocks.
  void next_unit() {
    k = 0;
    if ((k0 += depth) < K) return;
    k0 = 0;
    if ((u += unit_columns()) < n) return;
    u = 0;
    done = ++q == blocks;
  }
};

// Products of up to this many rows (a team's at batch 1 to 3) read grouped panels (PanelLayout)
// at AVX-512, in blocks of a group's 8 panels. From panels in separate streams, 2 and 3 rows ran
// 6 and 4 panels at a time; paired on Emerald Rapids, one core, a team member's share of an
// LSTM's w_hh (4 gate blocks of 8 panels, K = 256, 512 KB, in L2), separate / grouped time: one
// row 1.02x, 2 rows 1.09x, 3 rows 1.18x; at K = 512 (2 MB) 1.03x and 1.05x; at K = 128 (128
// KB) 1.08x, 1.06x and 0.98x.
constexpr int64_t kGroupedRows = 3;

// Panels per group (PanelLayout) for weights of `panels` panels a block, for products of few rows
// split among a team of `members` as StepSlice::units splits them: the largest power of two up
// to 8 (the grouped blocks' panels at AVX-512) that divides every member's first panel, so that
// each member's share starts a group.
inline int64_t team_group(int64_t panels, int64_t members) {
  int64_t group = 8;
  for (int64_t r = 1; r < members; ++r)
    while (panels * r / members % group) group /= 2;
  return group;
}

// Rows [0, MR) of A, rounded to bfloat16 pairs (`pairs` per row, row stride lda), against
// panels [p0, p0 + ceil(N / 16)) of column block q (`layout`, block 0 from `packed` on; N
// columns of C from C on), run by run: NP adjacent panels at a time, then the run's remaining
// ones as one narrower block. Block<MR, NP>::run is a level's block: C[0..MR) x NP panels
// (panel j's pair row kk at panels + j * stride + kk * row; n columns of C from the first on),
// every pair row.
template <template <int, int> class Block, int MR, int NP>
static void pair_panel_rows(PanelLayout layout, int64_t q, int64_t p0, const uint32_t* A,
                            int64_t lda, const uint16_t* packed, float* C, int64_t ldc, int64_t N,
                            bool accumulate) {
  const int64_t pairs = layout.K, p1 = p0 + (N + kPanelColumns - 1) / kPanelColumns;
  for (int64_t first = p0, n; first < p1; first += n) {
    n = layout.run(first, p1);
    const uint16_t* run = packed + layout.offset(q, first, 0) * kPairRow;
    const int64_t stride = layout.stride() * kPairRow, row = layout.row() * kPairRow;
    for (int64_t j = 0; j < n; j += NP) {
      const int64_t col = (first - p0 + j) * kPanelColumns;
      if (j + NP <= n)
        Block<MR, NP>::run(pairs, A, lda, run + j * stride, stride, row, C + col, ldc, N - col,
                           accumulate);
      else
        narrower_block<Block, MR, NP>(n - j, pairs, A, lda, run + j * stride, stride, row,
                                      C + col, ldc, N - col, accumulate);
    }
  }
}

// A widening level's block (bf16_gemm_avx2.cc, bf16_widened_avx512.cc) over all pair rows: the
// pairs summed in slices of kDepth / 2 (kDepth values of k), C updated after each, as the float
// kernels do on the widened copy, so that both paths give the same sums. block(pairs, A, lda,
// panels, stride, row, C, ldc, n, accumulate) as Block<MR, NP>::run below.
template <typename Block>
static void pair_slices(Block block, int64_t pairs, const uint32_t* A, int64_t lda,
                        const uint16_t* panels, int64_t stride, int64_t row, float* C,
                        int64_t ldc, int64_t n, bool accumulate) {
  for (int64_t k0 = 0; k0 < pairs; k0 += kDepth / 2)
    block(std::min(kDepth / 2, pairs - k0), A + k0, lda, panels + k0 * row, stride, row, C, ldc,
          n, accumulate || k0 > 0);
}

// Panels a product of several blocks of rows reads at a time, each block passing over them
// while they are in L1 (K = 512: 32 KB), so that W comes from L3 once per product instead of
// once per block. Row block by row block over all of W before: one core, Zen 5, C (32, N) +=
// A (32, K) @ W: K = 512, N = 2048 (2 MB of W) 375 -> 426 GFLOP/s; 1 MB 364 -> 436; 8 MB 317 ->
// 384; 512 KB, in L2, even (418-455). Layers in eval(precision="bfloat16"), 2 threads, paired:
// LSTM (100,64,512,512) 1.04-1.05x; the smaller ones and the GRU within the noise (0.94-1.07x).
// Each row's sums keep their order, so its bits do not depend on the rows beside it.
constexpr int64_t kPairChunkPanels = 2;

// A bfloat16 product at one level: A's rows rounded into a16 (round_rows(M, K, A, lda, out,
// pairs)), then each block of rows (block_rows(rows left) rows each) against every column block
// (rows(mr, layout, block, first panel, a, lda, packed, C, ldc, N, accumulate)): one block of
// rows group by group (in the grouped layout, the order in which the groups lie), several
// kPairChunkPanels panels at a time.
template <typename RoundRows, typename BlockRows, typename Rows>
static void bf16_rows_product(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                       const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
                       ColumnBlocks blocks, std::vector<uint32_t>& a16, RoundRows round_rows,
                       BlockRows block_rows, Rows rows) {
  if (M <= 0 || N <= 0) return;
  const int64_t pairs = (K + 1) / 2;
  const PanelLayout layout{pairs, blocks.panels, blocks.group, blocks.count};
  a16.resize(M * pairs);
  round_rows(M, K, A, lda, a16.data(), pairs);
  if (block_rows(M) == M) {  // one block of rows: grouped, each group of every block in turn
    const int64_t p1 = blocks.first + (N + kPanelColumns - 1) / kPanelColumns;
    for (int64_t p = blocks.first, n; p < p1; p += n) {
      n = layout.run(p, p1);  // group 1: all of them
      const int64_t col = (p - blocks.first) * kPanelColumns;
      for (int64_t q = 0; q < blocks.count; ++q)
        rows(M, layout, q, p, a16.data(), pairs, packed, C + q * blocks.c_stride + col, ldc,
             std::min(N - col, n * kPanelColumns), accumulate);
    }
    return;
  }
  for (int64_t q = 0; q < blocks.count; ++q)
    for (int64_t col = 0; col < N; col += kPairChunkPanels * kPanelColumns)
      for (int64_t i = 0, mr; i < M; i += mr) {
        mr = block_rows(M - i);
        rows(mr, layout, q, blocks.first + col / kPanelColumns, a16.data() + i * pairs, pairs,
             packed, C + q * blocks.c_stride + i * ldc + col, ldc,
             std::min(N - col, kPairChunkPanels * kPanelColumns), accumulate);
      }
}


// The micro-kernels, one copy per SIMD level above baseline (packed_gemm_avx2.cc, built with
// -mavx2 -mfma; packed_gemm_avx512.cc, with AVX-512): call a copy only at its level (simd.h).
// Both levels share the packed layout: panels [p0, p1) of op(W) (kPanelColumns columns each),
// which either level's pack_panels_f32 writes (seqkern::pack_panels_f32 picks it).
// packed_gemm_f32: C (M, N) (+)= A @ op(W) from the packed panels.
namespace avx2 {
// Panels [p0, p1) of op(W) as block q of `layout` (in lines: one panel row of floats each), from
// out on; group 1: block after block, each block's panels one after the other.
void pack_panels_f32(const float* w, int64_t ldw, bool trans, int64_t K, int64_t N, int64_t p0,
                     int64_t p1, float* out, PanelLayout layout, int64_t q);
int64_t packed_size_f32(int64_t K, int64_t N);
void packed_gemm_f32(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                     const float* packed, float* C, int64_t ldc, bool accumulate,
                     ColumnBlocks blocks = {});
}  // namespace avx2
namespace avx512 {
void pack_panels_f32(const float* w, int64_t ldw, bool trans, int64_t K, int64_t N, int64_t p0,
                     int64_t p1, float* out, PanelLayout layout, int64_t q);
void packed_gemm_f32(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                     const float* packed, float* C, int64_t ldc, bool accumulate,
                     ColumnBlocks blocks = {});
// C (M, N) (+)= op(A) @ alpha op(W), A stored (K, M) when ta (then M >= 9), else (M, K), row
// stride lda; W stored (N, K) when trans, else (K, N), row stride ldw; in each of `blocks`
// column blocks (block q's W at w + q * w_stride, its columns of C at C + q * c_stride). Each
// pair of op(W)'s panels is packed, for each slice of k, into a buffer of the calling thread
// just before its products: for weights a call reads once, where the panels of all of op(W)
// packed first made a round trip through L2. The sums of packed_gemm_f32 on op(W) packed whole
// (and scaled by alpha), bit for bit.
void packed_gemm_f32_pairwise(bool ta, int64_t M, int64_t K, int64_t N, const float* A,
                              int64_t lda, const float* w, int64_t ldw, bool trans, float alpha,
                              float* C, int64_t ldc, bool accumulate, int64_t blocks = 1,
                              int64_t w_stride = 0, int64_t c_stride = 0);
// Up to kGroupedRows rows: C (M, N) (+)= A @ op(W) in each of `count` column blocks (block q's
// columns of C at C + q * c_stride), from grouped panels (`layout`, group > 1; block 0 from
// `packed` on), N columns from panel `first` on; the sums of packed_gemm_f32, bit for bit.
// rider: work a product of one row carries along (Rider), or null.
void grouped_rows_f32(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                      const float* packed, PanelLayout layout, int64_t first, int64_t count,
                      float* C, int64_t ldc, int64_t c_stride, bool accumulate,
                      Rider* rider = nullptr);
// The rider's `left` iterations, or what remains of its rows, on their own.
void ride(Rider& rider);
// Rows [0, M) of A (K values each, row stride lda) transposed: value k of row r at
// out[k * ldo + r], zeros in rows [M, M rounded up to 16).
void transpose_rows(int64_t M, int64_t K, const float* A, int64_t lda, float* out, int64_t ldo);
}  // namespace avx512

// avx2::pack_panels_f32, on the level's own copy (the same values): at avx2 and above.
void pack_panels_f32(const float* w, int64_t ldw, bool trans, int64_t K, int64_t N, int64_t p0,
                     int64_t p1, float* out, PanelLayout layout, int64_t q);

// The bfloat16 products (seqkern/bf16.h): C (M, N) (+)= bf16(A) (M, K) @ op(W) from a
// Bf16Matrix's pair panels (`packed`: its data), N columns from panel blocks.first on in each of
// blocks.count column blocks; A
// is rounded to bfloat16 row by row into a buffer of the calling thread. One copy per level that
// has one: native bf16 dot products, or float FMAs on widened values (AVX2, and AVX-512 without
// avx512_bf16).
namespace avx512bf16 {
void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks);
// bf16_gemm's product of one row (A's first), carrying the rider's work (Rider) where it reads
// 8 grouped panels at a time.
void bf16_row_riding(int64_t K, int64_t N, const float* A, const uint16_t* packed, float* C,
                     bool accumulate, ColumnBlocks blocks, Rider& rider);
// The rider's `left` iterations on their own (a `bf16_panels` rider).
void ride(Rider& rider);
// Rows [0, M) of A rounded to bfloat16 (ties to even) into out, row stride `pairs` pairs: pair kk
// holds values 2kk (low half) and 2kk+1, zero past K.
void round_rows(int64_t M, int64_t K, const float* A, int64_t lda, uint32_t* out, int64_t pairs);
}  // namespace avx512bf16
namespace avx2 {
void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks);
// Rows [0, M) of A rounded to bfloat16 into out, row stride `pairs` pairs: pair kk holds values
// 2kk (low half) and 2kk+1, zero past K.
void round_bf16_rows(int64_t M, int64_t K, const float* A, int64_t lda, uint32_t* out,
                     int64_t pairs);
// Rows [0, M) of A rounded to bfloat16 and widened to floats in the order of the rows of
// Bf16Matrix::wide() (odd row of each pair first): out (M, 2 * pairs), for the float
// micro-kernels, which then make bf16_gemm's sums, block for block the same FMAs in the same
// order.
void widen_bf16_rows(int64_t M, int64_t K, const float* A, int64_t lda, std::vector<float>& out);
}  // namespace avx2
// The products on AMX tiles (bf16_gemm_amx.cc), from pair panels of tile_pairs(K) pair rows
// (whole tiles, zeros past K).
namespace amx {
int64_t tile_pairs(int64_t K);
void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks);
}  // namespace amx
// The AVX-512 copy of avx2::bf16_gemm, for CPUs without avx512_bf16 (bf16_widened_avx512.cc).
namespace avx512 {
void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks);
}  // namespace avx512

// Columns [u0, u1) (u0 on a panel boundary) of each of w's column blocks: C's block q at
// C + q * w.width(). The level's kernel, or plain C++ at level baseline. rider: as
// avx512bf16::bf16_gemm's (the other kernels leave it to its next ride).
void bf16_gemm(int64_t M, const float* A, int64_t lda, const Bf16Matrix& w, int64_t u0,
               int64_t u1, float* C, int64_t ldc, bool accumulate, Rider* rider = nullptr);

// Whether a bfloat16 product of one row of a team member carries a Rider (avx512bf16::bf16_gemm):
// the CPU's bf16 dot products without AMX, pair panels grouped by 8, a member's share of each
// block whole groups.
bool bf16_riding(const Bf16Matrix& w);

template <typename T>
class PackedMatrix {
 public:
  // op(W) (K, N): W stored (N, K) with row stride ldw when trans (the forward step, h @ w_hh^T),
  // else (K, N) (the backward step, dg @ w_hh), for the s.T steps of a batch of s.B sequences.
  // The N columns are `blocks` gate blocks of N / blocks units each; a team member computes its
  // units' columns of every block. W must outlive this object. W stays unpacked, and BLAS runs
  // the products, when a slice's products have kBlasRows rows or more (unless W is at most
  // kPackedAnyRowsBytes), for a single step
  // (packing would read W twice to use it once), and for fewer than kPackedStepsOneRow steps of
  // one row (neither of which applies to kept panels).
  // kept (float, trans only): op(W) packed once already (F32Panels of this K, N and blocks),
  // used instead of packing here, and read by blocks with or without a team (a team's products
  // of up to kGroupedRows rows read its grouped copy).
  // step: every product is one step's, over at most the batch's s.B rows (not an input
  // projection's or gradient's over many steps); a team at AVX-512 then runs batches of up to
  // kGroupedRows on grouped panels.
  PackedMatrix(const T* w, int64_t ldw, bool trans, int64_t K, int64_t N, const RnnShape& s,
               int64_t blocks = 1, const F32Panels* kept = nullptr, bool step = false);
  // The forward product on bfloat16 weights packed once (float only): w's blocks are the gate
  // blocks. w must outlive this object.
  PackedMatrix(const Bf16Matrix& w, const RnnShape& s);

  // C = A @ op(W), or C += A @ op(W) when accumulate; A row stride lda, C row stride ldc. This
  // slice's share of the step product over rows [0, rows) (the batch, or the sequences
  // still running): all of them and the member's units of each block with a team, else those
  // of [b0, b1) and every column.
  // rider: work a product of one row on grouped panels carries along (riding()), or null.
  void multiply(const StepSlice& slice, int64_t rows, const T* A, int64_t lda, T* C, int64_t ldc,
                bool accumulate, Rider* rider = nullptr) const;

  // Whether op(W) was packed for the micro-kernels (else each product goes to BLAS).
  bool packed() const { return panels_ || bf16_; }
  // Whether its products read W in place (unpacked, on the in-place kernels).
  bool in_place() const { return in_place_; }
  // Whether a row's product comes out the same whatever rows share the call: on seqkern's
  // kernels, or with nothing to multiply. BLAS's sums depend on the rows it is given (one row
  // goes to GEMV, and OpenBLAS's GEMM kernels change with their number).
  bool rows_alone() const { return packed() || in_place_ || N_ == 0; }
  // Whether a product of one row carries a Rider: grouped panels, 8 a group, a member's share of
  // each block whole groups.
  bool riding() const {
    if (bf16_) return bf16_riding(*bf16_);
    return panels_ && group_ == 8 && packed_width_ % (8 * kPanelColumns) == 0;
  }

 private:
  // Columns [n0, n1) of each of `blocks` blocks of C (N_ / blocks columns each); n0 on a panel
  // boundary. blocks is 1 or blocks_ (a team's, or kept panels'). descending: as StepSlice's.
  void multiply_columns(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate,
                        int64_t n0, int64_t n1, int64_t blocks, bool descending,
                        Rider* rider = nullptr) const;

  const T* w_;
  int64_t ldw_, K_, N_;
  bool trans_;
  int64_t blocks_;
  // Packed, each block padded to whole panels: the gate blocks with a team or when kept, else all
  // of op(W) as one (padding inside it would cost work and kernel calls without a team):
  // packed_blocks_ blocks of packed_width_ columns, block_size_ values each.
  int64_t packed_blocks_ = 1, packed_width_ = 0, block_size_ = 0;
  std::vector<T, CacheLineAllocator<T>> packed_;  // packed here
  const T* panels_ = nullptr;  // panels of op(W) (packed_, or kept); null: the products go to BLAS
  std::shared_ptr<const float> kept_grouped_;  // kept panels' grouped copy, when panels_ is it
  int64_t group_ = 1;  // panels per group (PanelLayout): above 1, grouped, the blocks interleaved
  const Bf16Matrix* bf16_ = nullptr;  // the bfloat16 weights, when given
  bool in_place_ = false;  // unpacked, the products on the in-place kernels (AVX-512, float)
};

}  // namespace seqkern
