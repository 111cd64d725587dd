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
#include "seqkern/threads.h"

namespace seqkern {

// Below this many multiply-adds a step runs on one thread.
constexpr int64_t kSplitWork = 1 << 16;

template <typename T>
void lstm_book_step(int64_t N, int64_t D, int64_t H, const T* x, const T* h, const T* c,
                    const T* Wx, const T* Wh, const T* b, T* h_next, T* c_next, T* gates) {
  const int64_t G = 4 * H;
  // The book's gate blocks f, g, i, o are the kernels' blocks 1, 2, 0, 3 (i, f, g, o).
  constexpr int kBlock[4] = {1, 2, 0, 3};
  std::vector<T> bias(G);
  for (int q = 0; q < 4; ++q) std::memcpy(&bias[kBlock[q] * H], b + q * H, H * sizeof(T));
  // Threads take units: each reads its columns of every gate block of Wx and Wh (the step
  // streams about 4H(D+H) weights once, so two threads' caches halve its time) and runs the
  // cell on them. The products land in gates in the kernels' order, where the cell reads them.
  const int64_t grain = N * G * (D + H) < kSplitWork ? H : 16;
  parallel_for(H, grain, [&](int64_t u0, int64_t u1) {
    const int64_t n = u1 - u0;
    for (int q = 0; q < 4; ++q) {
      T* g = gates + kBlock[q] * H + u0;
      gemm<T>(false, false, N, n, D, T(1), x, D, Wx + q * H + u0, G, T(0), g, G);
      gemm<T>(false, false, N, n, H, T(1), h, H, Wh + q * H + u0, G, T(1), g, G);
    }
    for (int64_t r = 0; r < N; ++r)
      lstm_cell<T>(H, u0, u1, bias.data(), gates + r * G, c + r * H, c_next + r * H,
                   h_next + r * H, true);
  });
}

template void lstm_book_step<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                    const float*, const float*, const float*, const float*,
                                    float*, float*, float*);
template void lstm_book_step<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                     const double*, const double*, const double*,
                                     const double*, double*, double*, double*);

}  // namespace seqkern
