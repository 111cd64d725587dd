// The bfloat16 products on Intel's AMX tiles (AMX-BF16): built with AMX-TILE and AMX-BF16, called
// only where bf16_amx() holds (a CPU with AMX whose OS lets this process use its tile state).
// One tdpbf16ps multiplies a tile of 16 rows x 16 pairs of A by a tile of 16 pair rows of a panel
// (16 columns: the pair panels' own layout, read where they lie) into 16 x 16 float sums: 8,192
// multiply-adds where one AVX-512 bf16 dot product does 32. On Sapphire Rapids those dot
// products ran at half the float FMAs' rate, so the bf16 layers were slower than float32 there.
//
// Matrices packed for this route hold their pair rows padded with zeros to whole tiles (16 pair
// rows, 32 values of k), and A's rounded rows are padded alike. Each value of C sums its row's
// products tile by tile in k's order, so it does not depend on the rows or the columns around
// it, nor on the thread that computes it.
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
constexpr int64_t kNpMax = 4;       // panels a block of one row tile takes

// The tile registers' shapes (palette 1): each tile's rows and bytes a row.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// The tiles' shapes for blocks of two row tiles of rows0 and rows1 rows, or with rows1 = 0, of
// one (the tiles as `block` uses them): a tile of fewer rows loads and multiplies only those (a
// product of one row in 16-row tiles, zeros padding the rest: 14.6 us; in a 1-row tile 5.5, one
// thread, K = 256, N = 1024). W's tiles: 16 pair rows of 64 bytes.
void configure_tiles(int64_t rows0, int64_t rows1) {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = kTileBytes, c.rows[t] = kTileRows;
  const auto r0 = static_cast<uint8_t>(rows0), r1 = static_cast<uint8_t>(rows1);
  if (rows1)
    c.rows[0] = c.rows[1] = c.rows[4] = r0, c.rows[2] = c.rows[3] = c.rows[5] = r1;
  else
    c.rows[0] = c.rows[1] = c.rows[2] = c.rows[3] = c.rows[4] = r0;
  _tile_loadconfig(&c);
}

// A tile of C's sums (its rows as the tiles are configured), staged through `tile` where it is
// cut by the last columns.
struct CTile {
  float* c;
  int64_t ldc, rows, cols;
  bool whole() const { return cols == kTileRows; }
  // What C holds, into tile (zeros past the valid part).
  void stage(float* tile) const {
    std::memset(tile, 0, kTileRows * kTileRows * sizeof(float));
    for (int64_t r = 0; r < rows; ++r) std::memcpy(tile + r * kTileRows, c + r * ldc, cols * 4);
  }
  void unstage(const float* tile) const {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(c + r * ldc, tile + r * kTileRows, cols * 4);
  }
};

// A block of C's tiles: its rows' sums over every pair of k, tile by tile in k's order. Tile
// numbers are literals, as the intrinsics take them. Two row tiles (M2): sums C(i, j) in tile
// 2i + j, A's row tiles in 4 and 5, W's panels in 6 and 7, NP up to 2. One row tile: sums C(0,
// j) in tile j, A in 4, W's panels in 5, 6, 7 and 5 again, NP up to 4: four chains of dependent
// dot products in flight instead of two (one thread, K = 256, N = 1024, one row: 4.8-5.5 ->
// 4.75-5.1 us; layers in eval(precision="bfloat16"), 2 threads, LSTM (50,8,256,256) 1.00 ->
// 0.81 ms).
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

template <bool M2, int NP>
void block(int64_t tiles, const uint32_t* const (&a)[2], int64_t a_stride,
           const uint16_t* const (&w)[4], int64_t w_stride, const CTile (&c)[2][4],
           bool accumulate) {
  static_assert(NP >= 1 && NP <= (M2 ? 2 : 4));
  alignas(64) float staged[4][kTileRows * kTileRows];
  const int64_t w_step = kTilePairs * w_stride / 2;  // uint16 values from a tile of W to the next
  if constexpr (M2) {
    SEQKERN_LOAD_C(0, 0, 0)
    SEQKERN_LOAD_C(2, 1, 0)
    if constexpr (NP == 2) {
      SEQKERN_LOAD_C(1, 0, 1)
      SEQKERN_LOAD_C(3, 1, 1)
    }
    for (int64_t t = 0; t < tiles; ++t) {
      _tile_loadd(4, a[0] + t * kTilePairs, a_stride);
      _tile_loadd(6, w[0] + t * w_step, w_stride);
      _tile_dpbf16ps(0, 4, 6);
      _tile_loadd(5, a[1] + t * kTilePairs, a_stride);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (NP == 2) {
        _tile_loadd(7, w[1] + t * w_step, w_stride);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
    SEQKERN_STORE_C(0, 0, 0)
    SEQKERN_STORE_C(2, 1, 0)
    if constexpr (NP == 2) {
      SEQKERN_STORE_C(1, 0, 1)
      SEQKERN_STORE_C(3, 1, 1)
    }
  } else {
    SEQKERN_LOAD_C(0, 0, 0)
    if constexpr (NP > 1) { SEQKERN_LOAD_C(1, 0, 1) }
    if constexpr (NP > 2) { SEQKERN_LOAD_C(2, 0, 2) }
    if constexpr (NP > 3) { SEQKERN_LOAD_C(3, 0, 3) }
    for (int64_t t = 0; t < tiles; ++t) {
      _tile_loadd(4, a[0] + t * kTilePairs, a_stride);
      _tile_loadd(5, w[0] + t * w_step, w_stride);
      _tile_dpbf16ps(0, 4, 5);
      if constexpr (NP > 1) {
        _tile_loadd(6, w[1] + t * w_step, w_stride);
        _tile_dpbf16ps(1, 4, 6);
      }
      if constexpr (NP > 2) {
        _tile_loadd(7, w[2] + t * w_step, w_stride);
        _tile_dpbf16ps(2, 4, 7);
      }
      if constexpr (NP > 3) {
        _tile_loadd(5, w[3] + t * w_step, w_stride);
        _tile_dpbf16ps(3, 4, 5);
      }
    }
    SEQKERN_STORE_C(0, 0, 0)
    if constexpr (NP > 1) { SEQKERN_STORE_C(1, 0, 1) }
    if constexpr (NP > 2) { SEQKERN_STORE_C(2, 0, 2) }
    if constexpr (NP > 3) { SEQKERN_STORE_C(3, 0, 3) }
  }
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
  const int64_t pairs = tile_pairs(K);
  const PanelLayout layout{pairs, blocks.panels, blocks.group, blocks.count};
  thread_local std::vector<uint32_t> a16;  // A rounded, zeros past its pairs
  a16.assign(M * pairs, 0);
  avx2::round_bf16_rows(M, K, A, lda, a16.data(), pairs);
  const int64_t a_stride = pairs * 4, w_stride = layout.row() * kPairRow * 2;
  const int64_t panels = (N + kPanelColumns - 1) / kPanelColumns, tiles = pairs / kTilePairs;
  // Blocks of two whole row tiles, then the rows left (1-31) in a block of their own shape.
  const int64_t whole = M / (2 * kTileRows) * (2 * kTileRows), left = M - whole;
  for (int pass = 0; pass < 2; ++pass) {
    const int64_t r0 = pass ? whole : 0, r1 = pass ? M : whole;
    if (r1 <= r0) continue;
    const int64_t rows0 = pass ? std::min(left, kTileRows) : kTileRows;
    const int64_t rows1 = pass ? left - rows0 : kTileRows;
    configure_tiles(rows0, rows1);
    const int64_t step = rows1 ? 2 : kNpMax;  // panels a block takes
    for (int64_t q = 0; q < blocks.count; ++q)
      for (int64_t p = 0; p < panels; p += step) {  // its panels stay in L1 for every row tile
        const int64_t np = std::min(step, panels - p);
        const uint16_t* w[4] = {};
        for (int64_t j = 0; j < np; ++j)
          w[j] = packed + layout.offset(q, blocks.first + p + j, 0) * kPairRow;
        for (int64_t row = r0; row < r1; row += 2 * kTileRows) {
          const uint32_t* const a[2] = {
              a16.data() + row * pairs, a16.data() + (rows1 ? row + kTileRows : row) * pairs};
          CTile c[2][4];
          for (int i = 0; i < (rows1 ? 2 : 1); ++i)
            for (int64_t j = 0; j < np; ++j) {
              const int64_t col = (p + j) * kPanelColumns;
              c[i][j] = CTile{C + q * blocks.c_stride + (row + i * kTileRows) * ldc + col, ldc,
                              i ? rows1 : rows0, std::min<int64_t>(N - col, kTileRows)};
            }
          if (rows1)
            (np == 2 ? block<true, 2> : block<true, 1>)(tiles, a, a_stride, w, w_stride, c,
                                                         accumulate);
          else
            (np == 4   ? block<false, 4>
             : np == 3 ? block<false, 3>
             : np == 2 ? block<false, 2>
                       : block<false, 1>)(tiles, a, a_stride, w, w_stride, c, accumulate);
        }
      }
  }
  _tile_release();  // the tile state off again: lighter context switches
}

}  // namespace seqkern::amx
