// _core.Bf16Matrix (a Linear's weight rounded and packed) and _core.bf16_linear: pointers in,
// GIL released, kernel called.
#include "seqkern/bf16.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

// w (N, K), float32, C-contiguous (seqkern/nn/linear.py makes it so).
Bf16Matrix pack(const Arr<float>& w) {
  if (w.ndim() != 2) throw py::value_error("Bf16Matrix: expected a 2-D weight (out, in)");
  const int64_t N = w.shape(0), K = w.shape(1);
  const float* pw = w.data();
  py::gil_scoped_release nogil;
  return Bf16Matrix(pw, K, K, N);
}

// y (M, N) (+)= bf16(x) (M, K) @ op(w).
void forward(const Arr<float>& x, const Bf16Matrix& w, Arr<float>& y, bool accumulate) {
  if (x.ndim() != 2 || y.ndim() != 2 || x.shape(1) != w.K || y.shape(0) != x.shape(0) ||
      y.shape(1) != w.N)
    throw py::value_error("bf16_linear: expected x (M, K), y (M, N) for the packed (N, K)");
  const int64_t M = x.shape(0);
  const float* px = x.data();
  float* py_ = y.mutable_data();
  py::gil_scoped_release nogil;
  bf16_linear(M, px, w, py_, accumulate);
}

}  // namespace

void bind_linear(py::module_& m) {
  py::class_<Bf16Matrix>(m, "Bf16Matrix")
      .def(py::init(&pack))
      .def_property_readonly("shape", [](const Bf16Matrix& w) { return py::make_tuple(w.N, w.K); });
  m.def("bf16_linear", &forward);
}

}  // namespace seqkern::bind
