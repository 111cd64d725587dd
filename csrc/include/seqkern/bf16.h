// bfloat16 inference weights: a recurrent layer's weight matrices rounded to bfloat16 once and
// packed for the bf16 micro-kernels, so that calls back to back on the same weights stream half
// the bytes and skip the packing. States, gates, outputs and the products' sums stay float32; each
// product rounds its input rows (x_t, h_{t-1}) to bfloat16, as the CPU's bf16 dot product
// (AVX-512 BF16) takes them. Elsewhere the same products run as float FMAs on the widened values.
#pragma once
#include <cstdint>
#include <memory>

#include "seqkern/stack.h"

namespace seqkern {

// x rounded to the nearest bfloat16 (ties to even), as its 16 high bits; NaN stays NaN.
inline uint16_t to_bf16(float x) {
  uint32_t b;
  __builtin_memcpy(&b, &x, 4);
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((b >> 16) | 0x40);
  return static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
inline float from_bf16(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float x;
  __builtin_memcpy(&x, &b, 4);
  return x;
}

// op(W) = W^T (K, N) for W stored (N, K) with row stride ldw, rounded to bfloat16, in `blocks`
// column blocks (a layer's gate blocks) of width() = N / blocks columns, each padded to whole
// panels of 16 columns. A panel holds its K rows as pairs() = (K+1)/2 pair rows (stored_pairs():
// with AMX, zero pair rows after them up to whole tiles); pair row kk is 16 x (row 2kk, row
// 2kk+1), interleaved (64 bytes: what one AVX-512 bf16 dot product reads), a zero row after an
// odd K. The blocks lie one after the other, each block's panels too (panel p
// of block q at data() + (q * panels() + p) * stored_pairs() * 32), or, with the CPU's bf16 dot
// products, in groups of `group` panels for products of one row, the blocks' groups
// interleaved (PanelLayout, csrc/cpu/packed_gemm.h).
class Bf16Matrix {
 public:
  Bf16Matrix() = default;
  Bf16Matrix(const float* w, int64_t ldw, int64_t K, int64_t N, int64_t blocks = 1);

  int64_t K = 0, N = 0, blocks = 1, group = 1;
  int64_t width() const { return N / blocks; }
  int64_t panels() const { return (width() + 15) / 16; }
  int64_t pairs() const { return (K + 1) / 2; }
  // Pair rows a panel holds: pairs(), or with AMX (bf16_amx) that many padded with zero rows to
  // whole tiles of 16.
  int64_t stored_pairs() const;
  // Values in data(): every block padded to whole groups.
  int64_t size() const {
    return blocks * ((panels() + group - 1) / group * group) * stored_pairs() * 32;
  }
  const uint16_t* data() const { return data_.get(); }
  // Where the CPU has no bf16 dot products (SIMD levels avx2, and avx512 without avx512_bf16):
  // the same values widened to floats, in the float micro-kernels' panels (group 1: block q at
  // + q * panels() * pairs() * 32, each pair's odd row first), for products of many rows, which
  // widening at every use slows more than the halved bytes speed up. Else null.
  const float* wide() const { return wide_.get(); }

 private:
  std::shared_ptr<uint16_t> data_;  // 64-byte aligned
  std::shared_ptr<float> wide_;     // 64-byte aligned
};

// A linear layer's product on bfloat16 weights (seqkern.nn.Linear in eval(precision=
// "bfloat16")): y (+)= bf16(x) @ op(w), w packed from W (N, K) as one block; the threads share
// its panels of 16 columns, each column's sum the same on any thread count.
//   x (M, K)    y (M, N), added into when accumulate (the bias there)
void bf16_linear(int64_t M, const float* x, const Bf16Matrix& w, float* y, bool accumulate);

// One layer-direction's forward weights, rounded and packed (pack_layer<Bf16Layer>).
struct Bf16Layer : LayerMatrices<Bf16Matrix> {};

// Whether the bf16 products run on the CPU's bf16 dot products (SIMD level avx512 and
// avx512_bf16); else on float FMAs of the widened values (or plain C++ at level baseline).
bool bf16_native();
// Whether they run on AMX tiles (bf16_native, and AMX-BF16 that the OS lets this process use).
bool bf16_amx();

}  // namespace seqkern
