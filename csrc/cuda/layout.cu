#include "check.cuh"
#include "layout.cuh"

namespace seqkern::cuda {
namespace {

constexpr int kSide = 32;  // transpose tile; 32 x 8 threads, each moving 4 elements

template <typename T>
__global__ void transpose_tile(const T* __restrict__ in, int64_t rows, int64_t cols,
                               T* __restrict__ out) {
  __shared__ T tile[kSide][kSide + 1];
  const int64_t r0 = int64_t(blockIdx.y) * kSide, c0 = int64_t(blockIdx.x) * kSide;
  for (int i = threadIdx.y; i < kSide; i += blockDim.y) {
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kSide; i += blockDim.y) {
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) out[c * rows + r] = tile[threadIdx.x][i];
  }
}

// Column sums in two passes. Pass one: block (x, y) sums every kSlices-th row from y for 32
// columns, 8 threads a column, into partial[y][col]. Pass two adds the kSlices partials.
constexpr int kSlices = 64, kColumns = 32, kLanes = 8;

template <typename T>
__global__ void column_partials(const T* __restrict__ in, int64_t rows, int64_t cols,
                                T* __restrict__ partial) {
  __shared__ T part[kLanes][kColumns];
  const int64_t col = int64_t(blockIdx.x) * kColumns + threadIdx.x;
  T sum = 0;
  if (col < cols)
    for (int64_t r = int64_t(blockIdx.y) * kLanes + threadIdx.y; r < rows; r += kSlices * kLanes)
      sum += in[r * cols + col];
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    for (int l = 1; l < kLanes; ++l) sum += part[l][threadIdx.x];
    partial[blockIdx.y * cols + col] = sum;
  }
}

template <typename T>
__global__ void add_partials(const T* __restrict__ partial, int64_t cols, T* __restrict__ out) {
  const int64_t col = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= cols) return;
  T sum = 0;
  for (int s = 0; s < kSlices; ++s) sum += partial[s * cols + col];
  out[col] = sum;
}

}  // namespace

template <typename T>
void transpose(cudaStream_t stream, const T* in, int64_t rows, int64_t cols, T* out) {
  const dim3 grid(blocks_for(cols, kSide), blocks_for(rows, kSide)), block(kSide, 8);
  transpose_tile<T><<<grid, block, 0, stream>>>(in, rows, cols, out);
  check_launch("transpose");
}

int64_t column_sums_workspace(int64_t cols) { return kSlices * cols; }

template <typename T>
void column_sums(cudaStream_t stream, const T* in, int64_t rows, int64_t cols, T* out,
                 T* partial) {
  const dim3 grid(blocks_for(cols, kColumns), kSlices), block(kColumns, kLanes);
  column_partials<T><<<grid, block, 0, stream>>>(in, rows, cols, partial);
  check_launch("column_partials");
  add_partials<T><<<blocks_for(cols, 256), 256, 0, stream>>>(partial, cols, out);
  check_launch("add_partials");
}

template void transpose<float>(cudaStream_t, const float*, int64_t, int64_t, float*);
template void transpose<double>(cudaStream_t, const double*, int64_t, int64_t, double*);
template void column_sums<float>(cudaStream_t, const float*, int64_t, int64_t, float*, float*);
template void column_sums<double>(cudaStream_t, const double*, int64_t, int64_t, double*,
                                  double*);

}  // namespace seqkern::cuda
