// Block transposes between the book's weight layout and the kernels' (seqkern/layout.h). The
// book's layers convert at every training step (an optimizer has changed the weights); NumPy's
// strided transpose took 170 us for a 144 x 512 matrix, a tenth of chapter 7's training time.
#include "seqkern/layout.h"

#include <algorithm>

namespace seqkern {

namespace {
constexpr int64_t kTile = 32;  // a tile of each side stays in L1 while it is transposed
}

template <typename T>
void convert_gate_blocks(const T* src, T* out, int64_t R, int64_t G, int64_t H,
                         const int64_t* order, int64_t negate, bool to_kernel) {
  const int64_t GH = G * H;
  for (int64_t i = 0; i < G; ++i) {
    const T sign = i == negate ? T(-1) : T(1);
    const int64_t book_col = order[i] * H, kernel_row = i * H;
    for (int64_t r0 = 0; r0 < R; r0 += kTile)
      for (int64_t u0 = 0; u0 < H; u0 += kTile) {
        const int64_t r1 = std::min(R, r0 + kTile), u1 = std::min(H, u0 + kTile);
        if (to_kernel) {
          for (int64_t u = u0; u < u1; ++u)
            for (int64_t r = r0; r < r1; ++r)
              out[(kernel_row + u) * R + r] = sign * src[r * GH + book_col + u];
        } else {
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t u = u0; u < u1; ++u)
              out[r * GH + book_col + u] = sign * src[(kernel_row + u) * R + r];
        }
      }
  }
}

template void convert_gate_blocks<float>(const float*, float*, int64_t, int64_t, int64_t,
                                         const int64_t*, int64_t, bool);
template void convert_gate_blocks<double>(const double*, double*, int64_t, int64_t, int64_t,
                                          const int64_t*, int64_t, bool);

}  // namespace seqkern
