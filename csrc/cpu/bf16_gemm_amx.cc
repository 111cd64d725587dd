// The bfloat16 products on Intel's AMX tiles (AMX-BF16): built with AMX-TILE and AMX-BF16, called
// only where bf16_amx() holds (a CPU with AMX whose OS lets this process use its tile state).
// One tdpbf16ps multiplies a tile of 16 rows x 16 pairs of A by a tile of 16 pair rows of a panel
// (16 columns: the pair panels' own layout, read where they lie) into 16 x 16 float sums: 8,192
// multiply-adds where one AVX-512 bf16 dot product does 32. On Sapphire Rapids those dot
// products ran at half the float FMAs' rate, so the bf16 layers were slower than float32 there.
//
// Matrices packed for this route hold their pair rows padded with zeros to whole tiles (16 pair
// rows, 32 values of k), and A's rounded rows are padded alike (and to whole tiles of rows), so
// every tile is full and no tile configuration changes within a call. Each value of C sums its
// row's products tile by tile in k's order, so it does not depend on the rows or the columns
// around it, nor on the thread that computes it.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "packed_gemm.h"

namespace seqkern::amx {

namespace {

constexpr int64_t kTileRows = 16;   // rows of A (and of C) in a tile
constexpr int64_t kTilePairs = 16;  // pairs of k in a tile of A, pair rows of W in a tile of W
constexpr int64_t kTileBytes = 64;  // a tile row: 16 pairs of A, 16 columns of a panel or of C

// The tile registers' shapes (palette 1): every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = kTileBytes, c.rows[t] = kTileRows;
  _tile_loadconfig(&c);
}

// A 16 x 16 tile of C's sums, staged through `tile` where it is cut by the last rows or columns.
struct CTile {
  float* c;
  int64_t ldc, rows, cols;
  bool whole() const { return rows == kTileRows && cols == kTileRows; }
  // What C holds, into tile (zeros past the valid part).
  void stage(float* tile) const {
    std::memset(tile, 0, kTileRows * kTileRows * sizeof(float));
    for (int64_t r = 0; r < rows; ++r) std::memcpy(tile + r * kTileRows, c + r * ldc, cols * 4);
  }
  void unstage(const float* tile) const {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(c + r * ldc, tile + r * kTileRows, cols * 4);
  }
};

// Sums tiles 0-3 (C(i, j) in tile 2i + j), A's row tiles in 4 and 5, W's panels in 6 and 7;
// literal numbers, as the intrinsics take them. M2, N2: a second tile of rows, of panels.
// a[i]: row tile i's rounded rows (`a_stride` bytes apart); w[j]: panel j's pair row 0
// (`w_stride` bytes from a pair row to the next); `tiles` steps of 16 pair rows.
#define SEQKERN_LOAD_C(t, i, j)                                                         \
  if (!accumulate)                                                                      \
    _tile_zero(t);                                                                      \
  else if (c[i][j].whole())                                                             \
    _tile_loadd(t, c[i][j].c, c[i][j].ldc * 4);                                         \
  else {                                                                                \
    c[i][j].stage(staged[t]);                                                           \
    _tile_loadd(t, staged[t], kTileBytes);                                              \
  }
#define SEQKERN_STORE_C(t, i, j)                                                        \
  if (c[i][j].whole())                                                                  \
    _tile_stored(t, c[i][j].c, c[i][j].ldc * 4);                                        \
  else {                                                                                \
    _tile_stored(t, staged[t], kTileBytes);                                             \
    c[i][j].unstage(staged[t]);                                                         \
  }

template <bool M2, bool N2>
void block(int64_t tiles, const uint32_t* const (&a)[2], int64_t a_stride,
           const uint16_t* const (&w)[2], int64_t w_stride, const CTile (&c)[2][2],
           bool accumulate) {
  alignas(64) float staged[4][kTileRows * kTileRows];
  SEQKERN_LOAD_C(0, 0, 0)
  if constexpr (N2) { SEQKERN_LOAD_C(1, 0, 1) }
  if constexpr (M2) { SEQKERN_LOAD_C(2, 1, 0) }
  if constexpr (M2 && N2) { SEQKERN_LOAD_C(3, 1, 1) }
  const int64_t w_step = kTilePairs * w_stride / 2;  // uint16 values from a tile of W to the next
  for (int64_t t = 0; t < tiles; ++t) {
    _tile_loadd(4, a[0] + t * kTilePairs, a_stride);
    _tile_loadd(6, w[0] + t * w_step, w_stride);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (M2) {
      _tile_loadd(5, a[1] + t * kTilePairs, a_stride);
      _tile_dpbf16ps(2, 5, 6);
    }
    if constexpr (N2) {
      _tile_loadd(7, w[1] + t * w_step, w_stride);
      _tile_dpbf16ps(1, 4, 7);
      if constexpr (M2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  SEQKERN_STORE_C(0, 0, 0)
  if constexpr (N2) { SEQKERN_STORE_C(1, 0, 1) }
  if constexpr (M2) { SEQKERN_STORE_C(2, 1, 0) }
  if constexpr (M2 && N2) { SEQKERN_STORE_C(3, 1, 1) }
}

#undef SEQKERN_LOAD_C
#undef SEQKERN_STORE_C

}  // namespace

int64_t tile_pairs(int64_t K) {
  const int64_t pairs = (K + 1) / 2;
  return (pairs + kTilePairs - 1) / kTilePairs * kTilePairs;
}

void bf16_gemm(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
               const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
               ColumnBlocks blocks) {
  if (M <= 0 || N <= 0) return;
  const int64_t pairs = tile_pairs(K), row_tiles = (M + kTileRows - 1) / kTileRows;
  const PanelLayout layout{pairs, blocks.panels, blocks.group, blocks.count};
  // A rounded, in whole tiles of zeros past its rows and its pairs
  thread_local std::vector<uint32_t> a16;
  a16.assign(row_tiles * kTileRows * pairs, 0);
  avx2::round_bf16_rows(M, K, A, lda, a16.data(), pairs);
  const int64_t a_stride = pairs * 4, w_stride = layout.row() * kPairRow * 2;
  const int64_t panels = (N + kPanelColumns - 1) / kPanelColumns, tiles = pairs / kTilePairs;
  configure_tiles();
  for (int64_t q = 0; q < blocks.count; ++q)
    for (int64_t p = 0; p < panels; p += 2) {  // two panels of W stay in L1 for every row tile
      const bool n2 = p + 1 < panels;
      const uint16_t* const w[2] = {
          packed + layout.offset(q, blocks.first + p, 0) * kPairRow,
          n2 ? packed + layout.offset(q, blocks.first + p + 1, 0) * kPairRow : nullptr};
      for (int64_t i = 0; i < row_tiles; i += 2) {
        const bool m2 = i + 1 < row_tiles;
        const uint32_t* const a[2] = {a16.data() + i * kTileRows * pairs,
                                      a16.data() + (i + m2) * kTileRows * pairs};
        CTile c[2][2];
        for (int r = 0; r < 2; ++r)
          for (int j = 0; j < 2; ++j) {
            const int64_t row = (i + r) * kTileRows, col = (p + j) * kPanelColumns;
            c[r][j] = CTile{C + q * blocks.c_stride + row * ldc + col, ldc,
                            std::clamp<int64_t>(M - row, 0, kTileRows),
                            std::clamp<int64_t>(N - col, 0, kTileRows)};
          }
        if (m2 && n2)
          block<true, true>(tiles, a, a_stride, w, w_stride, c, accumulate);
        else if (m2)
          block<true, false>(tiles, a, a_stride, w, w_stride, c, accumulate);
        else if (n2)
          block<false, true>(tiles, a, a_stride, w, w_stride, c, accumulate);
        else
          block<false, false>(tiles, a, a_stride, w, w_stride, c, accumulate);
      }
    }
  _tile_release();  // the tile state off again: lighter context switches
}

}  // namespace seqkern::amx
