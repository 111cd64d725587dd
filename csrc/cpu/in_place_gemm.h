// Products of up to a few dozen rows on B read where it lies, for gemm: C (M, N) = alpha * A (M,
// K) @ op(B) + beta * C with M up to kInPlaceRows, B of kInPlaceBytes or more, stored (K, N) or
// (N, K), or stored (N, K) from kInPlaceBytesNT with kInPlaceColumnsNT columns. AVX-512 only:
// measured on Ice Lake alone. (Internal to csrc/cpu.)
//
// BLAS packs all of B before a product, and with few rows of A it uses each packed value only M
// times: a decoder's step of 32 rows against an LSTMCell's w_ih (2048 x 2560, 20 MB), the
// backward's dx = dg @ w_ih, spends most of its time in that copy, which writes B's megabytes
// and reads them again. Here k runs in chunks of kInPlaceDepth rows of B; for each chunk, each
// slice of 32 columns (48 x 128 bytes) is copied into L1 and every block of rows passes over it.
// - B's rows lie one per page when they are long (10 KB), and a chunk's pages fit the first-level
//   TLB (64 entries on Ice Lake, Zen 3 and Zen 4): whole columns of K at a time missed it on
//   every row (0.29-0.38x BLAS at kInPlaceDepth 128-2048, 1.32-1.40x at 32-64).
// - The slices read in place, rows 4 KB or 10 KB apart crowded one or two sets of L1, so a
//   slice left L1 before the next block of rows reached it: 0.76-0.93x BLAS at the middle sizes.
//
// B stored (N, K) (the forward's x @ w_ih^T) is read 32 rows at a time along k, each 16 x 16 tile
// transposed in registers into the slice (in_place_gemm_nt); BLAS / these kernels' time, 21
// alternating rounds, (M, K, N): 2 threads (32, 2560, 2048) 1.17x, (32, 1024, 512) 1.87x, (24,
// 768, 768) 1.16x, (12, 2048, 256) 1.60x, (32, 1000, 600) 1.28x; one thread 1.16-1.63x. The
// cells' no_grad steps under optimize: LSTMCell (32, 2560, 512) 1.12x, (16, 1024, 1024) 1.42x,
// GRUCell (32, 2560, 512) 1.03x.
//
// B stored (K, N), paired in one process (_core.gemm), Ice Lake, 2 threads, BLAS / these
// kernels' time, (M, K, N):
// (32, 2048, 2560) 1.50-2.10x, (32, 10000, 512) 1.12-1.16x, (16, 1024, 1024) 1.10-1.42x, (8, 1024,
// 1024) 1.39-1.87x, (5, 1024, 1024) 1.69-1.98x, (32, 2048, 512) 0.92-1.30x (noisy). Not taken:
// 64 rows ((64, 2048, 512) 0.65-0.92x), B of 1 MB or less ((32, 1024, 256) 0.89-1.19x, (5, 256,
// 256) 0.45-0.83x). torch's LSTMCell training steps under optimize, before / after: (32, 2560,
// 512) 1.09x, (8, 1024, 1024) 1.17x, (16, 512, 512) 1.08x; GRUCell (32, 2560, 512) 1.10x.
#pragma once
#include <cstdint>

namespace seqkern {

constexpr int64_t kInPlaceRows = 32;
constexpr int64_t kInPlaceBytes = int64_t{2} << 20;
// B stored (N, K) goes in place from a smaller size when it has many columns: OpenBLAS packs it
// before each product (the forward's x @ w^T of a cell's inference step) unless the product is
// small enough for its unpacked small-matrix kernels, which a thread's share of fewer than 512
// columns can be. Paired on Ice Lake, 2 threads, BLAS / in place, (M, K, N): 256 KB-1 MB with N
// >= 512, 1.08-1.87x in 26 shapes ((32, 256, 1024) 1.23x, (9, 256, 512) 1.76x, (32, 64, 1024)
// 1.12x); with fewer columns as low as 0.48x ((32, 256, 64)) and 0.61x ((9, 512, 256)).
// torch's cells' no_grad steps under optimize: LSTMCell (32, 256, 256) 1.15x, (16, 256, 256)
// 1.14x, GRUCell (32, 256, 256) 1.08x, (12, 256, 256) 1.07x.
constexpr int64_t kInPlaceBytesNT = int64_t{256} << 10;
constexpr int64_t kInPlaceColumnsNT = 512;
// The same kernel for the products of a step on unpacked weights (PackedMatrix: a cell's step,
// whose weights change between calls), for any size where a gate block of W (its width times the
// rows) has more than kInPlaceOutputNT outputs. OpenBLAS multiplies without packing when a call
// has about 1200 outputs or fewer, and beats these kernels there (one thread, (M, K, N): (9,
// 256, 128) 0.66x, (12, 256, 32) 0.64x); above, where it packs, they win ((12, 256, 128) 1.51x,
// (16, 256, 128) 1.26x, (32, 256, 128) 1.29x, (11, 256, 256) 2.05x). Twice 1200 keeps each half
// of a two-thread team's columns above it. torch's cells under optimize, before / after, two
// runs (Ice Lake, 2 threads): inference LSTMCell (32, 256, 256) 1.21x, 1.48x; (16, 256, 256)
// 1.27x, 1.29x; (12, 512, 512) 1.36x, 1.28x; (32, 128, 128) 1.20x, 1.41x; GRUCell (32, 256, 256)
// 1.35x, 1.34x; (12, 256, 256) 1.60x, 1.52x; (24, 650, 650) 1.13x, 1.09x; training 1.02-1.25x.
constexpr int64_t kInPlaceOutputNT = 2400;
// ... and from 33 up to kInPlaceStepRows rows there. One product alone is even with OpenBLAS
// there (one thread, (M, K, N): (48, 256, 128) 0.99x, (64, 256, 256) 1.01x, (96, 256, 128)
// 0.94x, (64, 650, 325) 1.06x), but a step runs one product per gate block on the same rows,
// which OpenBLAS packed again for each. torch's cells' no_grad steps, before / after, two runs:
// LSTMCell (64, 256, 256) 1.14x, 1.08x; (48, 256, 256) 1.15x, 1.10x; (64, 128, 128) 1.10x,
// 1.05x; (40, 512, 512) 1.11x, 1.00x; GRUCell (64, 256, 256) 1.18x, 1.15x; (80, 128, 128) 0.95x,
// 1.08x; at H = 650 (a member's weights from L3) 0.98-1.05x; training steps 0.94-1.10x.
constexpr int64_t kInPlaceStepRows = 96;
constexpr int64_t kInPlaceDepth = 48;
constexpr int64_t kInPlaceBlockRows = 12;  // rows of A per block of accumulators

namespace avx512 {
// A (M, K) (rows lda apart) times alpha, in the order in_place_gemm reads it: chunk by chunk
// of k, blocks of 12 rows, each [k][row], zero-padded; into the calling thread's buffer, which
// its next call overwrites (the pool's threads may read it meanwhile).
const float* in_place_pack_rows(int64_t M, int64_t K, float alpha, const float* A, int64_t lda);
// Columns [n0, n1) of C (M, N) = A @ B (K, N) + beta * C (M >= 1: gemm takes up to
// kInPlaceRows, PackedMatrix up to kInPlaceStepRows), A packed by in_place_pack_rows (alpha in
// it), rows of B ldb apart. C is not read when beta is 0. Each value of C sums k in order, one
// FMA at a time, so it does not depend on M, on the columns around it or on the split between
// threads.
void in_place_gemm(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* packed,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// The same with B stored (N, K) (W, rows ldw apart): C = A @ W^T, columns [n0, n1) of C being
// rows of W. Each 32 rows of W are read along k, 16 x 16 tiles transposed into the slices.
// from_memory (W of kFromMemoryBytes or more in all, few_rows_gemm.h): each tile's lines of the
// next 32 rows are fetched into L1 as it is read, so that W comes in its order, one stream, where
// 32 rows side by side ran 1.17-1.60x slower from memory (2 threads, 9-32 rows against (50000,
// 256) and (33278, 650)); in cache the fetches cost 4-5%.
void in_place_gemm_nt(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* packed,
                      const float* W, int64_t ldw, float beta, float* C, int64_t ldc,
                      bool from_memory);
}  // namespace avx512

}  // namespace seqkern
