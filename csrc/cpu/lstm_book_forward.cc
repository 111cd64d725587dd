// LSTM steps on weights in the layout of "Deep Learning from Scratch 2" (seqkern.book), for the
// calls its generation loops make: one step at a time, or a short encoder pass over one
// sequence. Converting the book's weights to the kernels' layout reads them twice more than such
// a call's products, which took as long as the book's NumPy code. Here the products read Wx and
// Wh where they are (a one-row product streams their rows), and only the 4H pre-activations of
// each row are put in the kernels' gate order for the shared cell.
#include <cstring>
#include <vector>

#include "packed_gemm.h"
#include "recurrent.h"
#include "seqkern/activations.h"
#include "seqkern/gemm.h"
#include "seqkern/lstm.h"

namespace seqkern {

template <typename T>
void lstm_book_forward(int64_t steps, int64_t N, int64_t D, int64_t H, const T* x, const T* h0,
                       const T* c0, const T* Wx, const T* Wh, const T* b, T* y, T* cs,
                       T* gates) {
  const int64_t G = 4 * H, NH = N * H;
  // The book's gate blocks f, g, i, o are the kernels' blocks 1, 2, 0, 3 (i, f, g, o).
  constexpr int kBlock[4] = {1, 2, 0, 3};
  std::vector<T> pre(steps * N * G), bias(G);
  // every step's input projection, then each step's recurrent product added to its rows
  gemm<T>(false, false, steps * N, G, D, T(1), x, D, Wx, G, T(0), pre.data(), G);
  for (int q = 0; q < 4; ++q) std::memcpy(&bias[kBlock[q] * H], b + q * H, H * sizeof(T));
  const bool h0_zero = detail::zero_state(h0, NH);  // (as the kernels: a product of zeros)
  for (int64_t t = 0; t < steps; ++t) {
    const T* h = t == 0 ? h0 : y + (t - 1) * NH;
    const T* c = t == 0 ? c0 : cs + (t - 1) * NH;
    T* pre_t = pre.data() + t * N * G;
    if (t > 0 || !h0_zero) gemm<T>(false, false, N, G, H, T(1), h, H, Wh, G, T(1), pre_t, G);
    for (int64_t n = 0; n < N; ++n) {
      T* g = gates + (t * N + n) * G;
      for (int q = 0; q < 4; ++q)
        std::memcpy(g + kBlock[q] * H, pre_t + n * G + q * H, H * sizeof(T));
      lstm_cell<T>(H, 0, H, bias.data(), g, nullptr, c + n * H, cs + t * NH + n * H,
                   y + t * NH + n * H, true);
    }
  }
}

bool lstm_book_in_place(int64_t steps, int64_t N, int64_t D, int64_t H) {
  return steps == 1 || (N == 1 && serial(RnnShape{steps, N, D, H}));
}

template void lstm_book_forward<float>(int64_t, int64_t, int64_t, int64_t, const float*,
                                       const float*, const float*, const float*, const float*,
                                       const float*, float*, float*, float*);
template void lstm_book_forward<double>(int64_t, int64_t, int64_t, int64_t, const double*,
                                        const double*, const double*, const double*,
                                        const double*, const double*, double*, double*, double*);

}  // namespace seqkern
