// The seqkern._cuda module: device pointers arrive as integers (0 for none) with the shapes
// seqkern._device checked; the GIL is released while the launches are queued on `stream`.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "seqkern/cuda_recurrent.h"

namespace py = pybind11;

namespace seqkern::bind {
namespace {

using cuda::CudaCell;
using cuda::LayerArgs;

template <typename T>
const T* in(uintptr_t p) { return reinterpret_cast<const T*>(p); }
template <typename T>
T* out(uintptr_t p) { return reinterpret_cast<T*>(p); }

// shape = (T, B, I, H); pointers = (x, w_ih, w_hh, b_ih, b_hh, lengths, h0, c0)
template <typename T>
LayerArgs<T> layer(int cell, const py::tuple& shape, const py::tuple& p) {
  return {static_cast<CudaCell>(cell), shape[0].cast<int64_t>(), shape[1].cast<int64_t>(),
          shape[2].cast<int64_t>(), shape[3].cast<int64_t>(), in<T>(p[0].cast<uintptr_t>()),
          in<T>(p[1].cast<uintptr_t>()), in<T>(p[2].cast<uintptr_t>()), in<T>(p[3].cast<uintptr_t>()),
          in<T>(p[4].cast<uintptr_t>()), in<int32_t>(p[5].cast<uintptr_t>()),
          in<T>(p[6].cast<uintptr_t>()), in<T>(p[7].cast<uintptr_t>())};
}

template <typename T>
void forward(int device, uintptr_t stream, int cell, py::tuple shape, py::tuple inputs,
             uintptr_t y, uintptr_t h_n, uintptr_t c_n, uintptr_t gates, uintptr_t aux,
             uintptr_t workspace) {
  const LayerArgs<T> a = layer<T>(cell, shape, inputs);
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::forward<T>(a, out<T>(y), out<T>(h_n), out<T>(c_n), out<T>(gates), out<T>(aux),
                   out<T>(workspace), reinterpret_cast<void*>(stream));
}

// saved = (y, gates, aux); incoming = (dy, dh_n, dc_n); grads = (dx, dh0, dc0, dw_ih, dw_hh,
// db_ih, db_hh)
template <typename T>
void backward(int device, uintptr_t stream, int cell, py::tuple shape, py::tuple inputs,
              py::tuple saved, py::tuple incoming, py::tuple grads, uintptr_t workspace) {
  const LayerArgs<T> a = layer<T>(cell, shape, inputs);
  auto at = [](const py::tuple& t, int i) { return t[i].cast<uintptr_t>(); };
  const T *y = in<T>(at(saved, 0)), *gates = in<T>(at(saved, 1)), *aux = in<T>(at(saved, 2));
  const T *dy = in<T>(at(incoming, 0)), *dh_n = in<T>(at(incoming, 1));
  const T* dc_n = in<T>(at(incoming, 2));
  T* g[7];
  for (int i = 0; i < 7; ++i) g[i] = out<T>(at(grads, i));
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::backward<T>(a, y, gates, aux, dy, dh_n, dc_n, g[0], g[1], g[2], g[3], g[4], g[5], g[6],
                    out<T>(workspace), reinterpret_cast<void*>(stream));
}

}  // namespace
}  // namespace seqkern::bind

PYBIND11_MODULE(_cuda, m) {
  using namespace seqkern;
  m.doc() = "seqkern CUDA kernels (private; use the seqkern package with CUDA arrays)";
  m.attr("cells") = py::dict(py::arg("rnn_tanh") = int(cuda::CudaCell::rnn_tanh),
                             py::arg("rnn_relu") = int(cuda::CudaCell::rnn_relu),
                             py::arg("lstm") = int(cuda::CudaCell::lstm),
                             py::arg("gru") = int(cuda::CudaCell::gru));
  m.def("device_count", [] { return cuda::device_count(); });
  // (count, the runtime's reason when it sees none, else "")
  m.def("device_status", [] {
    std::string why;
    const int n = cuda::device_count(&why);
    return py::make_tuple(n, why);
  });
  m.def("forward_workspace", [](int cell, int64_t T, int64_t B, int64_t H) {
    return cuda::forward_workspace(static_cast<cuda::CudaCell>(cell), T, B, H);
  });
  m.def("backward_workspace", [](int cell, int64_t T, int64_t B, int64_t H) {
    return cuda::backward_workspace(static_cast<cuda::CudaCell>(cell), T, B, H);
  });
  m.def("forward_float32", &bind::forward<float>);
  m.def("forward_float64", &bind::forward<double>);
  m.def("backward_float32", &bind::backward<float>);
  m.def("backward_float64", &bind::backward<double>);
}
