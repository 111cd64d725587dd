// The recurrent product of every step, C (M, N) (+)= A (M, K) @ op(W), with op(W) packed once per
// kernel call and reused at each of the T steps. A BLAS call would repack W at every step, which
// at small batch costs as much as the product itself. (Internal to csrc/cpu.)
#pragma once
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "seqkern/common.h"
#include "seqkern/threads.h"

namespace seqkern {

constexpr int64_t kPanelColumns = 16;  // columns of op(W) per packed panel
constexpr int64_t kGroupColumns = 64;  // per group of panels: the unit a team splits by

// Below this many sequences per thread, the threads share each step's product by columns
// instead of splitting the batch: each keeps its share of the packed recurrent weights hot in
// its own cache, and a batch of 1 still uses every core. The price is a barrier per phase.
constexpr int64_t kColumnSplitRows = 8;

// From this many rows per product on, BLAS beats the packed micro-kernels even though it repacks
// W at every step (measured on one core, LSTM steps with H = 256: the packed kernels 10% faster
// at 24 rows, 4% at 32, even at 40, BLAS 8% faster at 48).
constexpr int64_t kBlasRows = 36;

// Whether a batch of B sequences splits its steps by columns (a team) rather than by rows.
inline bool column_split(int64_t B) { return B < kColumnSplitRows * get_num_threads(); }

// One thread's part of a recurrent time step. Without a team: the sequences [b0, b1), their
// product rows and their cell updates. With one: its member's share of each product's columns,
// and of the units of every sequence's cell update (b0, b1 = 0, B), so that the cell work splits
// evenly even when the batch is smaller than the team. sync() separates the phases of a step.
struct StepSlice {
  int64_t b0, b1;
  Team* team;
  void sync() const {
    if (team) team->sync();
  }
  // This slice's share [u0, u1) of the n values of a cell update: all of them, or the member's
  // block, whole vectors of 8 but for the last member's.
  std::pair<int64_t, int64_t> units(int64_t n) const {
    if (!team) return {0, n};
    const auto edge = [&](int r) { return r == team->size ? n : n * r / team->size / 8 * 8; };
    return {edge(team->rank), edge(team->rank + 1)};
  }
};

// Storage on 64-byte boundaries, so that the micro-kernels' 32-byte loads of a panel row never
// straddle two cache lines. (malloc aligns large blocks to 16 bytes; measured with a panel in L1:
// 58-62 GFLOP/s on one core against 74-77 when aligned.)
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const CacheLineAllocator&) const { return true; }
  bool operator!=(const CacheLineAllocator&) const { return false; }
};

// The AVX2/FMA micro-kernels (packed_gemm_avx2.cc, built with -mavx2 -mfma; call them only when
// the CPU has both): pack groups [g0, g1) of op(W) (64 columns each), and C (M, N) (+)= A @ op(W)
// from the packed groups.
namespace avx2 {
void pack_groups_f32(const float* w, int64_t ldw, bool trans, int64_t K, int64_t N, int64_t g0,
                     int64_t g1, float* out);
int64_t group_count_f32(int64_t N);
int64_t packed_size_f32(int64_t K, int64_t N);
void packed_gemm_f32(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                     const float* packed, float* C, int64_t ldc, bool accumulate);
}  // namespace avx2

template <typename T>
class PackedMatrix {
 public:
  // op(W) (K, N): W stored (N, K) with row stride ldw when trans (the forward step, h @ w_hh^T),
  // else (K, N) (the backward step, dg @ w_hh), for the s.T steps of a batch of s.B sequences.
  // W must outlive this object. W stays unpacked, and BLAS runs the products, when a slice's
  // products have kBlasRows rows or more (its kernel is faster there even though it repacks W
  // at every step), and for a single step (packing would read W twice to use it once).
  PackedMatrix(const T* w, int64_t ldw, bool trans, int64_t K, int64_t N, const RnnShape& s);

  // C = A @ op(W), or C += A @ op(W) when accumulate; A row stride lda, C row stride ldc. This
  // slice's share of the step product over rows [0, rows) (the batch, or the sequences
  // still running): all of them and the member's block of column groups with a team, else
  // those of [b0, b1) and every column.
  void multiply(const StepSlice& slice, int64_t rows, const T* A, int64_t lda, T* C, int64_t ldc,
                bool accumulate) const;

  // Whether op(W) was packed for the micro-kernels (else each product goes to BLAS).
  bool packed() const { return !packed_.empty(); }

 private:
  // Columns [n0, n1) of C; n0 on a group boundary.
  void multiply_columns(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate,
                        int64_t n0, int64_t n1) const;

  const T* w_;
  int64_t ldw_, K_, N_;
  bool trans_;
  // groups of panels of op(W); empty when the product goes to BLAS
  std::vector<T, CacheLineAllocator<T>> packed_;
};

}  // namespace seqkern
