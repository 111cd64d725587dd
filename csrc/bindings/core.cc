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
  // c (M, N) = a (M, K) @ b (N, K)^T through seqkern's BLAS and pool: the roofline that
  // benchmarks/rnn.py measures the recurrent kernels against.
  m.def("gemm_nt", [](const seqkern::bind::Arr<float>& a, const seqkern::bind::Arr<float>& b,
                      seqkern::bind::Arr<float>& c) {
    const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(0);
    if (b.shape(1) != K || c.shape(0) != M || c.shape(1) != N)
      throw py::value_error("gemm_nt: expected a (M, K), b (N, K), c (M, N)");
    const float *pa = a.data(), *pb = b.data();
    float* pc = c.mutable_data();
    py::gil_scoped_release nogil;
    seqkern::gemm<float>(false, true, M, N, K, 1.0f, pa, K, pb, K, 0.0f, pc, N);
  });
  seqkern::bind::bind_buffers(m);
  seqkern::bind::bind_rnn(m);
  seqkern::bind::bind_lstm(m);
  seqkern::bind::bind_gru(m);
  seqkern::bind::bind_stack(m);
  seqkern::bind::bind_word2vec(m);
}
