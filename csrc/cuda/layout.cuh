// Device helpers around the recurrent kernels: a transpose and deterministic column sums.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace seqkern::cuda {

// out (cols, rows) = in (rows, cols)^T
template <typename T>
void transpose(cudaStream_t stream, const T* in, int64_t rows, int64_t cols, T* out);

// out (cols,) = sum over rows of in (rows, cols), in a fixed order (no atomics), so results
// repeat bit for bit. partial: column_sums_workspace(cols) elements of scratch.
template <typename T>
void column_sums(cudaStream_t stream, const T* in, int64_t rows, int64_t cols, T* out, T* partial);
int64_t column_sums_workspace(int64_t cols);

}  // namespace seqkern::cuda
