// GEMM through the bundled OpenBLAS (symbols carry the scipy_ prefix of the scipy-openblas32 wheel).
#include "seqkern/gemm.h"

#include <algorithm>

#include <cblas.h>

#include <type_traits>

#include "few_rows_gemm.h"
#include "in_place_gemm.h"
#include "packed_gemm.h"
#include "small_k_gemm.h"
#include "seqkern/simd.h"
#include "seqkern/threads.h"

namespace seqkern {

namespace {

CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  scipy_cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void blas_gemv(bool t, int64_t M, int64_t N, float alpha, const float* A, int64_t lda,
               const float* x, int64_t incx, float beta, float* y) {
  scipy_cblas_sgemv(CblasRowMajor, tr(t), M, N, alpha, A, lda, x, incx, beta, y, 1);
}

void blas_gemv(bool t, int64_t M, int64_t N, double alpha, const double* A, int64_t lda,
               const double* x, int64_t incx, double beta, double* y) {
  scipy_cblas_dgemv(CblasRowMajor, tr(t), M, N, alpha, A, lda, x, incx, beta, y, 1);
}

// Below this many multiply-adds a split costs more than it saves.
constexpr int64_t kSplitWork = 1 << 18;
// ... for products of one or a few rows, which stream all of B for little work. From 768 KB of
// float B on, a cell step's two matrices outgrow one core's L2 (a GRU cell with H = 256: 768 KB
// each) and stream from L3 at every call; split, each core keeps its half in its own L2. Paired
// on Intel Ice Lake (1.25 MB L2), 2 threads, torch's GRUCell (1,256,256) under `optimize`, a
// no_grad step: 145-147 us unsplit, 97-104 split (torch 111-124). Smaller products stay whole:
// split from 256 KB, an LSTMCell (1,144,128) step went from 50.7 to 68.7 us; on Zen 5 (1 MB L2),
// a split from 64 KB made one-row products of 64 KB and 512 KB called alone slower in two runs
// of three (2.56 against 0.80 us, 7.9 against 4.9).
constexpr int64_t kSplitRowsWork = 3 << 16;
constexpr int64_t kMinRows = 16;  // rows or columns per thread
constexpr int64_t kGemvColumns = 64;  // columns per GEMV call when the threads share a GEMV

// Products of moderate size run on the packed micro-kernels at level avx512 (op(B) packed per
// call, packed_gemm.h) where they beat OpenBLAS: up to kPackedWork multiply-adds (512 x 512 x
// 512); B stored (N, K) from kPackedRowsNK rows, with kPackedColumnsNK columns or more below
// kPackedRowsNKAnyWidth rows (kPackedColumnsNKFewRows below kPackedRowsKN); B stored (K, N) from
// kPackedRowsKN rows and kPackedWorkMin multiply-adds; A^T B (weight gradients) from
// kPackedWorkMin, up to kPackedMaxRowsTransA rows. Each row's sums keep their order (k in slices
// of kDepth), so C does not depend on the thread count.
//
// Paired in one process on Intel Ice Lake, 2 threads, BLAS / packed time, B (N, K), B (K, N),
// A^T, (M, K, N) = (256, 256, 256) 1.21-1.28x, 1.15-1.27x, 1.13-1.15x; (64, 512, 512)
// 1.11-1.24x, 1.06-1.17x, 0.98-1.20x; (128, 128, 128) 1.25x, 1.31x, 1.16x; (128, 256, 1024)
// 1.24x, 1.17x, 1.26x; (512, 512, 512) 0.99-1.06x; beyond, (1024, 256, 1024), 0.94-1.00x. B
// (N, K) from 9 rows: (16, 256, 256) 1.16-1.33x, (32, 256, 256) 1.29-1.30x, (50, 100, 100)
// 1.29x; B (K, N) below 32 rows lost ((24, 256, 256) 0.61-0.63x, (16, 128, 512) 0.54-0.67x) and
// won from 32 ((32, 256, 256) 1.23-1.29x, (48, 256, 256) 1.10-1.24x); A^T below 2^21 lost ((64,
// 64, 64) 0.76x). torch's MKL ran these products 1.25-1.45x faster than BLAS there.
//
// On Zen 5, where OpenBLAS's SkylakeX kernels run near the FMA peak, the same, 2 threads. A^T
// from 384 rows lost: (384, 280, 128) 0.95x, (512, 280, 128) 0.89x, (1024, 400, 256)
// 0.87-0.93x (training LSTM (50,8,256,256), whose weight gradients these are, 1.09-1.14x faster
// with them on BLAS); up to 256 rows it won, (256, 400, 256) 1.13x, (128, 1024, 256) 1.09x,
// (128, 3200, 13) 1.59x. Against OpenBLAS's small-matrix kernels, B (N, K) of few rows lost
// where it had few columns: (20, 128, 20) 0.58x (attention's scores of short sequences: a
// forward and backward of (32,20,20,128) 1.39-1.41x slower for it), (32, 128, 20) 0.61x, (48,
// 256, 40) 0.68x, (64, 256, 13) 0.87x, (16, 256, 128) 0.74-0.76x, (24, 512, 96) 0.75-0.79x;
// and won with more, (16, 256, 256) 1.55-1.60x, (40, 256, 64) 1.37x, (64, 128, 20) 1.07x, or
// more rows, (640, 128, 13) 2.11x, (128, 128, 32) 1.43x. B (K, N) below 2^21 multiply-adds
// lost, (64, 64, 64) 0.84x, (128, 64, 64) 0.89x, (128, 128, 32) 0.94x, (256, 128, 20) 0.88x;
// from it, it won: (640, 256, 13) 2.19x, (1024, 256, 32) 1.30x.
constexpr int64_t kPackedWork = int64_t{1} << 27;
constexpr int64_t kPackedWorkMin = int64_t{1} << 21;
constexpr int64_t kPackedRowsNK = 9;
constexpr int64_t kPackedRowsKN = 32;
constexpr int64_t kPackedMaxRowsTransA = 256;
constexpr int64_t kPackedColumnsNK = 48;         // B (N, K) below kPackedRowsNKAnyWidth rows
constexpr int64_t kPackedColumnsNKFewRows = 256;  // ... and below kPackedRowsKN rows
constexpr int64_t kPackedRowsNKAnyWidth = 128;

#if SEQKERN_X86
bool packed_pays(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  const int64_t work = M * N * K;
  if (work > kPackedWork) return false;
  if (ta)
    return M >= (tb ? kPackedRowsNK : kPackedRowsKN) && M <= kPackedMaxRowsTransA &&
           work >= kPackedWorkMin;
  if (tb)
    return M >= kPackedRowsNK &&
           (M >= kPackedRowsNKAnyWidth ||
            N >= (M < kPackedRowsKN ? kPackedColumnsNKFewRows : kPackedColumnsNK));
  return M >= kPackedRowsKN && work >= kPackedWorkMin;
}

// C = alpha * op(A) @ op(B) + beta * C on the packed kernels: the threads share the columns
// (each packing its own panels of op(B)), or for fewer than 4 panels a thread, the rows (each
// packing all of them) where there are rows enough for two threads (with fewer, (30, 256, 64)
// ran on one thread, at 0.60x BLAS's speed on Zen 5). op(B) is read once: each pair of its
// panels is packed just before its products (packed_gemm_f32_pairwise), where all of it, packed
// first into a buffer allocated at each call, made a round trip through L2. Paired per call on
// Emerald Rapids, 2 threads, whole / pairwise: (M, K, N) = (50, 1024, 256) 1.03x, B stored (N,
// K) (64, 256, 1024) 1.02x; A^T (256, 256, 256) 1.06x, (128, 128, 128) 1.02x, (256, 128, 128)
// 0.99x; one-step calls LSTM (1,128,512,512) 1.06x inference and 1.04x training, (1,64,256,256)
// training 1.03x, the GRU (1,256,256,256) 1.03x and 1.04x; LSTM (50,1,256,256) training 1.015x.
// (In fresh processes, where the buffer was mapped afresh, (50, 1024, 256) read 1.2-1.5x.)
void packed_product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc) {
  const int64_t panels = (N + kPanelColumns - 1) / kPanelColumns;
  // rows [m0, m1) of C, against panels [p0, p1)
  const auto part = [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const int64_t n0 = p0 * kPanelColumns, n = std::min(N, p1 * kPanelColumns) - n0;
    float* c = C + m0 * ldc + n0;
    if (beta != 0.0f && beta != 1.0f)
      for (int64_t r = 0; r < m1 - m0; ++r)
        for (int64_t j = 0; j < n; ++j) c[r * ldc + j] *= beta;
    avx512::packed_gemm_f32_pairwise(ta, m1 - m0, K, n, ta ? A + m0 : A + m0 * lda, lda,
                                     tb ? B + n0 * ldb : B + n0, ldb, tb, alpha, c, ldc,
                                     beta != 0.0f);
  };
  if (M * N * K < kSplitWork)
    part(0, M, 0, panels);
  else if (panels >= 4 * get_num_threads() || M < 2 * kMinRows)
    parallel_for(panels, 2, [&](int64_t p0, int64_t p1) { part(0, M, p0, p1); });
  else
    parallel_for(M, kMinRows, [&](int64_t m0, int64_t m1) { part(m0, m1, 0, panels); });
}
#endif

}  // namespace

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  // C = beta * C, reading neither A nor B when alpha is 0 (BLAS's rule: every path here then
  // gives the same, NaNs in A or B included), and for an empty sum, which GEMV's quick return
  // would skip.
  if (K == 0 || alpha == T(0)) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        T& c = C[m * ldc + n];
        c = beta == T(0) ? T(0) : beta * c;
      }
    return;
  }
#if SEQKERN_X86
  // A few rows: B read in place by seqkern's kernels (few_rows_gemm.h), except one row against
  // B stored (K, N), where BLAS's GEMV stays (Zen 3, paired: the kernel 0.94-0.95x of it).
  if constexpr (std::is_same_v<T, float>) {
    const int64_t few = tb ? kFewRowsNK : kFewRowsKN;
    const bool from_memory = K * N * int64_t{sizeof(float)} >= kFromMemoryBytes;
    if (!ta && M <= few && (tb || M > 1) && simd() != Simd::baseline) {
      const auto columns = [&](int64_t n0, int64_t n1) {
        avx2::few_rows_gemm(tb, M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, from_memory);
      };
      if (M * N * K < kSplitRowsWork)
        columns(0, N);
      else
        parallel_for(N, kMinRows, columns);
      return;
    }
    // Up to a few dozen rows against a B of megabytes, either layout, or of 256 KB and more
    // columns stored (N, K): B read in place (in_place_gemm.h), A's rows packed once for all
    // the threads, which share the columns (either size is always past kSplitRowsWork: B (N, K)
    // comes here from kFewRowsNK + 1 rows on). One row stays with GEMV.
    const int64_t bytes = K * N * int64_t{sizeof(float)};
    const bool large = bytes >= kInPlaceBytes ||
                       (tb && bytes >= kInPlaceBytesNT && N >= kInPlaceColumnsNT);
    if (!ta && M > 1 && M <= kInPlaceRows && large && simd() == Simd::avx512) {
      // (packed once, in the calling thread's buffer, which the pool's threads read)
      const float* packed = avx512::in_place_pack_rows(M, K, alpha, A, lda);
      const auto columns = [&](int64_t n0, int64_t n1) {
        if (tb)
          avx512::in_place_gemm_nt(M, n0, n1, K, packed, B, ldb, beta, C, ldc, from_memory);
        else
          avx512::in_place_gemm(M, n0, n1, K, packed, B, ldb, beta, C, ldc);
      };
      static_assert(2 * kInPlaceBytes / int64_t{sizeof(float)} >= kSplitRowsWork &&
                    (kFewRowsNK + 1) * kInPlaceBytesNT / int64_t{sizeof(float)} >= kSplitRowsWork);
      parallel_for(N, kMinRows, columns);
      return;
    }
  }
#endif
  if (M == 1) {  // one row not taken above: GEMV streams B once instead of packing it
    const auto columns = [&](int64_t n0, int64_t n1) {
      if (tb)  // B stored (N, K): c = B a
        blas_gemv(false, n1 - n0, K, alpha, B + n0 * ldb, ldb, A, ta ? lda : 1, beta, C + n0);
      else     // B stored (K, N): c = B^T a
        blas_gemv(true, K, n1 - n0, alpha, B + n0, ldb, A, ta ? lda : 1, beta, C + n0);
    };
    // Large enough, the threads share B's columns, each streaming its part: a one-step LSTM
    // of the book's generation loops, H = 256, reads 1 MB of Wh. They share them in blocks of
    // kGemvColumns whatever their number: BLAS's GEMV rounds a column by where it falls in a
    // call (its kernels take columns in groups and finish with a tail), so the same blocks give
    // the same bits on any number of threads.
    if (N * K < kSplitRowsWork) {
      columns(0, N);
      return;
    }
    parallel_for((N + kGemvColumns - 1) / kGemvColumns, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        columns(b * kGemvColumns, std::min(N, (b + 1) * kGemvColumns));
    });
    return;
  }
#if SEQKERN_X86
  // A short sum (weight gradients of a step or a few): C written once from registers
  // (small_k_gemm.h). The rows split between the threads; each row's sums do not depend on it.
  if constexpr (std::is_same_v<T, float>) {
    if (ta && !tb && K <= kSmallK && M * N >= kSmallKOutput && (beta == 0.0f || beta == 1.0f) &&
        simd() != Simd::baseline) {
      const auto product = simd() == Simd::avx512 ? avx512::small_k_gemm : avx2::small_k_gemm;
      parallel_for(M, kMinRows, [&](int64_t m0, int64_t m1) {
        product(m1 - m0, N, K, alpha, A + m0, lda, B, ldb, beta == 1.0f, C + m0 * ldc, ldc);
      });
      return;
    }
    // Moderate sizes: the packed kernels.
    if (packed_pays(ta, tb, M, N, K) && simd() == Simd::avx512) {
      packed_product(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
  }
#endif
  if (M * N * K < kSplitWork) {
    blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Each thread packs all of one operand and its share of the other, so split the dimension
  // whose operand costs more to pack: rows of C when op(A) is the larger, else columns (the
  // input projection of a small batch: a row split packed all of w_ih on every thread).
  if (M >= N) {
    parallel_for(M, kMinRows, [&](int64_t m0, int64_t m1) {
      const T* a = ta ? A + m0 : A + m0 * lda;  // rows m0.. of op(A)
      blas(ta, tb, m1 - m0, N, K, alpha, a, lda, B, ldb, beta, C + m0 * ldc, ldc);
    });
    return;
  }
  parallel_for(N, kMinRows, [&](int64_t n0, int64_t n1) {
    const T* b = tb ? B + n0 * ldb : B + n0;  // columns n0.. of op(B)
    blas(ta, tb, M, n1 - n0, K, alpha, A, lda, b, ldb, beta, C + n0, ldc);
  });
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

void blas_set_num_threads(int n) { scipy_openblas_set_num_threads(n); }

const char* blas_name() { return scipy_openblas_get_config(); }

}  // namespace seqkern
