// The seqkern._cuda module: device pointers arrive as integers (0 for none) with the shapes
// seqkern._device checked; the GIL is released while the launches are queued on `stream`.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "seqkern/cuda_ops.h"
#include "seqkern/cuda_recurrent.h"

namespace py = pybind11;

namespace seqkern::bind {
namespace {

using cuda::CudaCell;
using cuda::LayerArgs;
using seqkern::AttnShape;
using seqkern::CtcShape;

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

void* as_stream(uintptr_t stream) { return reinterpret_cast<void*>(stream); }

template <typename T>
void matmul(int device, uintptr_t stream, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
            uintptr_t A, uintptr_t B, uintptr_t C) {
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::matmul<T>(ta, tb, M, N, K, in<T>(A), in<T>(B), out<T>(C), as_stream(stream));
}

template <typename T>
void cross_entropy_forward(int device, uintptr_t stream, int64_t N, int64_t V, uintptr_t logits,
                           uintptr_t targets, int64_t ignore_index, double smoothing,
                           uintptr_t losses, uintptr_t lse) {
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::cross_entropy_forward<T>(N, V, in<T>(logits), in<int64_t>(targets), ignore_index,
                                 T(smoothing), out<T>(losses), out<T>(lse), as_stream(stream));
}

template <typename T>
void cross_entropy_backward(int device, uintptr_t stream, int64_t N, int64_t V, uintptr_t logits,
                            uintptr_t targets, int64_t ignore_index, double smoothing,
                            uintptr_t lse, uintptr_t scale, bool per_row, uintptr_t dlogits) {
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::cross_entropy_backward<T>(N, V, in<T>(logits), in<int64_t>(targets), ignore_index,
                                  T(smoothing), in<T>(lse), in<T>(scale), per_row,
                                  out<T>(dlogits), as_stream(stream));
}

template <typename T>
void embedding_forward(int device, uintptr_t stream, int64_t N, int64_t D, uintptr_t weight,
                       uintptr_t ids, uintptr_t y) {
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::embedding_forward<T>(N, D, in<T>(weight), in<int64_t>(ids), out<T>(y), as_stream(stream));
}

template <typename T>
void embedding_backward(int device, uintptr_t stream, int64_t U, int64_t D, uintptr_t dy,
                        uintptr_t order, uintptr_t starts, uintptr_t rows, uintptr_t dweight) {
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::embedding_backward<T>(U, D, in<T>(dy), in<int64_t>(order), in<int64_t>(starts),
                              in<int64_t>(rows), out<T>(dweight), as_stream(stream));
}

// shape = (B, Tq, Tk, H, Hv)
AttnShape attn_shape(const py::tuple& s) {
  return {s[0].cast<int64_t>(), s[1].cast<int64_t>(), s[2].cast<int64_t>(), s[3].cast<int64_t>(),
          s[4].cast<int64_t>()};
}

// Dot scores: score = (q, k, scale); additive: score = (pq, pk, u). outputs = (context, lse,
// weights).
template <typename T>
void attention_forward(int device, uintptr_t stream, bool additive, py::tuple shape,
                       py::tuple score, uintptr_t v, uintptr_t lengths, py::tuple outputs) {
  const AttnShape s = attn_shape(shape);
  const uintptr_t a = score[0].cast<uintptr_t>(), b = score[1].cast<uintptr_t>();
  const double scale = additive ? 0.0 : score[2].cast<double>();
  const uintptr_t u = additive ? score[2].cast<uintptr_t>() : 0;
  T *context = out<T>(outputs[0].cast<uintptr_t>()), *lse = out<T>(outputs[1].cast<uintptr_t>());
  T* weights = out<T>(outputs[2].cast<uintptr_t>());
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  if (additive)
    cuda::additive_attention_forward<T>(s, in<T>(a), in<T>(b), in<T>(u), in<T>(v),
                                        in<int32_t>(lengths), context, lse, weights,
                                        as_stream(stream));
  else
    cuda::attention_forward<T>(s, in<T>(a), in<T>(b), in<T>(v), in<int32_t>(lengths), T(scale),
                               context, lse, weights, as_stream(stream));
}

// saved = (context, lse, dcontext); grads = (dq, dk, dv, du) (du: additive only)
template <typename T>
void attention_backward(int device, uintptr_t stream, bool additive, py::tuple shape,
                        py::tuple score, uintptr_t v, uintptr_t lengths, py::tuple saved,
                        py::tuple grads, uintptr_t workspace) {
  const AttnShape s = attn_shape(shape);
  const uintptr_t a = score[0].cast<uintptr_t>(), b = score[1].cast<uintptr_t>();
  const double scale = additive ? 0.0 : score[2].cast<double>();
  const uintptr_t u = additive ? score[2].cast<uintptr_t>() : 0;
  const T *context = in<T>(saved[0].cast<uintptr_t>()), *lse = in<T>(saved[1].cast<uintptr_t>());
  const T* dcontext = in<T>(saved[2].cast<uintptr_t>());
  T* g[4];
  for (int i = 0; i < 4; ++i) g[i] = out<T>(grads[i].cast<uintptr_t>());
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  if (additive)
    cuda::additive_attention_backward<T>(s, in<T>(a), in<T>(b), in<T>(u), in<T>(v),
                                         in<int32_t>(lengths), context, lse, dcontext, g[0], g[1],
                                         g[3], g[2], out<T>(workspace), as_stream(stream));
  else
    cuda::attention_backward<T>(s, in<T>(a), in<T>(b), in<T>(v), in<int32_t>(lengths), T(scale),
                                context, lse, dcontext, g[0], g[1], g[2], out<T>(workspace),
                                as_stream(stream));
}

// shape = (T, B, C, L); labels = (targets, offsets, input_lengths, target_lengths), int64
struct CtcCall {
  CtcShape s;
  const int64_t* l[4];
  CtcCall(const py::tuple& shape, const py::tuple& labels)
      : s{shape[0].cast<int64_t>(), shape[1].cast<int64_t>(), shape[2].cast<int64_t>(),
          shape[3].cast<int64_t>()} {
    for (int i = 0; i < 4; ++i) l[i] = in<int64_t>(labels[i].cast<uintptr_t>());
  }
};

template <typename T>
void ctc_forward(int device, uintptr_t stream, py::tuple shape, uintptr_t log_probs,
                 py::tuple labels, int64_t blank, uintptr_t losses, uintptr_t log_alpha) {
  const CtcCall c(shape, labels);
  const CtcShape& s = c.s;
  const int64_t* const* l = c.l;
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::ctc_loss_forward<T>(s, in<T>(log_probs), l[0], l[1], l[2], l[3], blank, out<T>(losses),
                            out<T>(log_alpha), as_stream(stream));
}

template <typename T>
void ctc_backward(int device, uintptr_t stream, py::tuple shape, uintptr_t log_probs,
                  py::tuple labels, int64_t blank, uintptr_t losses, uintptr_t log_alpha,
                  uintptr_t scale, uintptr_t grad, uintptr_t workspace) {
  const CtcCall c(shape, labels);
  const CtcShape& s = c.s;
  const int64_t* const* l = c.l;
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::ctc_loss_backward<T>(s, in<T>(log_probs), l[0], l[1], l[2], l[3], blank, in<T>(losses),
                             in<T>(log_alpha), in<T>(scale), out<T>(grad), out<T>(workspace),
                             as_stream(stream));
}

template <typename T>
void ctc_reduce(int device, uintptr_t stream, int64_t B, uintptr_t losses,
                uintptr_t target_lengths, int reduction, bool zero_infinity, uintptr_t out_) {
  py::gil_scoped_release nogil;
  cuda::set_device(device);
  cuda::ctc_reduce<T>(B, in<T>(losses), in<int64_t>(target_lengths), reduction, zero_infinity,
                      out<T>(out_), as_stream(stream));
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
  m.def("attention_backward_workspace", [](py::tuple shape, bool additive) {
    return cuda::attention_backward_workspace(bind::attn_shape(shape), additive);
  });
  m.def("ctc_backward_workspace", [](int64_t T, int64_t B, int64_t C, int64_t L) {
    return cuda::ctc_backward_workspace(CtcShape{T, B, C, L});
  });
  // The other ops, each as <name>_float32 and <name>_float64.
#define SEQKERN_BIND(name)                                \
  m.def(#name "_float32", &bind::name<float>);            \
  m.def(#name "_float64", &bind::name<double>);
  SEQKERN_BIND(matmul)
  SEQKERN_BIND(cross_entropy_forward)
  SEQKERN_BIND(cross_entropy_backward)
  SEQKERN_BIND(embedding_forward)
  SEQKERN_BIND(embedding_backward)
  SEQKERN_BIND(attention_forward)
  SEQKERN_BIND(attention_backward)
  SEQKERN_BIND(ctc_forward)
  SEQKERN_BIND(ctc_backward)
  SEQKERN_BIND(ctc_reduce)
#undef SEQKERN_BIND
}
