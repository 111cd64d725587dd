// A CPU stand-in for the CUDA runtime, so that csrc/cuda's kernels compile with g++ and run in
// tests on machines without a GPU (tests/test_cuda_emulated.py). It checks their logic (indexing,
// masking, the order of steps and reductions, shared memory between __syncthreads), not their
// speed nor what only a GPU shows (races the barriers hide, the memory model, launch limits).
//
// A launch runs its blocks one after another (from the last with SEQKERN_EMULATOR_REVERSE, which
// also reverses each round's thread order); a block's threads are fibers (ucontext) on the
// calling thread, each run until its next __syncthreads or its end, round after round, so a
// barrier holds once every thread still running has reached it. Since one block runs at a time,
// function-local statics serve as its shared memory. emulate_cuda.py rewrites
// `kernel<<<grid, block, smem, stream>>>(args)` into `::emu::launch(grid, block, [&] {
// kernel(args); })` before compiling.
#pragma once

#include <math.h>  // exp, tanh overloads for float and double in the global namespace

#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu {
inline dim3 thread_idx, block_idx, block_dim, grid_dim;

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  bool done = false;
};
constexpr size_t kStack = 256 * 1024;
inline ucontext_t scheduler;
inline Fiber* running = nullptr;
inline const std::function<void()>* body_of_launch = nullptr;

inline void fiber_main() {
  (*body_of_launch)();
  running->done = true;  // returning resumes the scheduler (uc_link)
}

inline void sync_threads() { swapcontext(&running->context, &scheduler); }

template <typename Body>
void launch(dim3 grid, dim3 block, Body&& body) {
  static std::vector<Fiber> fibers;
  const std::function<void()> f = [&] { body(); };
  body_of_launch = &f;
  grid_dim = grid, block_dim = block;
  const unsigned n = block.x * block.y * block.z;
  if (fibers.size() < n) fibers.resize(n);
  // SEQKERN_EMULATOR_REVERSE also runs the blocks from the last down: a kernel whose blocks
  // depend on each other's order within a launch gives other results then.
  const bool reverse_blocks = std::getenv("SEQKERN_EMULATOR_REVERSE") != nullptr;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        block_idx = reverse_blocks ? dim3(grid.x - 1 - x, grid.y - 1 - y, grid.z - 1 - z)
                                   : dim3(x, y, z);
        for (unsigned t = 0; t < n; ++t) {
          Fiber& fb = fibers[t];
          if (!fb.stack) fb.stack.reset(new char[kStack]);
          getcontext(&fb.context);
          fb.context.uc_stack.ss_sp = fb.stack.get();
          fb.context.uc_stack.ss_size = kStack;
          fb.context.uc_link = &scheduler;
          makecontext(&fb.context, fiber_main, 0);
          fb.done = false;
        }
        // SEQKERN_EMULATOR_REVERSE runs each round from the last thread down: a read of what a
        // lower thread writes without a barrier between them then sees the old value, as a
        // read of a higher thread's write does in the usual order.
        const bool reverse = std::getenv("SEQKERN_EMULATOR_REVERSE") != nullptr;
        for (unsigned live = n; live > 0;)  // one round: every live thread to its next barrier
          for (unsigned i = 0; i < n; ++i) {
            const unsigned t = reverse ? n - 1 - i : i;
            if (fibers[t].done) continue;
            running = &fibers[t];
            thread_idx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
            swapcontext(&scheduler, &fibers[t].context);
            if (fibers[t].done) --live;
          }
      }
}
}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)
inline void __syncthreads() { ::emu::sync_threads(); }

// The runtime calls csrc/cuda makes, on host memory.
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
using cudaStream_t = void*;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount };
constexpr int kEmulatedMultiprocessors = 4;  // few, so that products split k as on a small GPU

inline const char* cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) {
  *v = kEmulatedMultiprocessors;
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind,
                                   cudaStream_t) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
