// PackedMatrix: float at SIMD level avx2 or avx512 packs op(W) into panels for the micro-kernels
// of packed_gemm_avx2.cc or packed_gemm_avx512.cc; double (kept for gradient checks) and the
// baseline level call BLAS at each step.
#include "packed_gemm.h"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>
#include <type_traits>

#include "few_rows_gemm.h"
#include "in_place_gemm.h"
#include "seqkern/block_cache.h"
#include "seqkern/gemm.h"
#include "seqkern/simd.h"
#include "seqkern/threads.h"

namespace seqkern {

namespace {

bool use_micro_kernels() { return simd() != Simd::baseline; }

// The most bytes of W a team member's products of few rows read from grouped panels.
constexpr int64_t kGroupedRowBytes = 512 << 10;

// Freed blocks of 64 KiB or more wait for reuse, at most 256 MiB (smaller ones come from
// malloc's own free lists). Measured, LSTM (50,8,256,256) inference in C++: page faults on the
// packed weights were 5% of a call.
BlockCache& packing_blocks() {
  static auto* c = new BlockCache(size_t{64} << 10, size_t{256} << 20, /*exact=*/true);
  return *c;  // never destroyed: blocks may be freed at exit
}

}  // namespace

void* take_block(size_t bytes) {
  size_t size;
  return packing_blocks().take(bytes, &size);
}

void give_block(void* p, size_t bytes) { packing_blocks().give(p, bytes); }

#if SEQKERN_X86
void pack_panels_f32(const float* w, int64_t ldw, bool trans, int64_t K, int64_t N, int64_t p0,
                     int64_t p1, float* out, PanelLayout layout, int64_t q) {
  (simd() == Simd::avx512 ? avx512::pack_panels_f32 : avx2::pack_panels_f32)(
      w, ldw, trans, K, N, p0, p1, out, layout, q);
}
#endif

template <typename T>
PackedMatrix<T>::PackedMatrix(const T* w, int64_t ldw, bool trans, int64_t K, int64_t N,
                              const RnnShape& s, int64_t blocks, const F32Panels* kept,
                              bool step)
    : w_(w), ldw_(ldw), K_(K), N_(N), trans_(trans), blocks_(blocks) {
#if SEQKERN_X86
  if constexpr (std::is_same_v<T, float>) {
    const int64_t threads = get_num_threads();
    const bool team = column_split(s);
    const int64_t rows = team || serial(s) ? s.B : (s.B + threads - 1) / threads;
    // Packed already, the panels serve a single step too: one-step calls (a decoder's step),
    // paired on Zen 5, eval layers, BLAS / kept panels: LSTM (1,8,256,256) 1.78x and 1.77x,
    // (1,4,650,650) 1.32x and 1.38x, the GRU 1.69x / 1.67x and 1.37x / 1.31x; batch 1 even.
    const int64_t bytes = K * N * static_cast<int64_t>(sizeof(float)), share = bytes / threads;
    const bool grouped = step && s.B <= kGroupedRows && team && simd() == Simd::avx512 &&
                         share <= kGroupedRowBytes;
    const bool kept_panels = kept && kept->data();
    const int64_t min_steps = kept_panels ? 1 : !team && rows == 1 ? kPackedStepsOneRow : 2;
    const bool small = bytes <= kPackedAnyRowsBytes;
    const bool wide =
        simd() == Simd::avx512 && rows < kAvx512PackedRows && bytes <= kAvx512PackedBytes;
    if (use_micro_kernels() && (rows < kBlasRows || small || wide) && s.T >= min_steps) {
      if (kept_panels) {
        if (!trans || kept->K != K || kept->N != N || kept->blocks != blocks)
          throw std::logic_error("PackedMatrix: kept panels of another matrix");
        packed_blocks_ = blocks;
        packed_width_ = kept->width();
        block_size_ = kept->block_size;
        panels_ = kept->data();
        // Their grouped copy, made at the first call of few rows (F32Panels::grouped). Regrouped
        // at every call instead, eval layers at batch 1 had gained only where the copy cost
        // less than the grouping saved (Zen 5, kept / grouped at the call: LSTM (50,1,128,128)
        // 1.31x, (8,1,128,128) 1.12x; (50,1,256,256) 1.00x, (8,1,256,256) 0.77x).
        if (grouped)
          group_ = team_group((packed_width_ + kPanelColumns - 1) / kPanelColumns, threads);
        if (group_ > 1) {  // (group 1 is their own layout)
          kept_grouped_ = kept->grouped(group_);
          panels_ = kept_grouped_.get();
        }
        return;
      }
      const int64_t packed_blocks = team ? blocks : 1;
      packed_blocks_ = packed_blocks;
      packed_width_ = N / packed_blocks;
      const int64_t panels = (packed_width_ + kPanelColumns - 1) / kPanelColumns;
      // A team's products of few rows (kGroupedRows) at AVX-512 read grouped panels, a member's
      // share of every block one stream (PanelLayout), while that share stays in L2. Paired on
      // Zen 5, 2 threads, batch 1, grouped / not: LSTM (50,1,256,256) inference 1.10x (512 KB a
      // member); (50,1,512,512) 0.87x and (35,1,650,650) 0.92x, the GRU 0.84-0.92x (2-3.4 MB a
      // member, from L3, where the panels' separate streams run faster than one). The backward's
      // products (dg_t @ w_hh, W stored (K, N)) too: paired, training, before / after, two
      // orders: LSTM (50,1,256,256) 1.07x and 1.05x, (50,1,128,128) 1.23x and 1.22x (its
      // backward alone 1.40x), the GRU and RNN there 1.17-1.21x, (20,1,64,64) 1.03-1.10x; at
      // H = 256 the GRU and RNN even.
      if (grouped) group_ = team_group(panels, threads);
      const PanelLayout layout{K, panels, group_, packed_blocks};
      block_size_ = avx2::packed_size_f32(K, packed_width_);  // block after block (group 1)
      // (the padding of the last groups is never read, and stays uninitialized)
      packed_.resize(layout.lines() * kPanelColumns);
      panels_ = packed_.data();
      // Split as a team splits the product, so each member packs (and first touches) its own;
      // a call whose steps run on one thread packs there too (handing a (20, 20) matrix to the
      // pool and waiting for it took longer than packing it).
      const auto pack = [&](int64_t p0, int64_t p1) {
        for (int64_t q = 0; q < packed_blocks; ++q) {
          const float* wq = w + q * packed_width_ * (trans ? ldw : 1);
          pack_panels_f32(wq, ldw, trans, K, packed_width_, p0, p1, packed_.data(), layout, q);
        }
      };
      if (serial(s))
        pack(0, panels);
      else
        parallel_for(panels, 1, pack);
    }
    // Unpacked, W stored (N, K) (a one-step call on weights that change: a cell's step): the
    // products read W in place (in_place_gemm.h) where BLAS would pack it, A packed once for
    // every gate block (BLAS packed it again for each). Chosen by the batch and a gate block's
    // width, never by a thread's rows or a member's columns, so that every product of the call
    // runs on one kernel whatever the thread count (the in-place kernels' sums start from C,
    // BLAS's are added to it: the bits would differ).
    // (Only one-step calls: the other unpacked calls are a few steps of one row a thread, which
    // BLAS's GEMV reads in place already.)
    in_place_ = !panels_ && trans && simd() == Simd::avx512 && s.T == 1 && s.B > kFewRowsNK &&
                s.B <= kInPlaceStepRows && s.B * (N / blocks) > kInPlaceOutputNT;
  }
#else
  (void)s, (void)kept, (void)step, (void)use_micro_kernels;  // no micro-kernels: BLAS
#endif
}

template <typename T>
PackedMatrix<T>::PackedMatrix(const Bf16Matrix& w, const RnnShape&)
    : w_(nullptr), ldw_(0), K_(w.K), N_(w.N), trans_(true), blocks_(w.blocks), bf16_(&w) {}

template <typename T>
void PackedMatrix<T>::multiply_columns(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc,
                                       bool accumulate, int64_t n0, int64_t n1,
                                       int64_t blocks, bool descending, Rider* rider) const {
  if (M <= 0 || n1 <= n0) return;
  const int64_t width = N_ / blocks;
#if SEQKERN_X86
  if constexpr (std::is_same_v<T, float>) {
    if (panels_ && group_ > 1) {  // few rows, a team's units: the blocks' groups in turn
      if (M > kGroupedRows) throw std::logic_error("PackedMatrix: grouped panels take few rows");
      const int64_t panels = (width + kPanelColumns - 1) / kPanelColumns;
      avx512::grouped_rows_f32(M, K_, n1 - n0, A, lda, panels_,
                               PanelLayout{K_, panels, group_, blocks}, n0 / kPanelColumns,
                               blocks, C + n0, ldc, width, accumulate, rider);
      return;
    }
    if (panels_) {  // packed_width_ == width: the layout follows the same split
      const ColumnBlocks cb{blocks, block_size_, width, descending};
      const auto kernel = simd() == Simd::avx512 ? avx512::packed_gemm_f32 : avx2::packed_gemm_f32;
      kernel(M, K_, n1 - n0, A, lda, panels_ + n0 * K_, C + n0, ldc, accumulate, cb);
      return;
    }
    if (in_place_) {
      const float* rows = avx512::in_place_pack_rows(M, K_, 1.0f, A, lda);
      for (int64_t q = 0; q < blocks; ++q) {
        const int64_t col = q * width + n0;
        avx512::in_place_gemm_nt(M, col, col + n1 - n0, K_, rows, w_, ldw_,
                                 accumulate ? 1.0f : 0.0f, C, ldc,
                                 N_ * K_ * int64_t{sizeof(float)} >= kFromMemoryBytes);
      }
      return;
    }
  }
#else
  (void)descending, (void)rider;
#endif
  for (int64_t q = 0; q < blocks; ++q) {
    const int64_t col = q * width + n0;
    const T* w = trans_ ? w_ + col * ldw_ : w_ + col;
    gemm<T>(false, trans_, M, n1 - n0, K_, T(1), A, lda, w, ldw_, accumulate ? T(1) : T(0),
            C + col, ldc);
  }
}

template <typename T>
void PackedMatrix<T>::multiply(const StepSlice& slice, int64_t rows, const T* A, int64_t lda,
                               T* C, int64_t ldc, bool accumulate, Rider* rider) const {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_) {  // every gate block, this slice's rows or units
      const auto [u0, u1] = slice.units(bf16_->width());
      const int64_t b0 = slice.team ? 0 : slice.b0, b1 = slice.team ? rows : std::min(slice.b1, rows);
      bf16_gemm(b1 - b0, A + b0 * lda, lda, *bf16_, u0, u1, C + b0 * ldc, ldc, accumulate,
                rider);
      return;
    }
  }
  if (!slice.team) {  // every column, block by packed block
    const int64_t end = std::min(slice.b1, rows);
    multiply_columns(end - slice.b0, A + slice.b0 * lda, lda, C + slice.b0 * ldc, ldc,
                     accumulate, 0, N_ / packed_blocks_, packed_blocks_, slice.descending);
    return;
  }
  const auto [u0, u1] = slice.units(N_ / blocks_);
  multiply_columns(rows, A, lda, C, ldc, accumulate, u0, u1, blocks_, slice.descending, rider);
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace seqkern
