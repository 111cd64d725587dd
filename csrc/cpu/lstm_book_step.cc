// One LSTM step on weights in the layout of "Deep Learning from Scratch 2" (seqkern.book).
// Generation calls a layer one step at a time with one sequence; converting the book's weights
// to the kernels' layout (or checking that the last conversion still holds) read them twice
// more than the step itself, and such a step took as long as the book's NumPy code. Here the
// products read Wx and Wh where they are (BLAS's GEMV streams their rows), and only the 4H
// pre-activations of each row are put in the kernels' gate order for the shared cell.
#include <cstring>
#include <vector>

#include "seqkern/activations.h"
#include "seqkern/gemm.h"
#include "seqkern/lstm.h"

namespace seqkern {

template <typename T>
void lstm_book_step(int64_t N, int64_t D, int64_t H, const T* x, const T* h, const T* c,
                    const T* Wx, const T* Wh, const T* b, T* h_next, T* c_next, T* gates) {
  const int64_t G = 4 * H;
  // The book's gate blocks f, g, i, o are the kernels' blocks 1, 2, 0, 3 (i, f, g, o).
  constexpr int kBlock[4] = {1, 2, 0, 3};
  std::vector<T> pre(N * G), bias(G);
  gemm<T>(false, false, N, G, D, T(1), x, D, Wx, G, T(0), pre.data(), G);
  gemm<T>(false, false, N, G, H, T(1), h, H, Wh, G, T(1), pre.data(), G);
  for (int q = 0; q < 4; ++q) std::memcpy(&bias[kBlock[q] * H], b + q * H, H * sizeof(T));
  for (int64_t n = 0; n < N; ++n) {
    T* g = gates + n * G;
    for (int q = 0; q < 4; ++q)
      std::memcpy(g + kBlock[q] * H, &pre[n * G + q * H], H * sizeof(T));
    lstm_cell<T>(H, 0, H, bias.data(), g, c + n * H, c_next + n * H, h_next + n * H, true);
  }
}

template void lstm_book_step<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                    const float*, const float*, const float*, const float*,
                                    float*, float*, float*);
template void lstm_book_step<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                     const double*, const double*, const double*,
                                     const double*, double*, double*, double*);

}  // namespace seqkern
