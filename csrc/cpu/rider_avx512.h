// The rider's loop over its panel units (Rider, packed_gemm.h), for the files built with
// AVX-512, and only for them: packed_gemm_avx512.cc (float panels, FMAs) and
// bf16_gemm_avx512.cc (bfloat16 pair panels, the CPU's bf16 dot products) each compile their
// own copy, with their flags, over their own panel rows (Ops). static, as avx512_tiles.h's.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "avx512_tiles.h"
#include "packed_gemm.h"

namespace seqkern::avx512_rider {

// The rider's sums into registers: those of the unit under way, or zeros at a unit's start.
template <int kAcc>
__attribute__((always_inline)) static inline void load_sums(const Rider& rd,
                                                            __m512 (&sums)[kAcc]) {
#pragma GCC unroll 16
  for (int j = 0; j < kAcc; ++j)
    sums[j] = rd.k > 0 ? _mm512_load_ps(rd.acc + j * kPanelColumns) : _mm512_setzero_ps();
}

// ... and back, when a product ends within a unit.
template <int kAcc>
__attribute__((always_inline)) static inline void save_sums(Rider& rd,
                                                            const __m512 (&sums)[kAcc]) {
  if (rd.k > 0)
#pragma GCC unroll 16
    for (int j = 0; j < kAcc; ++j) _mm512_store_ps(rd.acc + j * kPanelColumns, sums[j]);
}

// The rider's panel units (Rider::panels, Rider::bf16_panels: kPanelRiderRows rows x 2 panels,
// sums[2r + p] row r's panel p), up to rd.left iterations, each after kRatio values of the step's
// k (step(k), k from k on, below kc); kRatio 0: the rider alone. It stops where the rider has no
// iterations left, or the step too few values of k for one more. Ops: X and W (the types of
// X's values and of W's panel rows), kLine (W's values in a panel line), broadcast(x), load(w)
// and dot(sum, a, w) (sum + a * w for each of a line's columns).
template <typename Ops, int kRatio, typename Step>
__attribute__((always_inline)) static inline void panel_units(
    Rider& rd, __m512 (&sums)[2 * kPanelRiderRows], Step&& step, int64_t& k, int64_t kc) {
  constexpr int R = kPanelRiderRows;
  using X = typename Ops::X;
  using W = typename Ops::W;
  while (rd.left > 0 && !rd.done) {
    const int64_t m = rd.run_length(kc - k, kRatio);
    if (m == 0) break;
    const int64_t kk = rd.k0 + rd.k;
    const X* x = static_cast<const X*>(rd.x) + rd.r0 * rd.ldx + kk;
    const W* w = static_cast<const W*>(rd.w) +
                 rd.layout.offset(rd.q, rd.p0 + rd.u / kPanelColumns, kk) * Ops::kLine;
    const int64_t next = rd.layout.stride() * Ops::kLine, row = rd.layout.row() * Ops::kLine;
    for (int64_t i = 0; i < m; ++i) {
      if constexpr (kRatio > 0)
#pragma GCC unroll 4
        for (int j = 0; j < kRatio; ++j) step(k++);
      const auto w0 = Ops::load(w), w1 = Ops::load(w + next);
      const X* x_r = x;  // (stepped as the blocks' A, never past the last row)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const auto a = Ops::broadcast(*x_r);
        sums[2 * r] = Ops::dot(sums[2 * r], a, w0);
        sums[2 * r + 1] = Ops::dot(sums[2 * r + 1], a, w1);
        if (r + 1 < R) x_r += rd.ldx;
      }
      ++x;
      w += row;
    }
    rd.left -= m;
    if ((rd.k += m) < rd.unit_depth()) break;
    __m512 tile[R][2];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < 2; ++p) tile[r][p] = sums[2 * r + p];
    avx512_tiles::store_tile(tile, rd.c + rd.r0 * rd.ldc + rd.q * rd.c_block + rd.u, rd.ldc,
                             rd.n - rd.u, rd.k0 > 0);
#pragma GCC unroll 16
    for (int j = 0; j < 2 * R; ++j) sums[j] = _mm512_setzero_ps();
    rd.next_unit();
  }
}

}  // namespace seqkern::avx512_rider
