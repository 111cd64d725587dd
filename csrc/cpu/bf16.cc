// bfloat16 inference weights (seqkern/bf16.h): packing, the layers' matrices, and the products'
// dispatch to a SIMD level (bf16_gemm_avx512.cc, bf16_gemm_avx2.cc, or plain C++ here).
#include "seqkern/bf16.h"

#include <algorithm>
#include <new>
#include <vector>

#if SEQKERN_AMX
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "packed_gemm.h"
#include "seqkern/simd.h"
#include "seqkern/threads.h"

namespace seqkern {

namespace {

#if SEQKERN_X86
bool cpu_has_bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
}
#endif

#if SEQKERN_AMX
// AMX-TILE and AMX-BF16 (cpuid leaf 7: edx bits 24 and 22), their state saved by the OS (XCR0
// bits 17 and 18), and Linux's leave for this process to use it (arch_prctl, Linux 5.16 on;
// refused, the products stay on the AVX-512 bf16 dot products).
// (Called only after bf16_native(): AVX-512 is in use, so cpuid reports OSXSAVE.)
bool amx_usable() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!(d & (1u << 24)) || !(d & (1u << 22))) return false;
  if ((xcr0() & 0x60000u) != 0x60000u) return false;
  constexpr long kRequestPermission = 0x1023, kTileData = 18;  // ARCH_REQ_XCOMP_PERM, XTILEDATA
  return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
}
#endif

// The products in plain C++, in the native kernel's order (row 2kk+1's product, then row 2kk's).
void bf16_gemm_baseline(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda,
                        const uint16_t* packed, float* C, int64_t ldc, bool accumulate,
                        ColumnBlocks blocks) {
  const int64_t pairs = (K + 1) / 2;
  const PanelLayout layout{pairs, blocks.panels, blocks.group, blocks.count};
  for (int64_t q = 0; q < blocks.count; ++q)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t p = blocks.first + n / 16;
        const uint16_t* w = packed + layout.offset(q, p, 0) * kPairRow + n % 16 * 2;
        const int64_t row = layout.row() * kPairRow;
        const float* a = A + m * lda;
        float sum = 0;
        for (int64_t kk = 0; kk < pairs; ++kk) {
          const float odd = 2 * kk + 1 < K ? from_bf16(to_bf16(a[2 * kk + 1])) : 0.0f;
          sum += odd * from_bf16(w[kk * row + 1]);
          sum += from_bf16(to_bf16(a[2 * kk])) * from_bf16(w[kk * row]);
        }
        float& c = C[m * ldc + q * blocks.c_stride + n];
        c = accumulate ? c + sum : sum;
      }
}

}  // namespace

// From this many rows a product at a widening level runs on the widened weights: the bf16
// kernel widens each pair row of a panel again for every block of rows (four vector operations
// beside the block's FMAs), and each row's values at every use. Measured on Zen 3 (AVX2), 2
// threads, layers (T, B, 256, 256) in eval(precision="bfloat16"), the minima of three
// alternating runs, bf16 kernel against widened: LSTM B = 2 1.34 / 1.15 ms, B = 4 2.05 / 1.63,
// B = 8 4.97 / 3.83, (100, 64) 70.1 / 44.8; GRU B = 8 3.59 / 2.39, (100, 64) 50.8 / 36.9. At
// one row, four runs: LSTM 0.63 / 0.64, GRU 0.49 / 0.49; the bf16 kernel, half the bytes, stays.
constexpr int64_t kWideRows = 2;
// At AVX-512 without avx512_bf16 (bf16_widened_avx512.cc, whose 32 registers hold the widened
// halves of more panels beside the sums). Ice Lake, 2 threads, layers (50, B, H, H) in
// eval(precision="bfloat16"), paired, the widened copy's time / the bf16 kernel's: B = 2 and 3,
// LSTM 1.26-1.54x, GRU 1.25-1.65x (H = 256 and 512); B = 4, LSTM 0.87x and 1.27x, GRU 0.94x and
// 1.04x; B = 8, 0.84x and 0.78-1.20x (H = 256).
constexpr int64_t kWideRowsAvx512 = 4;

bool bf16_native() {
#if SEQKERN_X86
  static const bool has = cpu_has_bf16();
  return simd() == Simd::avx512 && has;
#else
  return false;
#endif
}

bool bf16_amx() {
#if SEQKERN_AMX
  static const bool usable = bf16_native() && amx_usable();
  return usable;
#else
  return false;
#endif
}

int64_t Bf16Matrix::stored_pairs() const {
#if SEQKERN_AMX
  if (bf16_amx()) return amx::tile_pairs(K);
#endif
  return pairs();
}

Bf16Matrix::Bf16Matrix(const float* w, int64_t ldw, int64_t K_, int64_t N_, int64_t blocks_)
    : K(K_), N(N_), blocks(blocks_) {
  // Grouped for the native kernels, for the team size of now (a later one still gets the right
  // sums, from runs cut where its shares start).
  if (bf16_native()) group = team_group(panels(), get_num_threads());
  const int64_t size = this->size(), width = this->width(), pairs = stored_pairs();
  const PanelLayout layout{pairs, panels(), group, blocks};
  // (the padding of the last groups is never read, and stays uninitialized)
  data_.reset(static_cast<uint16_t*>(::operator new(size * sizeof(uint16_t), std::align_val_t(64))),
              [](uint16_t* p) { ::operator delete(p, std::align_val_t(64)); });
  uint16_t* out = data_.get();
  const int64_t panels = this->panels();
  parallel_for(blocks * panels, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t q = i / panels, p = i % panels;
      uint16_t* panel = out + layout.offset(q, p, 0) * kPairRow;
      const int64_t step = layout.row() * kPairRow;  // from pair row to pair row
      for (int64_t j = 0; j < 16; ++j) {
        const int64_t col = p * 16 + j;
        const float* row = col < width ? w + (q * width + col) * ldw : nullptr;  // W's row n
        for (int64_t k = 0; k < 2 * pairs; ++k)
          panel[k / 2 * step + j * 2 + k % 2] = row && k < K ? to_bf16(row[k]) : 0;
      }
    }
  });
#if SEQKERN_X86
  if (bf16_native() || simd() == Simd::baseline) return;
  wide_.reset(static_cast<float*>(::operator new(size * sizeof(float), std::align_val_t(64))),
              [](float* p) { ::operator delete(p, std::align_val_t(64)); });
  float* wide = wide_.get();
  parallel_for(size / 32, 64, [&](int64_t i0, int64_t i1) {  // pair row i of some panel
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < 16; ++j) {
        wide[i * 32 + j] = from_bf16(out[i * 32 + 2 * j + 1]);
        wide[i * 32 + 16 + j] = from_bf16(out[i * 32 + 2 * j]);
      }
  });
#endif
}

bool bf16_riding(const Bf16Matrix& w) {
#if SEQKERN_X86
  return bf16_native() && !bf16_amx() && w.group == 8 && w.width() % (8 * kPanelColumns) == 0;
#else
  (void)w;
  return false;
#endif
}

void bf16_gemm(int64_t M, const float* A, int64_t lda, const Bf16Matrix& w, int64_t u0,
               int64_t u1, float* C, int64_t ldc, bool accumulate, Rider* rider) {
  if (M <= 0 || u1 <= u0) return;
  (void)rider;  // (x86 only)
  // u0 on a panel boundary
  const ColumnBlocks cb{w.blocks, 0, w.width(), false, w.group, u0 / 16, w.panels()};
  auto kernel = bf16_gemm_baseline;
#if SEQKERN_X86
  if (bf16_native()) {
    if (rider && M == 1 && !bf16_amx())
      return avx512bf16::bf16_row_riding(w.K, u1 - u0, A, w.data(), C + u0, accumulate, cb,
                                         *rider);
    kernel = avx512bf16::bf16_gemm;
#if SEQKERN_AMX
    if (bf16_amx()) kernel = amx::bf16_gemm;
#endif
  } else if (simd() != Simd::baseline) {
    const bool avx512 = simd() == Simd::avx512;
    if (w.wide() && M >= (avx512 ? kWideRowsAvx512 : kWideRows)) {
      const ColumnBlocks plain{w.blocks, w.panels() * w.pairs() * 32, w.width()};  // group 1
      thread_local std::vector<float> a_wide;
      avx2::widen_bf16_rows(M, w.K, A, lda, a_wide);
      (avx512 ? avx512::packed_gemm_f32 : avx2::packed_gemm_f32)(
          M, 2 * w.pairs(), u1 - u0, a_wide.data(), 2 * w.pairs(), w.wide() + u0 * w.pairs() * 2,
          C + u0, ldc, accumulate, plain);
      return;
    }
    kernel = avx512 ? avx512::bf16_gemm : avx2::bf16_gemm;
  }
#endif
  kernel(M, w.K, u1 - u0, A, lda, w.data(), C + u0, ldc, accumulate, cb);
}

void bf16_linear(int64_t M, const float* x, const Bf16Matrix& w, float* y, bool accumulate) {
  // panels a chunk: 64 KB of bf16 weights at least (a panel: kPanelColumns = 16 columns x K
  // values of 2 bytes), so that small products stay on one thread
  const int64_t grain = std::max<int64_t>(1, (int64_t{2} << 10) / std::max<int64_t>(w.K, 1));
  parallel_for(w.panels(), grain, [&](int64_t p0, int64_t p1) {
    bf16_gemm(M, x, w.K, w, p0 * kPanelColumns, std::min(p1 * kPanelColumns, w.N), y, w.N,
              accumulate, nullptr);
  });
}

}  // namespace seqkern
