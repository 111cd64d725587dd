// Pieces shared by the RNN, LSTM and GRU kernels (internal to csrc/cpu).
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "seqkern/common.h"
#include "seqkern/gemm.h"
#include "seqkern/simd.h"
#include "packed_gemm.h"
#include "seqkern/threads.h"

namespace seqkern {
namespace detail {

// a + b for two optional bias vectors of n values; zeros when both are absent.
template <typename T>
std::vector<T> add_biases(const T* a, const T* b, int64_t n) {
  std::vector<T> out(n, T(0));
  for (int64_t j = 0; j < n; ++j) out[j] = (a ? a[j] : T(0)) + (b ? b[j] : T(0));
  return out;
}

// The shape a forward kernel runs: prepacked when it was handed weights packed before the call.
inline RnnShape as_called(RnnShape s, const Bf16Layer* bf16, const F32Layer* f32) {
  s.prepacked = bf16 || (f32 && f32->w_hh.data());
  return s;
}

// Buffers that a team's members write side by side start on a cache line (as do scratch and
// the output arrays, _core.empty): each member's units of a row then fill whole lines (when H
// is a multiple of kPanelColumns), and no line is written by two cores at once. malloc's 16-byte
// alignment put a line astride the members' units in every row of every gate block, and the
// two cores passed those lines back and forth at each step: with the team's buffers and outputs
// aligned, paired on Zen 5, 2 threads, inference: GRU (50,8,64,64) 1.52x, (50,4,64,64) 1.29x,
// (50,8,128,128) 1.19x; LSTM (50,4,64,64) 1.17x, (50,8,64,64) 1.13x; batch 1 and H = 256
// within 1-4%. (CacheLineAllocator leaves elements uninitialized: give a value where zeros are
// meant.)
template <typename T>
using Aligned = std::vector<T, CacheLineAllocator<T>>;

// Scratch reused from call to call: the big per-call buffers (T*B*G values) come from here, so
// repeated calls skip the allocation, the page faults and the zeroing. Each thread has its own
// set (pool threads included, so the two directions of a layer never share one) and keeps the
// largest size it has needed; `slot` keeps the buffers of one call apart: 0-2 for the one-layer
// kernels, 3-7 for the stack's buffers around them (a stack runs layers on its own thread too).
// Contents are undefined: every user writes each value before reading it.
template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local Aligned<T> slots[8];
  Aligned<T>& v = slots[slot];
  if (static_cast<int64_t>(v.size()) < n) {
    v = Aligned<T>();  // free the old one first
    v.resize(n);
  }
  return v.data();
}

// Zeros units [u0, u1) of each of the n blocks of H values in row (n gates, or 1 for a state).
template <typename T>
void zero_units(T* row, int64_t n, int64_t H, int64_t u0, int64_t u1) {
  for (int64_t q = 0; q < n; ++q) std::fill(row + q * H + u0, row + q * H + u1, T(0));
}

// h_{t-1} for step t: the initial state at t = 0, else y_{t-1}. Rows of finished sequences read
// zeros from y, which is harmless: their step results are discarded.
template <typename T>
const T* prev_h(int64_t t, const T* h0, const T* y, int64_t BH) {
  return t == 0 ? h0 : y + (t - 1) * BH;
}

// Whether the first state h0 (n values) is all zeros: no state given, or zeros given (torch
// users' usual start). The first step's recurrent product then adds nothing to the
// pre-activations, and the forward skips it: pre + 0 is pre, bit for bit. (Only weights holding
// inf or NaN, whose product with zeros is NaN, would have given another result.)
template <typename T>
bool zero_state(const T* h0, int64_t n) {
  return std::all_of(h0, h0 + n, [](T v) { return v == T(0); });
}

// Whether rows [0, n) of a (n values each, leading dimension ld) hold only finite values.
template <typename T>
bool finite_rows(const T* a, int64_t rows, int64_t n, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    if (!std::all_of(a + r * ld, a + r * ld + n, [](T v) { return std::isfinite(v); }))
      return false;
  return true;
}

// out[b] = seq[lengths[b] - 1][b]: the state at each sequence's own last step.
//   seq (T, B, n)   out (B, n)
template <typename T>
void gather_last(const RnnShape& s, const int32_t* lengths, const T* seq, T* out, int64_t n) {
  for (int64_t b = 0; b < s.B; ++b) {
    int64_t t = seq_len(lengths, s.T, b) - 1;
    std::memcpy(out + b * n, seq + (t * s.B + b) * n, n * sizeof(T));
  }
}

// True when lengths run longest first: then the sequences still running at any step are a
// prefix of the batch and each step's product can stop there (recurrent_stack sorts for this).
inline bool longest_first(const int32_t* lengths, int64_t B) {
  if (!lengths) return false;
  for (int64_t b = 1; b < B; ++b)
    if (lengths[b] > lengths[b - 1]) return false;
  return true;
}

// Rows the product of step t must cover: the running prefix when sorted, else all B.
inline int64_t live_rows(const int32_t* lengths, bool sorted, int64_t t, int64_t B) {
  if (!sorted) return B;
  int64_t lo = 0, hi = B;  // first b with lengths[b] <= t
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (lengths[mid] > t) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// The time loop runs once per slice of the batch: sequences are independent, so each thread
// carries its own rows through every step with no synchronization between steps. With lengths
// longest first the slices share the cost of the steps that run evenly rather than the
// sequences: even slices of rows gave the first thread the longest sequences, which with
// lengths uniform in [T/2, T] is about 17% more work than the mean. A step of m live rows costs
// about max(kStepFloorRows, m) rows' products, since a product of fewer rows still streams all
// of w_hh: slices of equal sums of lengths (m rows' cost) left the thread of the longest rows
// running one or two of them alone for the last steps. Paired per call on Zen 4, 2 threads,
// lengths uniform in [1, T] (the longest T), six draws each, equal sums / this cost (geometric
// mean, lowest, highest): LSTM inference (50,8,256,256) 1.12x (1.00-1.21x), (50,16,256,256)
// 1.03x, (50,32,256,256) 1.04x, (100,64,256,256) 1.01x, (50,16,128,128) 1.04x,
// (50,8,512,512) 1.11x, (50,12,512,512) 1.02x; training (50,8,256,256) 1.08x, (50,16,256,256)
// 1.02x; GRU (50,12,256,256) 1.02x; RNN (50,8,256,256) 1.15x; the lowest of all 0.988x. With a
// floor of 3 rows, (50,8,256,256) read 0.97x.
constexpr int64_t kStepFloorRows = 2;

template <typename F>
void for_batch_slices(int64_t B, int64_t T, const int32_t* lengths, F&& f) {
  if (!longest_first(lengths, B)) {
    parallel_for(B, 1, [&](int64_t b0, int64_t b1) { f(b0, b1); });
    return;
  }
  const int64_t n = std::min<int64_t>(get_num_threads(), B);
  const auto len = [&](int64_t b) { return seq_len(lengths, T, b); };
  std::vector<int64_t> first(n + 1, B);  // slice c: rows [first[c], first[c + 1])
  // Whether n slices, each costing at most `most`, cover the batch, filled greedily; `keep`:
  // their starts into `first`. A slice of rows [b0, b1) costs kStepFloorRows * len(b0) (its
  // steps at the floor), plus len(b) for each row b past its first kStepFloorRows.
  const auto fits = [&](int64_t most, bool keep) {
    int64_t c = 0;
    for (int64_t b = 0; b < B; ++c) {
      if (c == n) return false;
      if (keep) first[c] = b;
      const int64_t b0 = b;
      int64_t cost = kStepFloorRows * len(b);
      if (cost > most) return false;
      for (++b; b < B; ++b) {
        const int64_t more = b - b0 < kStepFloorRows ? 0 : len(b);
        if (cost + more > most) break;
        cost += more;
      }
    }
    return true;
  };
  int64_t lo = 1, hi = kStepFloorRows * T;  // the least largest cost: one slice fits in hi
  for (int64_t b = 0; b < B; ++b) hi += len(b);
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fits(mid, false))
      hi = mid;
    else
      lo = mid + 1;
  }
  fits(lo, true);
  parallel_for(n, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) f(first[c], first[c + 1]);
  });
}

// The time loop runs on every thread at once (one StepSlice each), or on this one alone when the
// call is too small to share (serial). Products split by units
// (see PackedMatrix::multiply) or rows, as the slice says; cell updates cover the units
// slice.units(H) of sequences [b0, b1). A phase that reads what another member wrote (a product
// reads all of h_{t-1} or of dg_t) waits at slice.sync(); a cell that reads only its own units
// of the product before it does not.
template <typename F>
void for_step_slices(const RnnShape& s, const int32_t* lengths, F&& f) {
  if (serial(s)) {
    f(StepSlice{0, s.B, nullptr});
    return;
  }
  if (!column_split(s)) {
    for_batch_slices(s.B, s.T, lengths,
                     [&](int64_t b0, int64_t b1) { f(StepSlice{b0, b1, nullptr}); });
    return;
  }
  run_team([&](Team& team) { f(StepSlice{0, s.B, &team}); });
}

// Where each step's rows start in a backward call's gradient arrays of T*B rows (dg): step t at
// row t*B, or, when the lengths run longest first and at most kCompactShare of the T*B (step,
// sequence) pairs ran, in a compact layout of the rows that ran only: step t's live_rows(t)
// rows from row start(t) on. The products after the time loop then skip the finished rows
// (zeros in the plain layout) instead of multiplying them; DeferredRows gathers their inputs.
// (InputProjection::all_steps asks it the same question of the forward's projection.)
constexpr double kCompactShare = 0.9;

class StepRows {
 public:
  StepRows(const RnnShape& s, const int32_t* lengths) : start_(s.T + 1) {
    const bool sorted = longest_first(lengths, s.B);
    for (int64_t t = 0; t < s.T; ++t)
      start_[t + 1] = start_[t] + live_rows(lengths, sorted, t, s.B);
    compact_ = sorted && total() <= kCompactShare * s.T * s.B;
    if (!compact_)
      for (int64_t t = 0; t <= s.T; ++t) start_[t] = t * s.B;
  }
  bool compact() const { return compact_; }
  int64_t start(int64_t t) const { return start_[t]; }
  int64_t rows(int64_t t) const { return start_[t + 1] - start_[t]; }
  int64_t total() const { return start_.back(); }

 private:
  std::vector<int64_t> start_;  // T + 1 values
  bool compact_ = false;
};

// The input projection x_t @ w_ih^T (I, GH) of every step, into pre-activations (T, B, GH),
// GH = blocks gate blocks. Three ways, by how the time loop splits its work:
// - a team (small batches) with weight matrices small enough (kStepProjectionBytes): in the
//   first step each member projects its own units of every step, on the packed kernels, so the
//   projection needs no barrier and no BLAS call (which would repack w_ih: at batch 1 that
//   packing was a quarter of the projection's time). Larger, each of its 128-row chunks
//   streamed the member's share of w_ih from L3, and the GEMM below was faster (paired, Zen 3,
//   team calls: LSTM (35,8,650,650) 1.03-1.05x inference, 1.08-1.09x training; (50,1,1024,1024)
//   1.07-1.12x and 0.93-1.00x; the GRU 1.03-1.10x and 0.91-1.08x);
// - threads splitting the batch, with packed step products and weight matrices small enough
//   (kStepProjectionBytes): each step projects its own x_t right before its recurrent product,
//   with w_ih packed as well, so that a step's pre-activations stay in cache from the
//   projection through the cell instead of making a round trip through memory in a T*B*GH
//   buffer written up front;
// - otherwise one GEMM over all T*B rows projects every step before the time loop.
// Measured with B = 64 on 2 threads: per-step projection makes the LSTM with I = H = 256 (2 MB
// of weights) and (200,32,128,128) 4-6% faster per step; with I = H = 512 (8 MB, streamed from
// L3 at every step by both threads), and the GRU with 6 MB, 5-20% slower (Zen 3, 2026-11-24).
// Cores with full-width AVX-512 FMAs (Zen 5) finish the up-front GEMM in half the time, but not
// the round trip of its T*B*GH buffer through memory: there the batch split projects step by
// step up to 8 MB. Paired, Zen 5, 2 threads, 4 MB / 8 MB: LSTM (100,64,512,512) inference
// 1.10x, (100,128,512,512) 1.09x, (50,32,512,512) 1.06x, training 1.00-1.03x; the GRU (6 MB)
// and RNN 0.99-1.02x. At 13.5 MB, (35,20,650,650), it lost 3-7%; teams lost up to 5% at 8 MB
// (LSTM (50,1,512,512) training), so theirs stays at 4 MB. (Since the next panels are fetched
// into L2, below, a 16 MB bound read 1.00-1.11x for LSTMs of H = 640-700, (35,20,650,650)
// among them, and 0.97-1.01x for the GRU at H = 768, in blocks of calls on Zen 5. The GRU's
// smaller gain was the LSTM's product adding onto pre up front (InputProjection::apart); the
// product apart, a 16 MB bound read 0.995-1.066x for the LSTM at H = 640-650, per call, and
// 8 MB over 4 MB 1.02x at I = H = 512, as the GRU's: not changed.) Zen 4, whose FMAs are
// half-width, gains as much now that the next panels are fetched into L2 (kPrefetchBytes,
// packed_gemm_avx512.cc): paired per call (ABBA, 20-30 pairs), 2 threads, 4 MB / 8 MB: LSTM
// (100,64,512,512) inference 1.08x, eval layer 1.08x, (100,128,512,512) 1.07x, (50,48,512,512)
// 1.04x, (50,32,512,512) 1.06x, (50,16,512,512) 1.08x, (100,64,256,512) eval 1.09x, training
// 1.01x; the GRU (100,64,512,512) 1.05x, eval 1.04x, (50,32,512,512) 1.05x, training 1.01x;
// bfloat16 (in the loop either way) even. Past 8 MB it was mixed: (35,64,650,650) 1.03x but
// eval 1.00x, (20,64,1024,1024) 1.00x. With the product apart, up front / in the loop: LSTM
// (100,64,512,512) 1.013-1.039x, (50,32,512,512) 1.074x, the GRU 1.037x; a 16 MB bound,
// (35,64,650,650) 1.024-1.044x but (100,12,650,650) 0.898x, (35,10,650,650) 0.967x, the GRU
// (50,64,800,800) 0.982x: not changed.
// Intel's AVX-512 cores project float32 weights step by step up to 8 MB too, once each thread
// has kStepProjectionRowsIntel rows or more: with the next panels fetched into L2
// (kPrefetchBytes, packed_gemm_avx512.cc), w_ih streamed from L3 at each step cost less than the
// round trip. Paired per call on Emerald Rapids (ABBA, 50-60 pairs), 2 threads, 4 MB / 8 MB:
// LSTM (100,64,512,512) inference 1.07x, (100,128,512,512) 1.09x, (35,64,512,512) 1.04x,
// (50,96,512,512) 1.04x, (50,48,512,512) 1.03x, (50,40,512,512) 1.04x, (100,64,256,512) 1.05x,
// training 1.01x; the GRU (100,64,512,512) 1.07x; but at 16 rows a thread, (50,32,512,512),
// LSTM 0.97x and GRU 0.94x. Two builds in turns (ab_builds.py, 15-21 rounds, both orders):
// LSTM (100,64,512,512) 1.02x inference, 1.06x eval layer, 1.03x training; (100,128,512,512)
// 1.08x and 1.05x; GRU 1.05-1.09x inference, 1.07x eval, training 1.01x. (Before the
// prefetch, three sessions there had read 0.86-1.04x. bfloat16 widened on Ice Lake had
// projected up front faster: below.)
constexpr int64_t kStepProjectionBytes = 4 << 20;
constexpr int64_t kStepProjectionBytesWide = 8 << 20;
constexpr int64_t kStepProjectionRowsIntel = 20;

// Rows of w_ih this many bytes apart, or a multiple of it, alias in L1 (InputProjection).
constexpr int64_t kRowRiderAliasingBytes = 4096;

// Rows from which a team's projection packs w_ih pair by pair past kStepProjectionBytes
// (InputProjection).
constexpr int64_t kPairwiseRows = 30;

// Rows per packed product of a team's projection: their slice of x (kDepth values each) stays in
// L2 while it passes over every panel.
constexpr int64_t kProjectionRows = 128;

// Whether a recurrent product runs outside the time loop, over the whole batch: in a single
// step (T = 1) whose threads split the batch, on weights the call does not pack (a cell's step
// of 97 rows and more on 2 threads: its products go to gemm). The forward's product of h0 then
// runs before the loop, onto the input projection (which such a call also runs up front), the
// backward's of dg after it: each one product whose threads share W's columns and pack only
// their own, where inside the loop each thread packed all of W for its rows. Each row's sums
// are gemm's either way. Paired on Ice Lake, 2 threads, torch's cells, in the loop / outside,
// both orders: `LSTMCell` (128, 512, 512) 1.22x inference and 1.08-1.11x training with the
// state's gradient, (256, 256, 256) 1.04-1.07x and 1.02-1.06x; `GRUCell` (128, 256, 256)
// 1.13-1.21x and 1.07-1.11x, (256, 256, 256) 1.06-1.09x and 1.02-1.05x.
template <typename T>
bool whole_batch(const RnnShape& s, const PackedMatrix<T>& w) {
  return s.T == 1 && !column_split(s) && !w.packed() && !w.in_place();
}

// Rows per product of the up-front projection on widened bf16 weights: each chunk streams all of
// w_ih once.
constexpr int64_t kWideProjectionRows = 256;

template <typename T>
class InputProjection {
 public:
  // bf16: w_ih rounded and packed once (inference), projected in the time loop either way.
  // kept: w_ih packed once (float inference), used wherever the projection runs on the packed
  // kernels (not by the GEMM up front).
  InputProjection(const RnnShape& s, int64_t GH, int64_t blocks, const T* x, const T* w_ih,
                  const PackedMatrix<T>& w_step, const Bf16Matrix* bf16 = nullptr,
                  const F32Panels* kept = nullptr)
      : s_(s), GH_(GH), blocks_(blocks), x_(x), w_ih_(w_ih), kept_(kept),
        team_(column_split(s)), packed_step_(w_step.packed()) {
    const int64_t bytes = GH * (s.I + s.state()) * static_cast<int64_t>(sizeof(T));
    const int64_t threads = get_num_threads(), rows = (s.B + threads - 1) / threads;  // each
    const Avx512Cores cores = avx512_cores();
    const bool wide = cores == Avx512Cores::zen4 || cores == Avx512Cores::zen5 ||
                      (!bf16 && cores == Avx512Cores::intel && rows >= kStepProjectionRowsIntel);
    const int64_t most = team_ || !wide ? kStepProjectionBytes : kStepProjectionBytesWide;
    // w_ih packed once already serves, whatever its size, a call that reads it once: a team's
    // single chunk of rows, or one step (the GEMM up front packs it at every call). Paired on
    // Zen 5, eval layers, the GEMM / the kept panels: LSTM (1,4,650,650) 1.47x and 1.57x,
    // (5,1,650,650) 1.20x and 1.22x, (1,8,1024,1024) 1.56x and 1.56x; the GRU 1.43-1.64x.
    // (Not where the step's product runs over the whole batch before the time loop: it adds
    // h0 @ w_hh^T onto the projection, which must then be there already, not be written over
    // it in the loop.)
    const bool once = kept && kept->data() &&
                      (team_ ? s.T * s.B <= kProjectionRows : s.T == 1 && !whole_batch(s, w_step));
    // A single step whose recurrent product reads w_hh in place (PackedMatrix::in_place) reads
    // w_ih in place too, whatever its size: the GEMM up front packed all of it for one use.
    // Paired on Ice Lake, cell steps, the GEMM / in place, 2 threads and 1: GRU (64,512,512)
    // 1.13-1.18x and 1.08x, (48,512,512) 1.12-1.24x and 1.17x, (64,650,650) 1.05-1.07x and
    // 1.09x; LSTM (64,512,512) 1.06-1.14x and 1.06x, (40,1024,1024) 1.12-1.13x and 1.09x.
    const bool in_place = s.T == 1 && w_step.in_place();
    // A team's projection of one chunk of rows reads w_ih once: at AVX-512 each pair of its
    // panels is packed, slice by slice of k, just before its products
    // (packed_gemm_f32_pairwise), into L1, instead of all of w_ih first, into L2 (the same bits).
    // Paired per call on Emerald Rapids (ABBA, 100-150 pairs), 2 threads, all of w_ih packed
    // first / pairwise: LSTM inference (50,1,256,256) 1.04x, (50,2,256,256) 1.025x,
    // (50,2,256,128) 1.04x, (20,1,128,128) 1.03x, (50,1,320,320) 1.05x, (50,1,512,256) 1.04x,
    // (50,1,1024,128) 1.06x; the GRU and RNN (50,1,256,256) 1.015x; training (50,1,256,256)
    // 1.04x, the GRU 1.01x. With x's rows packed too (I = 512), once for every gate block (once
    // a block, (50,2,512,128) and (25,4,512,128) had read 0.99x): two builds, both orders, 1.07x
    // and 1.09x, the GRU 1.01-1.08x. Over several chunks it lost ((200,4,256,256) 0.997x, the
    // GRU (300,3,256,256) 0.99x: each pair met every chunk's rows), and at AVX2, whose kernels
    // pack A's rows at each call, 0.91-0.93x. (A single step keeps BLAS, as before: the panels
    // would serve one product of few rows.)
    // Past `most`, where the GEMM up front ran (OpenBLAS packing w_ih), from kPairwiseRows rows:
    // LSTM (50,1,512,512) 1.03x, (35,1,650,650) 1.03x, (50,1,2048,256) 1.08x, (100,1,512,512)
    // 1.02x, (30,4,512,512) 1.02x, (128,1,650,650) 1.01x; the GRU (50,1,512,512) 1.03x,
    // training 1.04x (the LSTM's even); the RNN (50,1,1024,1024) 1.04x. Fewer rows lost:
    // (20,1,1024,1024) 0.99x, the GRU (12,1,1024,1024) 0.97x.
#if SEQKERN_X86
    pairwise_ = std::is_same_v<T, float> && team_ && !bf16 && !(kept && kept->data()) &&
                simd() == Simd::avx512 && (bytes <= most || s.T * s.B >= kPairwiseRows) &&
                s.T > 1 && s.T * s.B <= kProjectionRows;
#endif
    if (bf16)
      w_.emplace(*bf16, s);
    else if (!pairwise_ && (once || in_place || (bytes <= most && (team_ || w_step.packed()))))
      w_.emplace(w_ih, s.I, true, s.I, GH, s, blocks, kept);  // blocks: a team's, or kept's
    // bf16 weights widened to float (no bf16 dot products) project up front beyond `most`, as
    // float32 does, in chunks of rows on the widened kernels (BLAS would change the sums with
    // the batch): step by step, each thread streamed all of w_ih at every step. Paired on Ice
    // Lake, 2 threads, eval(precision="bfloat16"), before / after, both orders: LSTM
    // (100,64,512,512) 1.11x and 1.08x, (50,32,512,512) 1.18x and 1.12x, now even with float32;
    // the GRU (6 MB) 0.96-1.01x.
    up_front_ = bf16 && !bf16_native() && !team_ && bytes > most;
    // Batch 1 on a team whose members hold whole groups of 8 panels of w_hh (float32 or
    // bfloat16, PackedMatrix::riding): the step products carry the projection of later rows
    // (Rider, ride_step) instead of step 0 projecting every row. A member's step product reads
    // its share of w_hh from L2 with the FMA units idle part of the time; with the rider in its
    // k loop the two reach the FMA bound on Zen 4 (LSTM
    // (50,1,256,256), eval, a member's cycles a step: 13.0 thousand alone, 15.7 with the rider,
    // which carries 6.7 thousand of projection: 60% of it hidden). The rider reads w_ih's panels
    // where the call was handed them (eval layers), else w_ih as it lies: packing all of it for
    // the rider, 512 KB a member through L2 at each call, had cost what the rider saved
    // (functional calls 0.97-1.06x in inference, 0.97x in training). Paired per call on Zen 4,
    // 2 threads, step 0 / riding: eval layers, LSTM (50,1,256,256) 1.05-1.12x, (100,1,256,256)
    // 1.09-1.16x, (20,1,256,256) 1.02-1.05x, I = 128 and 512 1.06-1.07x, the GRU 1.08-1.11x,
    // the RNN 1.10-1.11x; functional calls, LSTM (50,1,256,256) 1.02-1.04x, (64,1,256,256)
    // 1.12x, (100,1,256,256) 1.07-1.10x, (128,1,256,256) 1.14x, the GRU 1.03-1.04x and at T =
    // 100 1.11x, the RNN 1.02-1.03x; training 1.01x, at T = 100 1.03x. On bfloat16 weights
    // (the CPU's bf16 dot products, without AMX), from w_ih's pair panels: two builds, both
    // orders, LSTM (50,1,256,256) 1.08-1.11x, (100,1,256,256) 1.11-1.12x, the GRU 1.05-1.12x,
    // the RNN 1.03-1.06x. Only Zen 4 rides: on Zen 5 (full-width FMAs, and twice Zen 4's bytes
    // a cycle from L2) the rider lost, for reasons not taken apart (its reads of w_ih share the
    // L2 with w_hh's). Paired per call and in blocks of 6 calls there, 2 threads, riding /
    // step 0: LSTM (50,1,256,256) functional 0.91-0.93x, eval 0.89-1.00x, (50,1,128,256)
    // functional 0.75-0.86x, (50,1,512,256) eval 0.86-0.91x, training 0.98x; the GRU
    // 0.97-1.00x (once 1.12x), the RNN 0.94-1.06x, bfloat16 0.98-1.01x. Intel's cores
    // (full-width FMAs too) were measured without it.
    // The rider reading w_ih as it lies reads 16 of its rows at once: rows a multiple of 4 KB
    // apart fall into one set of L1 (64 sets of 64-byte lines, 8 ways on Zen 4) and evict each
    // other: (50,1,1024,256) inference ran 0.69x; at I = 512 and 768 1.00-1.08x.
#if SEQKERN_X86
    const bool aliasing = s.I * static_cast<int64_t>(sizeof(T)) % kRowRiderAliasingBytes == 0;
    const bool panels = bf16 || (kept && kept->data());  // else it reads w_ih as it lies
    riding_ = std::is_same_v<T, float> && team_ && s.B == 1 &&
              (panels || (pairwise_ && !aliasing)) && w_step.riding() &&
              s.T >= 2 * (panels ? kPanelRiderRows : kRowRiderRows) &&
              avx512_cores() == Avx512Cores::zen4;
    if (riding_) {
      bf16_ = bf16;
      riders_.resize(get_num_threads());
      for (Rider& rd : riders_)
        rd.reads = bf16 ? Rider::bf16_panels : panels ? Rider::panels : Rider::rows;
    }
#endif
  }

  // Whether the time loop's products of a slice's rows give each row its bits alone (see
  // PackedMatrix::rows_alone).
  bool rows_alone() const { return !w_ || w_->rows_alone(); }

  // Steps an inference buffer of pre-activations holds: every step, or the current one.
  int64_t steps() const { return w_ && !team_ && !up_front_ ? 1 : s_.T; }

  // Whether each step's recurrent products go to a buffer of their own (B rows, in cache), which
  // the cells add to pre, instead of onto pre. Where a batch split's float pre-activations were
  // all projected before the time loop (all_steps), they lie in T*B rows mostly out of cache: a
  // product adding onto them read each tile of C from memory at the tile's end, with nothing to
  // hide the wait, where a cell streams them in order. (The GRU's cell, reset after, always adds
  // its product, which its n gate needs apart; its loop had gained less over the projection up
  // front than the LSTM's for this reason.) Paired per call on Zen 5, 2 threads, onto pre /
  // apart: LSTM inference (35,64,650,650) 1.055-1.083x, eval layer 1.077x, (100,32,650,650)
  // 1.055-1.070x, (50,64,1024,1024) 1.072-1.111x, (100,32,512,512) under Intel's 4 MB bound for
  // few rows 1.057x, (100,64,512,512) under a 4 MB bound 1.103x, training 1.01-1.02x; the RNN
  // (50,64,1400,1400) 1.018-1.030x; the GRU with reset before (35,64,650,650) 1.039x,
  // (50,64,1024,1024) 1.052x, (100,32,512,512) under Intel's bound 1.035x; (35,20,650,650),
  // whose 7 MB of pre fit in L3, 0.997-1.035x. At AVX2 (the same Zen 5) even: LSTM 0.99-1.01x,
  // eval 1.06x. On Zen 4: LSTM (35,64,650,650) 1.020-1.021x, eval 1.026x, (50,64,1024,1024)
  // 1.029-1.034x, (100,32,650,650) eval 1.016x, training 1.012x; the GRU with reset before
  // 1.004-1.030x, the RNN 1.003-1.009x; (100,64,512,512) 0.995x; at AVX2 0.995-1.017x. Not
  // where the loop projects: there pre_t is in cache, and the product apart lost 0-2% (LSTM
  // (50,1,256,256) 0.977x, the RNN 0.992x); and the sums of bfloat16's widened
  // projection up front must stay those of a sequence alone on a team, whose product adds onto
  // pre in the loop (test_bf16). Nor where the products go to BLAS (rows past the packed
  // kernels' bound): there `hp` is as large as a step of pre, and BLAS zeroes a C it is given
  // with beta = 0 in a pass of its own; apart lost 3-6% (LSTM (10,2000,64,256) 0.94x,
  // (10,2000,256,256) 0.96x, (20,1500,256,512) 0.97x).
  bool apart() const { return !team_ && !w_ && packed_step_; }

  // Up front: pre (T, B, GH) for every step; nothing when the time loop projects. With lengths
  // longest first of which at most kCompactShare ran, step by step over the rows that run (the
  // others' pre-activations are never read), on w_ih packed once: LSTM (100,64,512,512) with
  // lengths uniform in [T/2, T], inference 130.6-132.2 -> 125.9-127.9 ms (min of calls).
  void all_steps(T* pre, const int32_t* lengths) const {
    if ((w_ || pairwise_) && !up_front_) return;
    const StepRows rows(s_, lengths);
    if (up_front_ && !rows.compact()) {
      const int64_t n = s_.T * s_.B, chunks = (n + kWideProjectionRows - 1) / kWideProjectionRows;
      parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t r = c0 * kWideProjectionRows; r < std::min(n, c1 * kWideProjectionRows);
             r += kWideProjectionRows) {
          const int64_t m = std::min(kWideProjectionRows, n - r);
          w_->multiply(StepSlice{0, m, nullptr}, m, x_ + r * s_.I, s_.I, pre + r * GH_, GH_,
                       false);
        }
      });
      return;
    }
    if (!rows.compact()) {
      gemm<T>(false, true, s_.T * s_.B, GH_, s_.I, T(1), x_, s_.I, w_ih_, s_.I, T(0), pre, GH_);
      return;
    }
    std::optional<PackedMatrix<T>> packed;
    if (!w_) packed.emplace(w_ih_, s_.I, true, s_.I, GH_, s_, blocks_, kept_);
    const PackedMatrix<T>& w = w_ ? *w_ : *packed;
    parallel_for(s_.T, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        w.multiply(StepSlice{0, rows.rows(t), nullptr}, rows.rows(t), x_ + t * s_.B * s_.I, s_.I,
                   pre + t * s_.B * GH_, GH_, false);
    });
  }

  // In the time loop, before step t's recurrent product: this slice's share of x_t @ w_ih^T
  // into pre_t (B, GH), or with a team, at t = 0, of every step's (pre_t is then all of pre).
  void step(const StepSlice& slice, int64_t t, int64_t live, T* pre_t) const {
#if SEQKERN_X86
    if constexpr (std::is_same_v<T, float>) {
      if (riding_) return ride_step(slice, t, pre_t);
    }
#endif
    if ((!w_ && !pairwise_) || up_front_) return;
    if (!team_) {
      w_->multiply(slice, live, x_ + t * s_.B * s_.I, s_.I, pre_t, GH_, false);
      return;
    }
    if (t != 0) return;
    const int64_t rows = s_.T * s_.B;
#if SEQKERN_X86
    if constexpr (std::is_same_v<T, float>) {
      if (pairwise_) {  // the member's units of every block
        const int64_t width = GH_ / blocks_;
        const auto [u0, u1] = slice.units(width);
        avx512::packed_gemm_f32_pairwise(false, rows, s_.I, u1 - u0, x_, s_.I, w_ih_ + u0 * s_.I,
                                         s_.I, true, 1.0f, pre_t + u0, GH_, false, blocks_,
                                         width * s_.I, width);
        return;
      }
    }
#endif
    for (int64_t r = 0; r < rows; r += kProjectionRows)
      w_->multiply(slice, std::min(kProjectionRows, rows - r), x_ + r * s_.I, s_.I,
                   pre_t + r * GH_, GH_, false);
  }

  // The work step t's product of the member's units carries along (PackedMatrix::multiply), or
  // null.
  Rider* rider(const StepSlice& slice) const {
    return riding_ ? &riders_[slice.team->rank] : nullptr;
  }

 private:
#if SEQKERN_X86
  // Batch 1 on a team, the member's units of pre (T, GH), a block of rows at a time
  // (Rider::block_rows): the first block (and the rows past the last whole one) in step 0; each
  // later block during the steps of the block before it, a share of its units at each step,
  // which the step's product carries (Rider) and this finishes at the next step's start, before
  // that step's cell reads them.
  void ride_step(const StepSlice& slice, int64_t t, float* pre_t) const {
    float* pre = pre_t - t * GH_;  // (step t's row: the batch is one row)
    Rider& rd = riders_[slice.team->rank];
    const int64_t I = s_.I, width = GH_ / blocks_;
    const auto [u0, u1] = slice.units(width);
    if (t == 0) {
      rd.depth = kDepth;
      rd.K = I;
      if (rd.reads == Rider::bf16_panels) {
        thread_local std::vector<uint32_t> x16;  // the member's own: x rounded to bf16 pairs
        rd.K = rd.depth = rd.ldx = bf16_->pairs();  // (the products sum every pair at once)
        x16.resize(s_.T * rd.ldx);
        avx512bf16::round_rows(s_.T, I, x_, I, x16.data(), rd.ldx);
        rd.x = x16.data();
        rd.w = bf16_->data();
        rd.layout = PanelLayout{rd.K, bf16_->panels(), bf16_->group, blocks_};
      } else if (rd.reads == Rider::panels) {
        rd.x = x_;
        rd.ldx = I;
        rd.w = kept_->data();
        rd.layout = PanelLayout{I, (width + kPanelColumns - 1) / kPanelColumns, 1, blocks_};
      } else {
        thread_local Aligned<float> xt;  // the member's own: x transposed
        rd.ldx = (s_.T + kPanelColumns - 1) / kPanelColumns * kPanelColumns;
        xt.resize(I * rd.ldx);
        avx512::transpose_rows(s_.T, I, x_, I, xt.data(), rd.ldx);
        rd.x = xt.data();
        rd.w = w_ih_ + u0 * I;
        rd.ldw = I;
        rd.w_block = width * I;
      }
      rd.p0 = u0 / kPanelColumns;
      rd.c = pre + u0;
      rd.ldc = GH_;
      rd.c_block = width;
      rd.n = u1 - u0;
      rd.blocks = blocks_;
    } else {
      (rd.reads == Rider::bf16_panels ? avx512bf16::ride : avx512::ride)(rd);  // step t - 1's
    }
    const int64_t R = rd.block_rows(), whole = s_.T / R * R;  // rows in blocks
    // a block of rows' iterations, and a step's share of them
    const int64_t work = blocks_ * (u1 - u0) / rd.unit_columns() * rd.K, share = (work + R - 1) / R;
    if (t == 0) {
      // the step product's iterations: values of k (bf16: pairs) for each group of 8 panels
      const int64_t k = rd.reads == Rider::bf16_panels ? (s_.state() + 1) / 2 : s_.state();
      const int64_t step_iterations = blocks_ * (u1 - u0) / (8 * kPanelColumns) * k;
      rd.ratio = static_cast<int>(std::clamp<int64_t>(step_iterations / share, 1, 4));
      // The first rows, and those past the blocks, before the loop's first step, as the call
      // would have projected every row: the rider's kernel alone, on w_ih as it lies, had run
      // them 1-2% slower (LSTM, GRU and RNN inference at batch 1, Zen 4).
      for (const int64_t r0 : {int64_t{0}, whole}) {
        if (r0 >= s_.T) continue;
        const int64_t rows = std::min(R, s_.T - r0);
        float* c = pre + r0 * GH_ + u0;
        if (rd.reads == Rider::rows)
          avx512::packed_gemm_f32_pairwise(false, rows, I, rd.n, x_ + r0 * I, I, w_ih_ + u0 * I,
                                           I, true, 1.0f, c, GH_, false, blocks_, rd.w_block,
                                           width);
        else
          w_->multiply(slice, rows, x_ + r0 * I, I, pre + r0 * GH_, GH_, false);
      }
    }
    if (t % R == 0 && t + 2 * R <= whole) rd.start(t + R);
    rd.left = t % R == R - 1 ? work : share;
  }
#endif

  const RnnShape& s_;
  int64_t GH_, blocks_;
  const T *x_, *w_ih_;
  const F32Panels* kept_;
  bool team_;
  bool packed_step_;  // the recurrent products run on the packed kernels (not BLAS)
  std::optional<PackedMatrix<T>> w_;  // packed w_ih when the time loop projects
  bool pairwise_ = false;  // ... or unpacked: a team's one chunk of rows, packed pair by pair
  bool up_front_ = false;  // ... or bf16 w_ih, widened, projecting every step before it
  bool riding_ = false;  // ... or carried by the step products (ride_step)
  const Bf16Matrix* bf16_ = nullptr;  // w_ih in bfloat16, when riding on it
  mutable std::vector<Rider> riders_;  // a team member's each
};

// The rows the products after a backward time loop run over, and their inputs: x_t and h_{t-1}
// of each row (and optionally one more per-row array the forward kept, `extra`, n_extra values
// a row), in place for the plain layout, else gathered into one scratch array in the compact
// layout's row order: [x | h_{t-1} | extra] per row. The gradient of x goes to dx in place, or
// to the x columns of that array (once x is no longer read) and then to its rows of dx.
template <typename T>
class DeferredRows {
 public:
  DeferredRows(const RnnShape& s, const StepRows& rows, const T* x, const T* h0, const T* y,
               T* dx, const T* extra = nullptr, int64_t n_extra = 0, bool gather = false)
      : s_(s), rows_(rows), h0_(h0), y_(y), dx_(dx), n(rows.total()), x(x), ldx(s.I),
        extra(extra), ld_extra(n_extra) {
    if (!rows.compact() && !gather) return;
    const int64_t S = s.state();
    width_ = s.I + S + n_extra;
    packed_ = scratch<T>(2, n * width_);
    parallel_for(s.T, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const T* h = prev_h(t, h0, y, s.B * S);
        T* out = packed_ + rows.start(t) * width_;
        for (int64_t b = 0; b < rows.rows(t); ++b, out += width_) {
          std::copy_n(x + (t * s.B + b) * s.I, s.I, out);
          std::copy_n(h + b * S, S, out + s.I);
          if (n_extra) std::copy_n(extra + (t * s.B + b) * n_extra, n_extra, out + s.I + S);
        }
      }
    });
    this->x = packed_;
    ldx = width_;
    if (n_extra) {
      this->extra = packed_ + s.I + S;
      ld_extra = width_;
    }
  }

  // dw (GH, S) = sum over the rows of dg^T h_{t-1};  dg (n, GH) with leading dimension ldg.
  // A first state of zeros adds nothing (zero_state), unless its step's dg holds inf or NaN,
  // whose products with zeros are NaN: then its product is skipped, and the rest is written
  // with beta = 0 where it was added to zeros, the same bits.
  void hidden_grad(int64_t GH, const T* dg, int64_t ldg, T* dw) const {
    const int64_t S = s_.state();
    if (!packed_) {
      const bool zero = zero_state(h0_, s_.B * S) && finite_rows(dg, s_.B, GH, ldg);
      if (!zero) gemm<T>(true, false, GH, S, s_.B, T(1), dg, ldg, h0_, S, T(0), dw, S);
      if (s_.T > 1)
        gemm<T>(true, false, GH, S, (s_.T - 1) * s_.B, T(1), dg + s_.B * ldg, ldg, y_, S,
                zero ? T(0) : T(1), dw, S);
      else if (zero)
        std::fill(dw, dw + GH * S, T(0));
      return;
    }
    gemm<T>(true, false, GH, S, n, T(1), dg, ldg, packed_ + s_.I, width_, T(0), dw, S);
  }

  // dw_ih (GH, I) and dw_hh (GH, S) as one product over the gathered rows (gather = true):
  // dg^T [x | h_{t-1}] has BLAS pack dg once where two products packed it twice, and the one
  // for dw_ih, only I columns wide, is nearly all packing. Measured on Zen 3, 2 threads, T*B =
  // 3712, GH = 1024, I = 16, S = 256: 4.9 + 17.9 ms -> 18.9 ms, plus 0.5 ms gathering the rows.
  // Either may be null (not wanted): its part of the product is not copied out.
  void weight_grads(int64_t GH, const T* dg, int64_t ldg, T* dw_ih, T* dw_hh) const {
    const int64_t S = s_.state(), W = s_.I + S;
    // (GH, I + S), uninitialized; no scratch slot is free in every caller
    thread_local std::vector<T> both;
    both.resize(GH * W);
    const T* dw = both.data();
    gemm<T>(true, false, GH, W, n, T(1), dg, ldg, packed_, width_, T(0), both.data(), W);
    parallel_for(GH, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        if (dw_ih) std::copy_n(dw + r * W, s_.I, dw_ih + r * s_.I);
        if (dw_hh) std::copy_n(dw + r * W + s_.I, S, dw_hh + r * S);
      }
    });
  }

  // Where the rows of dx go: (dx, I), or, compact, the x columns of the gathered rows, which
  // must no longer be read then (after every product that reads x or extra).
  T* dx_rows() const { return rows_.compact() ? packed_ : dx_; }
  int64_t ld_dx() const { return rows_.compact() ? width_ : s_.I; }

  // Compact: dx (T, B, I) from the rows of dx_rows(), zeros for the rows that did not run.
  void finish() const {
    if (!rows_.compact()) return;
    parallel_for(s_.T, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const T* src = packed_ + rows_.start(t) * width_;
        T* out = dx_ + t * s_.B * s_.I;
        for (int64_t b = 0; b < s_.B; ++b, out += s_.I)
          if (b < rows_.rows(t))
            std::copy_n(src + b * width_, s_.I, out);
          else
            std::fill(out, out + s_.I, T(0));
      }
    });
  }

 private:
  const RnnShape& s_;
  const StepRows& rows_;
  const T *h0_, *y_;
  T* dx_;
  T* packed_ = nullptr;
  int64_t width_ = 0;

 public:
  const int64_t n;  // rows
  const T* x;       // x_t of each row, leading dimension ldx
  int64_t ldx;
  const T* extra;   // the extra array's row of each row, leading dimension ld_extra
  int64_t ld_extra;
};

// out (n) = column sums of a (rows, n), leading dimension lda, as one GEMV through BLAS.
template <typename T>
void column_sums(const T* a, int64_t rows, int64_t n, int64_t lda, T* out) {
  std::vector<T> ones(rows, T(1));
  gemm<T>(true, false, n, 1, rows, T(1), a, lda, ones.data(), 1, T(0), out, 1);
}

// Below this many rows (T*B, or the rows that ran), the deferred weight gradients take two
// products, dg^T x and dg^T h, without gathering [x | h_{t-1}] first: one pass over dg saves
// little then, and the gathering cost more (LSTM (50,1,256,256) backward 13% slower gathered,
// in a version that also allocated the product's output afresh at each call).
// Nor do they gather rows more than half as wide as dg's (the RNN's: G = 1), whose copy costs
// about what the second pass over dg saves (RNN (100,64,512,512) backward 3% slower).
constexpr int64_t kGatherRows = 1024;

// Up to this size of w_ih, the backward time loop computes dx (InputGrad) when its threads split
// the batch: w_ih then stays in cache beside w_hh.
constexpr int64_t kStepInputGradBytes = 128 << 10;

// dx_t = dg_t @ w_ih (B, I) inside the backward time loop, after the recurrent product, while
// dg_t is still in cache (RNN, LSTM), when active(). After the loop, one product of every
// step's dg with w_ih through BLAS packs all of dg (T*B*GH values) for a product only I columns
// wide. Measured on Zen 3, 2 threads, LSTM backward, paired medians: with I = 16, H = 256, (29,
// 128) 6% faster (with the gathered weight gradients); in the loop with w_ih of 1 MB and more,
// or with a team (small batches), up to 35% slower: w_ih streams from L3 at every step.
template <typename T>
class InputGrad {
 public:
  InputGrad(const RnnShape& s, const int32_t* lengths, int64_t GH, const T* w_ih, T* dx)
      : s_(s), lengths_(lengths), w_ih_(w_ih), dx_(dx),
        active_(dx && GH * s.I * static_cast<int64_t>(sizeof(T)) <= kStepInputGradBytes &&
                !column_split(s)),
        w_(w_ih, s.I, false, GH, active_ ? s.I : 0, s) {}

  bool active() const { return active_; }
  bool rows_alone() const { return w_.rows_alone(); }  // (as InputProjection's)
  const T* w_ih() const { return w_ih_; }
  T* dx() const { return dx_; }

  // This slice's share of dx_t's first `live` rows from dg_t (leading dimension ldg).
  void step(const StepSlice& slice, int64_t t, int64_t live, const T* dg_t, int64_t ldg) const {
    if (active_) w_.multiply(slice, live, dg_t, ldg, dx_ + t * s_.B * s_.I, s_.I, false);
  }

  // Active: zeros the rows no step wrote, those past the rows still running (lengths longest
  // first).
  void finish() const {
    const bool sorted = longest_first(lengths_, s_.B);
    for (int64_t t = 0; t < s_.T; ++t) {
      const int64_t live = live_rows(lengths_, sorted, t, s_.B);
      std::fill(dx_ + (t * s_.B + live) * s_.I, dx_ + (t + 1) * s_.B * s_.I, T(0));
    }
  }

 private:
  const RnnShape& s_;
  const int32_t* lengths_;
  const T* w_ih_;
  T* dx_;
  bool active_;
  const PackedMatrix<T> w_;  // op(W) = w_ih (GH, I); packs nothing (N = 0) when inactive
};

// The deferred products after the backward time loop, for cells whose input and recurrent
// pre-activation gradients are the same (RNN, LSTM):
//   dg (rows.total(), GH) -> dw_ih (GH, I), dw_hh (GH, S), db (GH), each null when not wanted
//   (frozen weights: their products are skipped), and the rest of dx (T, B, I): its unwritten
//   rows when the time loop computed it, else all of it from w_ih (GH, I); nothing when dx is
//   null (not wanted).
template <typename T>
void deferred_grads(const RnnShape& s, const StepRows& rows, int64_t GH, const T* x, const T* h0,
                    const T* y, const T* dg, T* dw_ih, T* dw_hh, T* db, const InputGrad<T>& input) {
  // (one of the two frozen, the product of both still runs where it would: the other's bits
  // then do not depend on it)
  const bool gather =
      (dw_ih || dw_hh) && rows.total() >= kGatherRows && 2 * (s.I + s.state()) <= GH;
  const DeferredRows<T> d(s, rows, x, h0, y, input.dx(), nullptr, 0, gather);
  if (gather) {
    d.weight_grads(GH, dg, GH, dw_ih, dw_hh);
  } else {
    if (dw_ih) gemm<T>(true, false, GH, s.I, d.n, T(1), dg, GH, d.x, d.ldx, T(0), dw_ih, s.I);
    if (dw_hh) d.hidden_grad(GH, dg, GH, dw_hh);
  }
  if (db) column_sums(dg, d.n, GH, GH, db);
  if (input.active()) {
    input.finish();
  } else if (input.dx()) {
    gemm<T>(false, false, d.n, s.I, GH, T(1), dg, GH, input.w_ih(), s.I, T(0), d.dx_rows(),
            d.ld_dx());
    d.finish();
  }
}

// Threads splitting a batch of equal lengths re-split its rows every kBalanceSteps steps, in
// proportion to the rows each of them ran per second in the steps before (an average, half on
// the latest), meeting at a barrier to do so. A shared machine slows each core on its own: the
// step product alone, one thread pinned to either core of a 2-core Emerald Rapids guest, read
// about 158 GFLOP/s or 109-121 from one second to the next, the cores independently, and an
// even split runs at the slower core's speed. Only where each row's sums do not depend on the
// thread or the rows beside it (every product of the step rows_alone()), so that the outputs keep
// their bits: on BLAS a re-split changes them (a slice cut to one row goes to GEMV), and a call
// would not repeat its own results. Paired there, 2 threads, even / balanced
// time, medians of 11-21 rounds: LSTM inference (200,32,128,128) 1.16x, (50,32,256,256) 1.13x,
// (100,64,256,256) 1.02x, (100,64,512,512) 1.03x, (35,20,650,650) 1.00x; RNN (100,64,512,512)
// 1.05x; LSTM training (100,64,256,256) 0.98x. Re-split at every step, the barrier and the
// lockstep cost more than they saved while both cores ran fast ((35,20,650,650) 0.89x).
constexpr int64_t kBalanceSteps = 8;

// Rows [edge(r), edge(r + 1)) of the batch for each of a team's members, from the speeds the
// members published at the last re-split (double-buffered: a member publishes into the other
// half while the others may still read this one).
class RowBalance {
 public:
  RowBalance(int64_t B, int members) : B_(B), n_(members), speed_(2 * members, 1.0) {}
  // Member `rank`'s rows in epoch e (one kBalanceSteps run of steps): an even split at e = 0.
  std::pair<int64_t, int64_t> rows(int64_t e, int rank) const {
    const double* v = speed_.data() + (e + 1) % 2 * n_;
    double total = 0;
    for (int r = 0; r < n_; ++r) total += v[r];
    const auto edge = [&](int r) {
      if (r == 0 || r == n_) return r == 0 ? int64_t{0} : B_;
      double before = 0;
      for (int q = 0; q < r; ++q) before += v[q];
      // every member keeps a row, so that each has a speed to publish
      return std::clamp<int64_t>(std::llround(B_ * before / total), r, B_ - (n_ - r));
    };
    return {edge(rank), edge(rank + 1)};
  }
  // Member `rank` ran `rows` rows for `steps` steps in `seconds` of epoch e.
  void publish(int64_t e, int rank, int64_t rows, int64_t steps, double seconds) {
    double& mine = speed_[e % 2 * n_ + rank];
    const double rate = rows * steps / std::max(seconds, 1e-9);
    mine = e == 0 ? rate : 0.5 * (speed_[(e + 1) % 2 * n_ + rank] + rate);
  }

 private:
  int64_t B_;
  int n_;
  std::vector<double> speed_;
};

// Whether each of a step's products (PackedMatrix, InputProjection, InputGrad) gives a row its
// bits whatever rows share it.
template <typename... Products>
bool rows_alone(const Products&... products) {
  return (products.rows_alone() && ...);
}

// The time loop of a layer: step(slice, t, live) for t = 0..T-1 (reverse: T-1..0) on every
// slice (see for_step_slices, or RowBalance where rebalance: the step's products rows_alone()),
// the slice's products descending every other step; live = the rows each step's product must
// cover (live_rows).
template <typename F>
void time_loop(const RnnShape& s, const int32_t* lengths, bool reverse, bool rebalance,
               F&& step) {
  const bool sorted = longest_first(lengths, s.B);
  const auto steps = [&](StepSlice slice, int64_t i0, int64_t i1) {  // the i-th steps of time
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = reverse ? s.T - 1 - i : i;
      slice.descending = i % 2 == 1;
      step(slice, t, live_rows(lengths, sorted, t, s.B));
    }
  };
  const int threads = get_num_threads();
  if (rebalance && !lengths && !serial(s) && !column_split(s) && s.T > kBalanceSteps &&
      s.B >= 2 * threads) {
    RowBalance balance(s.B, threads);
    run_team([&](Team& team) {
      for (int64_t e = 0, i0 = 0; i0 < s.T; ++e, i0 += kBalanceSteps) {
        const auto [b0, b1] = team.size == 1 ? std::pair<int64_t, int64_t>{0, s.B}
                                             : balance.rows(e, team.rank);
        const int64_t i1 = std::min(s.T, i0 + kBalanceSteps);
        const auto start = std::chrono::steady_clock::now();
        steps(StepSlice{b0, b1, nullptr}, i0, i1);
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        if (team.size == 1) continue;
        balance.publish(e, team.rank, b1 - b0, i1 - i0, took.count());
        team.sync();
      }
    });
    return;
  }
  for_step_slices(s, lengths, [&](StepSlice slice) { steps(slice, 0, s.T); });
}

}  // namespace detail
}  // namespace seqkern
