// One core, one product: seqkern's packed micro-kernels of one SIMD level (avx2 or avx512:
// csrc/cpu/packed_gemm_<level>.cc) on C (M, N) += A (M, K) @ op(W), W packed once, as a recurrent
// step uses them. Built and run by benchmarks/packed_gemm.py; prints "M K N seconds error read
// grouped": the best of 7 rounds of `reps` products; the largest error of C relative to sum
// |a w| (exit status 1 above 1e-5); the same for plain reads of the packed W, and (avx512, up to
// kGroupedRows rows) for the products on grouped panels, else 0.
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

#include <immintrin.h>

#include "packed_gemm.h"

// The extension keeps freed packing blocks for the next call (csrc/cpu/packed_gemm.cc); this
// program packs once, so plain aligned allocations stand in for that cache.
namespace seqkern {
void* take_block(size_t bytes) { return ::operator new(bytes, std::align_val_t(64)); }
void give_block(void* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
}  // namespace seqkern

// The bound of a product of few rows, which reads every value of W for a few FMAs: a plain read
// of the packed W (n floats, 64-byte aligned), 8 sums of 32-byte loads, nothing else in the way.
__attribute__((noinline)) float read_all(const float* p, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
    s4 = _mm256_add_ps(s4, _mm256_load_ps(p + i + 32));
    s5 = _mm256_add_ps(s5, _mm256_load_ps(p + i + 40));
    s6 = _mm256_add_ps(s6, _mm256_load_ps(p + i + 48));
    s7 = _mm256_add_ps(s7, _mm256_load_ps(p + i + 56));
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
                                 _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)));
  float tail = 0;
  for (; i < n; ++i) tail += p[i];
  return _mm256_cvtss_f32(s) + tail;
}

// The best time of 7 rounds of `reps` calls of f.
template <typename F>
double best_of_7(int reps, F&& f) {
  double best = 1e30;
  for (int round = 0; round < 7; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) f();
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    best = std::min(best, dt.count() / reps);
  }
  return best;
}

// The largest error of C (M, N) = A (M, K) @ W^T (W (N, K)) relative to sum |a w|.
double worst_error(int64_t M, int64_t K, int64_t N, const std::vector<float>& a,
                   const std::vector<float>& w, const std::vector<float>& c) {
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
  return worst;
}

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
  const auto product = avx512 ? avx512::packed_gemm_f32 : avx2::packed_gemm_f32;
  const double best = best_of_7(reps, [&] {
    product(M, K, N, a.data(), K, packed.data(), c.data(), N, true, ColumnBlocks{});
  });
  // The product it timed, checked against plain sums: a timing of wrong results is worthless.
  product(M, K, N, a.data(), K, packed.data(), c.data(), N, false, ColumnBlocks{});
  double worst = worst_error(M, K, N, a, w, c);
  volatile float sink = 0;
  const double read =
      best_of_7(reps, [&] { sink = sink + read_all(packed.data(), packed.size()); });
  // A team member's product of few rows at AVX-512 (avx512::grouped_rows_f32): the panels in
  // groups of 8, each group's rows side by side, one stream through W (0: not timed).
  double grouped = 0;
  if (avx512 && M <= kGroupedRows) {
    const PanelLayout layout{K, panels, 8, 1};
    std::vector<float, CacheLineAllocator<float>> in_groups(layout.lines() * kPanelColumns);
    avx2::pack_panels_f32(w.data(), K, true, K, N, 0, panels, in_groups.data(), layout, 0);
    grouped = best_of_7(reps, [&] {
      avx512::grouped_rows_f32(M, K, N, a.data(), K, in_groups.data(), layout, 0, 1, c.data(), N,
                               0, true);
    });
    avx512::grouped_rows_f32(M, K, N, a.data(), K, in_groups.data(), layout, 0, 1, c.data(), N, 0,
                             false);
    worst = std::max(worst, worst_error(M, K, N, a, w, c));
  }
  std::printf("%ld %ld %ld %.9f %.3g %.9f %.9f\n", static_cast<long>(M), static_cast<long>(K),
              static_cast<long>(N), best, worst, read, grouped);
  return worst < 1e-5 ? 0 : 1;
}
