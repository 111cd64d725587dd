// small_k_gemm (small_k_gemm.h) on vectors of kW lanes. Written once and compiled once per SIMD
// level: small_k_gemm_avx2.cc (8 lanes) and small_k_gemm_avx512.cc (16); SEQKERN_ISA names each
// copy.
//
// A block of kRows rows of C by kVectors vectors of columns sums in registers (AVX2: 4 x 3 of
// 16 ymm registers; AVX-512: 6 x 4 of 32 zmm), each k loading kVectors vectors of B and
// broadcasting kRows values of A. Both operands are packed first, so that each block reads two
// sequential streams: A into blocks of kRows rows ([k][row], alpha applied), B into blocks of
// kVectors * kW columns ([k][column]), zero-padded. B's blocks were read in place first: rows
// of B (and of A) a multiple of 4 KB apart fell into one set of L1, and it ran at 16-20 GFLOP/s.
// Row blocks go across all of C's columns before the next rows start: going down all of M for
// each block of columns, as BLAS does, wrote C's rows 10 KB apart (dw_ih (2048, 2560)), a new
// page at each row, and ran 0.77x BLAS.
//
// Paired against BLAS in one process (_core.gemm, alternating rounds, medians), Ice Lake, beta =
// 0, BLAS / these kernels' time, (M, N, K):
// - AVX-512 against OpenBLAS's SkylakeX kernels, 2 threads: (2048, 2560, 32) 1.36-1.66x,
//   (2048, 2560, 64) 1.56x, (2048, 512, 32) 1.01-2.00x, (1024, 256, 32) 1.25-1.35x,
//   (512, 256, 32) 1.36x and up, (512, 512, 64) 1.18x, (1024, 256, 8) 1.43x; one thread
//   1.07-1.61x. Same bits as BLAS's.
// - AVX2 against its Haswell kernels (OPENBLAS_CORETYPE=Haswell), 2 threads: (2048, 2560, 32)
//   1.34-1.51x, (1024, 256, 32) 1.05-1.32x, (2048, 512, 32) 0.88-0.96x, (768, 256, 32)
//   0.97-0.98x. Blocks of 6 rows x 2 vectors there ran 0.75-0.86x at the middle sizes (8 loads
//   for 12 FMAs a step of k; 4 x 3 takes 7). Not measured on an AVX2-only CPU.
// Whole steps, torch's LSTMCell under seqkern.torch.optimize, training, 2 threads, before / after:
// (32, 2560, 512) 1.17-1.19x, (32, 256, 256) 1.09-1.14x, (8, 256, 256) 1.04-1.17x.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "packed_gemm.h"
#include "small_k_gemm.h"
#include "vector_math.h"

namespace seqkern {
namespace SEQKERN_ISA {

namespace {

constexpr int kRows = kW == 16 ? 6 : 4;
constexpr int kVectors = kW == 16 ? 4 : 3;
constexpr int64_t kBlock = kVectors * kW;  // columns of a block of B
// Row blocks that pass over each block of B while it is in L1.
constexpr int64_t kRowBlocks = 4;
// Packed B per chunk of columns: a chunk's blocks stay in L2 while every row block passes.
constexpr int64_t kChunkBytes = 256 << 10;

// a in every lane: one broadcast from memory. (splat's 0 + a is not a no-op, -0 + 0 being +0,
// so it costs an add before each broadcast.)
inline vf broadcast(const float* a) { return *a - vf{}; }

// C[0..R) x columns [0, n) (n <= kBlock) from a packed block of A (K x kRows) and one of B
// (K x kBlock). R is a template argument, and every loop over rows and vectors unrolled, so that
// the accumulators stay in registers through the stores (left to GCC, the stores' loops stayed
// rolled, the accumulators lived on the stack, zeroed there at each call: 10-20% of the time).
template <int R>
void block(int64_t K, const float* a, const float* b, int64_t n, bool accumulate, float* C,
           int64_t ldc) {
  vf acc[R][kVectors] = {};
  for (int64_t k = 0; k < K; ++k, a += kRows, b += kBlock) {
    vf bv[kVectors];
    for (int v = 0; v < kVectors; ++v) bv[v] = vload(b + v * kW);
    for (int r = 0; r < R; ++r) {
      const vf ar = broadcast(a + r);
      for (int v = 0; v < kVectors; ++v) acc[r][v] += ar * bv[v];
    }
  }
  if (n == kBlock) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) {
        float* c = C + r * ldc + v * kW;
        vstore(c, accumulate ? vload(c) + acc[r][v] : acc[r][v]);
      }
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float tail[kBlock];
    for (int v = 0; v < kVectors; ++v) vstore(tail + v * kW, acc[r][v]);
    float* c = C + r * ldc;
    for (int64_t j = 0; j < n; ++j) c[j] = accumulate ? c[j] + tail[j] : tail[j];
  }
}

// block<rows> for 1 <= rows <= kRows.
template <int R = kRows>
void block_rows(int64_t rows, int64_t K, const float* a, const float* b, int64_t n,
                bool accumulate, float* C, int64_t ldc) {
  if constexpr (R > 1) {
    if (rows < R) return block_rows<R - 1>(rows, K, a, b, n, accumulate, C, ldc);
  }
  block<R>(K, a, b, n, accumulate, C, ldc);
}

}  // namespace

void small_k_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // on 64-byte boundaries: a block row of B is whole cache lines (AVX-512: one per vector)
  thread_local std::vector<float, CacheLineAllocator<float>> pa, pb;
  const int64_t row_blocks = (M + kRows - 1) / kRows;
  pa.resize(row_blocks * K * kRows);
  for (int64_t i = 0; i < row_blocks; ++i) {
    const int64_t rows = std::min<int64_t>(kRows, M - i * kRows);
    float* out = pa.data() + i * K * kRows;
    for (int64_t k = 0; k < K; ++k, out += kRows) {
      const float* a = A + k * lda + i * kRows;
      for (int64_t r = 0; r < kRows; ++r) out[r] = r < rows ? alpha * a[r] : 0.0f;
    }
  }
  const int64_t columns = kChunkBytes / (K * int64_t{sizeof(float)});
  const int64_t chunk = std::max(kBlock, columns / kBlock * kBlock);
  pb.resize(std::min(chunk, (N + kBlock - 1) / kBlock * kBlock) * K);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t width = std::min(chunk, N - n0), blocks = (width + kBlock - 1) / kBlock;
    for (int64_t q = 0; q < blocks; ++q) {
      const int64_t n = std::min(kBlock, width - q * kBlock);
      float* out = pb.data() + q * K * kBlock;
      for (int64_t k = 0; k < K; ++k, out += kBlock) {
        std::memcpy(out, B + k * ldb + n0 + q * kBlock, n * sizeof(float));
        std::fill(out + n, out + kBlock, 0.0f);
      }
    }
    for (int64_t i0 = 0; i0 < row_blocks; i0 += kRowBlocks) {
      const int64_t i1 = std::min(row_blocks, i0 + kRowBlocks);
      for (int64_t q = 0; q < blocks; ++q) {
        const int64_t col = n0 + q * kBlock, n = std::min(kBlock, N - col);
        for (int64_t i = i0; i < i1; ++i)
          block_rows(std::min<int64_t>(kRows, M - i * kRows), K, pa.data() + i * K * kRows,
                     pb.data() + q * K * kBlock, n, accumulate, C + i * kRows * ldc + col, ldc);
      }
    }
  }
}

}  // namespace SEQKERN_ISA
}  // namespace seqkern
