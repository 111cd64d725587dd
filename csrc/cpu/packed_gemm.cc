// PackedMatrix: float on AVX2/FMA CPUs packs op(W) into panels for the micro-kernels of
// packed_gemm_avx2.cc; double (kept for gradient checks) and other CPUs call BLAS at each step.
#include "packed_gemm.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "seqkern/activations.h"
#include "seqkern/gemm.h"
#include "seqkern/threads.h"

namespace seqkern {

namespace {

// The micro-kernels follow the activations' choice, so SEQKERN_SIMD=baseline turns both off.
bool use_micro_kernels() {
  static const bool yes = std::strcmp(simd_level(), "avx2+fma") == 0;
  return yes;
}

}  // namespace

template <typename T>
PackedMatrix<T>::PackedMatrix(const T* w, int64_t ldw, bool trans, int64_t K, int64_t N,
                              const RnnShape& s)
    : w_(w), ldw_(ldw), K_(K), N_(N), trans_(trans) {
#if SEQKERN_X86
  if constexpr (std::is_same_v<T, float>) {
    const int64_t threads = get_num_threads();
    const int64_t rows = column_split(s.B) ? s.B : (s.B + threads - 1) / threads;
    if (use_micro_kernels() && rows < kBlasRows && s.T > 1) {
      packed_.resize(avx2::packed_size_f32(K, N));
      // Split as a team splits the product, so each member packs (and first touches) its own.
      parallel_for(avx2::group_count_f32(N), 1, [&](int64_t g0, int64_t g1) {
        avx2::pack_groups_f32(w, ldw, trans, K, N, g0, g1, packed_.data());
      });
    }
  }
#endif
}

template <typename T>
void PackedMatrix<T>::multiply_columns(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc,
                                       bool accumulate, int64_t n0, int64_t n1) const {
  if (M <= 0 || n1 <= n0) return;
#if SEQKERN_X86
  if constexpr (std::is_same_v<T, float>) {
    if (!packed_.empty()) {
      avx2::packed_gemm_f32(M, K_, n1 - n0, A, lda, packed_.data() + n0 * K_, C + n0, ldc,
                            accumulate);
      return;
    }
  }
#endif
  const T* w = trans_ ? w_ + n0 * ldw_ : w_ + n0;
  gemm<T>(false, trans_, M, n1 - n0, K_, T(1), A, lda, w, ldw_, accumulate ? T(1) : T(0), C + n0,
          ldc);
}

template <typename T>
void PackedMatrix<T>::multiply(const StepSlice& slice, int64_t rows, const T* A, int64_t lda,
                               T* C, int64_t ldc, bool accumulate) const {
  if (!slice.team) {
    const int64_t end = std::min(slice.b1, rows);
    multiply_columns(end - slice.b0, A + slice.b0 * lda, lda, C + slice.b0 * ldc, ldc,
                     accumulate, 0, N_);
    return;
  }
  // Whole groups per member, split as the packing split them (each member packed its own).
  const int64_t groups = (N_ + kGroupColumns - 1) / kGroupColumns;
  const int r = slice.team->rank, n = slice.team->size;
  const int64_t n0 = groups * r / n * kGroupColumns;
  const int64_t n1 = std::min(N_, groups * (r + 1) / n * kGroupColumns);
  multiply_columns(rows, A, lda, C, ldc, accumulate, n0, n1);
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace seqkern
