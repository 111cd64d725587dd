// The seqkern._core module: build facts, the thread pool, and one binding file per op family.
#include "arrays.h"
#include "seqkern/cpu_count.h"
#include "seqkern/gemm.h"
#include "seqkern/simd.h"
#include "seqkern/threads.h"

namespace py = pybind11;

namespace seqkern::bind {

// c (M, N) = alpha op(a) op(b) + beta c on 2-D arrays: op(a) (M, K), op(b) (K, N).
template <typename T>
void gemm2d(bool trans_a, bool trans_b, double alpha, const Arr<T>& a, const Arr<T>& b,
            double beta, Arr<T>& c) {
  if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2)
    throw py::value_error("gemm: expected 2-D arrays");
  const int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t N = trans_b ? b.shape(0) : b.shape(1);
  if ((trans_b ? b.shape(1) : b.shape(0)) != K || c.shape(0) != M || c.shape(1) != N)
    throw py::value_error("gemm: expected op(a) (M, K), op(b) (K, N), c (M, N)");
  const T *pa = a.data(), *pb = b.data();
  T* pc = c.mutable_data();
  py::gil_scoped_release nogil;
  gemm<T>(trans_a, trans_b, M, N, K, T(alpha), pa, a.shape(1), pb, b.shape(1), T(beta), pc, N);
}

}  // namespace seqkern::bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "seqkern C++ kernels (private; use the seqkern package)";
  m.attr("__version__") = SEQKERN_VERSION;
  // seqkern's pool owns all parallelism (csrc/cpu/threads.cc): BLAS runs inside its chunks.
  seqkern::blas_set_num_threads(1);
  m.def("blas_name", &seqkern::blas_name);
  m.def("simd_level", &seqkern::simd_level);
  m.def("simd_levels", &seqkern::simd_levels);
  m.def("avx512_cores", &seqkern::avx512_cores_name);
  m.def("set_num_threads", &seqkern::set_num_threads);
  m.def("get_num_threads", &seqkern::get_num_threads);
  // The default thread count's cap: a container's CPU quota (csrc/cpu/cpu_count.cc).
  m.def("cgroup_cpu_quota", &seqkern::cgroup_cpu_quota,
        py::arg("mountinfo") = "/proc/self/mountinfo", py::arg("cgroup") = "/proc/self/cgroup");
  // c = alpha op(a) op(b) + beta c through seqkern's BLAS and pool: the layers' projections
  // (seqkern.nn.Linear) and the roofline that benchmarks/rnn.py measures the kernels against.
  m.def("gemm", &seqkern::bind::gemm2d<float>);
  m.def("gemm", &seqkern::bind::gemm2d<double>);
  seqkern::bind::bind_buffers(m);
  seqkern::bind::bind_layout(m);
  seqkern::bind::bind_rnn(m);
  seqkern::bind::bind_lstm(m);
  seqkern::bind::bind_book(m);
  seqkern::bind::bind_gru(m);
  seqkern::bind::bind_stack(m);
  seqkern::bind::bind_word2vec(m);
  seqkern::bind::bind_cross_entropy(m);
  seqkern::bind::bind_embedding(m);
  seqkern::bind::bind_optim(m);
  seqkern::bind::bind_attention(m);
  seqkern::bind::bind_ctc(m);
  seqkern::bind::bind_cell_step(m);
  seqkern::bind::bind_one_layer(m);
  seqkern::bind::bind_linear(m);
  seqkern::bind::bind_sampling(m);
}
