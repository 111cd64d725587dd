// Embedding forward (gather) and backward (scatter-add). Shapes: seqkern/embedding.h.
#include "seqkern/embedding.h"

#include <algorithm>
#include <cstring>

#include "seqkern/threads.h"

namespace seqkern {

template <typename T>
void embedding_forward(int64_t N, int64_t D, const T* weight, const int64_t* ids, T* out) {
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(D, 1));
  parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) std::memcpy(out + n * D, weight + ids[n] * D, D * sizeof(T));
  });
}

template <typename T>
void embedding_backward(int64_t N, int64_t D, const T* dy, const int64_t* ids,
                        int64_t padding_idx, T* dweight, int64_t zero_rows) {
  if (zero_rows > 0) {  // NumPy's dW[...] = 0 took 150 us for 8,000 x 100 floats on one thread
    const int64_t n = zero_rows * D;
    parallel_for(n, int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
      std::memset(dweight + i0, 0, (i1 - i0) * sizeof(T));
    });
  }
  // Threads own blocks of 16 columns (a cache line of floats), so no two write one line and
  // every column sums its rows in the order of n.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (D + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(N * kBlock, 1));
  parallel_for(blocks, grain, [&](int64_t k0, int64_t k1) {
    const int64_t j0 = k0 * kBlock, j1 = std::min(D, k1 * kBlock);
    for (int64_t n = 0; n < N; ++n) {
      if (ids[n] == padding_idx) continue;
      T* dst = dweight + ids[n] * D;
      const T* src = dy + n * D;
      for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
    }
  });
}

template void embedding_forward<float>(int64_t, int64_t, const float*, const int64_t*, float*);
template void embedding_forward<double>(int64_t, int64_t, const double*, const int64_t*, double*);
template void embedding_backward<float>(int64_t, int64_t, const float*, const int64_t*, int64_t,
                                        float*, int64_t);
template void embedding_backward<double>(int64_t, int64_t, const double*, const int64_t*, int64_t,
                                         double*, int64_t);

}  // namespace seqkern
