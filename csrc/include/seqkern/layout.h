// Weights between the layout of "Deep Learning from Scratch 2" (seqkern.book: W (R, G*H), gate
// blocks side by side in the book's order) and the kernels' (torch's: W^T (G*H, R), blocks in
// torch's order).
#pragma once
#include <cstddef>
#include <cstdint>

namespace seqkern {

// G blocks of H columns. to_kernel: book (R, G*H) -> kernel (G*H, R) with
//   kernel[i*H + u][r] = sign_i * book[r][order[i]*H + u];
// else the inverse, kernel (G*H, R) -> book (R, G*H). sign_i = -1 for block i = negate (the
// GRU's update gate, which the book writes as z and the kernels as 1 - z), else 1; negate < 0
// for none. order (G) is a permutation; src and out must not overlap.
template <typename T>
void convert_gate_blocks(const T* src, T* out, int64_t R, int64_t G, int64_t H,
                         const int64_t* order, int64_t negate, bool to_kernel);

// out (B, A, row) = src (A, B, row) with its two leading axes swapped: rows of `row` bytes, both
// C-contiguous (seqkern.book's arrays between batch-major and time-major), on the threads.
void swap_leading_axes(const void* src, void* out, int64_t A, int64_t B, size_t row);

// out (A, n, row) with out[i][j] = src[i][index[j]] for src (A, B, row): rows of `row` bytes,
// both C-contiguous, each index in [0, B) (recurrent_stack's batch sorted longest first, and
// back), on the threads.
void take_rows(const void* src, void* out, int64_t A, int64_t B, size_t row, const int64_t* index,
               int64_t n);

}  // namespace seqkern
