// One core, one product: seqkern's packed micro-kernels of one SIMD level (avx2 or avx512:
// csrc/cpu/packed_gemm_<level>.cc) on C (M, N) += A (M, K) @ op(W), W packed once, as a recurrent
// step uses them. Built and run by benchmarks/packed_gemm.py; prints "M K N seconds error" (the
// best of 7 rounds of `reps` products; the largest error of C relative to sum |a w|, exit status 1
// above 1e-5).
// Kernel changes are 5-10% effects, below what end-to-end timings on a shared machine resolve.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "packed_gemm.h"

// The extension keeps freed packing blocks for the next call (csrc/cpu/packed_gemm.cc); this
// program packs once, so plain aligned allocations stand in for that cache.
namespace seqkern {
void* take_block(size_t bytes) { return ::operator new(bytes, std::align_val_t(64)); }
void give_block(void* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
}  // namespace seqkern

int main(int argc, char** argv) {
  using namespace seqkern;
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s M K N reps avx2|avx512\n", argv[0]);
    return 2;
  }
  const bool avx512 = std::string(argv[5]) == "avx512";
  const int64_t M = std::atol(argv[1]), K = std::atol(argv[2]), N = std::atol(argv[3]);
  const int reps = std::atoi(argv[4]);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> w(N * K), a(M * K), c(M * N, 0.0f);
  for (float& v : w) v = u(rng);
  for (float& v : a) v = u(rng);
  std::vector<float, CacheLineAllocator<float>> packed(avx2::packed_size_f32(K, N));
  const int64_t panels = (N + kPanelColumns - 1) / kPanelColumns;
  avx2::pack_panels_f32(w.data(), K, true, K, N, 0, panels, packed.data(), PanelLayout{K, panels},
                        0);
  double best = 1e30;
  for (int round = 0; round < 7; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i)
      (avx512 ? avx512::packed_gemm_f32 : avx2::packed_gemm_f32)(
          M, K, N, a.data(), K, packed.data(), c.data(), N, true, ColumnBlocks{});
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    if (dt.count() / reps < best) best = dt.count() / reps;
  }
  // The product it timed, checked against plain sums: a timing of wrong results is worthless.
  (avx512 ? avx512::packed_gemm_f32 : avx2::packed_gemm_f32)(
      M, K, N, a.data(), K, packed.data(), c.data(), N, false, ColumnBlocks{});
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0, size = 0;
      for (int64_t k = 0; k < K; ++k) {
        sum += double(a[i * K + k]) * w[j * K + k];
        size += std::abs(double(a[i * K + k]) * w[j * K + k]);
      }
      worst = std::max(worst, std::abs(c[i * N + j] - sum) / (size + 1e-30));
    }
  std::printf("%ld %ld %ld %.9f %.3g\n", static_cast<long>(M), static_cast<long>(K),
              static_cast<long>(N), best, worst);
  return worst < 1e-5 ? 0 : 1;
}
