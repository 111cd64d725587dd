// The seqkern._core module: build facts, the thread pool, and one binding file per op family.
#include "arrays.h"
#include "seqkern/activations.h"
#include "seqkern/gemm.h"
#include "seqkern/threads.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "seqkern C++ kernels (private; use the seqkern package)";
  m.attr("__version__") = SEQKERN_VERSION;
  // seqkern's pool owns all parallelism (csrc/cpu/threads.cc): BLAS runs inside its chunks.
  seqkern::blas_set_num_threads(1);
  m.def("blas_name", &seqkern::blas_name);
  m.def("simd_level", &seqkern::simd_level);
  m.def("set_num_threads", &seqkern::set_num_threads);
  m.def("get_num_threads", &seqkern::get_num_threads);
  seqkern::bind::bind_rnn(m);
  seqkern::bind::bind_lstm(m);
  seqkern::bind::bind_gru(m);
  seqkern::bind::bind_stack(m);
}
