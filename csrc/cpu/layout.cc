// Block transposes between the book's weight layout and the kernels' (seqkern/layout.h). The
// book's layers convert at every training step (an optimizer has changed the weights); NumPy's
// strided transpose took 170 us for a 144 x 512 matrix, a tenth of chapter 7's training time.
#include "seqkern/layout.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "seqkern/threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace seqkern {

namespace {

constexpr int64_t kTile = 32;  // a tile of each side stays in L1 while it is transposed

// b[j][i] = sign * a[i][j] for i < rows, j < cols: a row stride lda, b row stride ldb.
template <typename T>
void transpose_tile(const T* a, int64_t lda, T* b, int64_t ldb, int64_t rows, int64_t cols,
                    T sign) {
  int64_t i = 0;
#if defined(__x86_64__)
  // 4 x 4 blocks in SSE registers (every x86-64 CPU has SSE): element by element, the reads or
  // the writes stride by a whole row, and at the book's row widths (4 KB and up) the 32 rows of
  // a tile then share one L1 set. A 256 x 1024 matrix on Zen 3, 2 threads, to the kernels'
  // layout: 0.92 ms element by element on one thread, 0.07-0.10 ms now.
  if constexpr (std::is_same_v<T, float>) {
    const __m128 s = _mm_set1_ps(sign);
    for (; i + 4 <= rows; i += 4) {
      int64_t j = 0;
      for (; j + 4 <= cols; j += 4) {
        __m128 r0 = _mm_loadu_ps(a + i * lda + j), r1 = _mm_loadu_ps(a + (i + 1) * lda + j);
        __m128 r2 = _mm_loadu_ps(a + (i + 2) * lda + j), r3 = _mm_loadu_ps(a + (i + 3) * lda + j);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(b + j * ldb + i, _mm_mul_ps(r0, s));
        _mm_storeu_ps(b + (j + 1) * ldb + i, _mm_mul_ps(r1, s));
        _mm_storeu_ps(b + (j + 2) * ldb + i, _mm_mul_ps(r2, s));
        _mm_storeu_ps(b + (j + 3) * ldb + i, _mm_mul_ps(r3, s));
      }
      for (; j < cols; ++j)
        for (int64_t k = i; k < i + 4; ++k) b[j * ldb + k] = sign * a[k * lda + j];
    }
  }
#endif
  for (; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) b[j * ldb + i] = sign * a[i * lda + j];
}

}  // namespace

template <typename T>
void convert_gate_blocks(const T* src, T* out, int64_t R, int64_t G, int64_t H,
                         const int64_t* order, int64_t negate, bool to_kernel) {
  const int64_t GH = G * H, row_tiles = (R + kTile - 1) / kTile;
  // Each task: one gate block's tiles of kTile rows of the book's layout.
  parallel_for(G * row_tiles, 1, [&](int64_t task0, int64_t task1) {
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t i = task / row_tiles, r0 = task % row_tiles * kTile;
      const T sign = i == negate ? T(-1) : T(1);
      const int64_t book_col = order[i] * H, kernel_row = i * H, r1 = std::min(R, r0 + kTile);
      for (int64_t u0 = 0; u0 < H; u0 += kTile) {
        const int64_t u1 = std::min(H, u0 + kTile);
        if (to_kernel) {
          transpose_tile(src + r0 * GH + book_col + u0, GH, out + (kernel_row + u0) * R + r0, R,
                         r1 - r0, u1 - u0, sign);
          continue;
        }
        // Four of the book's rows at a time: they are written a row stride apart, and more of
        // them would again share one L1 set (256 x 1024: 157 us with 32, 92 us with 4).
        for (int64_t r = r0; r < r1; r += 4)
          transpose_tile(src + (kernel_row + u0) * R + r, R, out + r * GH + book_col + u0, GH,
                         u1 - u0, std::min<int64_t>(4, r1 - r), sign);
      }
    }
  });
}

void swap_leading_axes(const void* src, void* out, int64_t A, int64_t B, size_t row) {
  const char* ps = static_cast<const char*>(src);
  char* po = static_cast<char*>(out);
  // Tasks of about 64 KB: NumPy's copy of a transposed view runs on one thread.
  const int64_t grain = std::max<int64_t>(1, (64 << 10) / std::max<size_t>(row, 1));
  parallel_for(A * B, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)  // row (i, j) of src to row (j, i) of out
      std::memcpy(po + ((r % B) * A + r / B) * row, ps + r * row, row);
  });
}

void take_rows(const void* src, void* out, int64_t A, int64_t B, size_t row, const int64_t* index,
               int64_t n) {
  const char* ps = static_cast<const char*>(src);
  char* po = static_cast<char*>(out);
  const int64_t grain = std::max<int64_t>(1, (64 << 10) / std::max<size_t>(row, 1));
  parallel_for(A * n, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)  // row (i, j) of out from row (i, index[j]) of src
      std::memcpy(po + r * row, ps + ((r / n) * B + index[r % n]) * row, row);
  });
}

template void convert_gate_blocks<float>(const float*, float*, int64_t, int64_t, int64_t,
                                         const int64_t*, int64_t, bool);
template void convert_gate_blocks<double>(const double*, double*, int64_t, int64_t, int64_t,
                                          const int64_t*, int64_t, bool);

}  // namespace seqkern
