// _core.stack_forward / stack_backward: lists of per-layer arrays to pointer tables, GIL released.
#include "seqkern/stack.h"

#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <vector>

#include "packed_stack.h"
#include "seqkern/bf16.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

template <typename T>
using Arrs = std::vector<Arr<T>>;

template <typename T>
const T* item(const Arrs<T>& a, size_t k) {
  return a.empty() ? nullptr : a[k].data();
}

// The gradient lists: None where a weight wants no gradient (frozen), or empty when the network
// has no such weights.
template <typename T>
using OptArrs = std::vector<OptArr<T>>;

template <typename T>
T* mut_item(OptArrs<T>& a, size_t k) {
  return a.empty() ? nullptr : mut(a[k]);
}

// Entry k of each list belongs to layer-direction k; bias and projection lists are empty when
// there are none.
template <typename T>
std::vector<LayerWeights<T>> weights(const Arrs<T>& w_ih, const Arrs<T>& w_hh, const Arrs<T>& b_ih,
                                     const Arrs<T>& b_hh, const Arrs<T>& w_hr) {
  std::vector<LayerWeights<T>> w(w_ih.size());
  for (size_t k = 0; k < w.size(); ++k)
    w[k] = {w_ih[k].data(), w_hh[k].data(), item(b_ih, k), item(b_hh, k), item(w_hr, k)};
  return w;
}

// x (T, B, I), h0 (L*D, B, S), w_hr[k] (P, H) when there are projections
template <typename T>
StackShape stack_shape(const Arr<T>& x, const Arr<T>& h0, const Arrs<T>& w_hr, int64_t L) {
  const int64_t P = w_hr.empty() ? 0 : w_hr[0].shape(0);
  const int64_t H = w_hr.empty() ? h0.shape(2) : w_hr[0].shape(1);
  return {x.shape(0), x.shape(1), x.shape(2), H, L, h0.shape(0) / L, P};
}

// _core.PackedStack(cell, L, I, H, w_ih, w_hh, w_hr, precision): the stack's weight matrices
// (lists as stack_forward takes them) packed once, at that precision.
PackedStack make_packed_stack(Cell cell, int64_t L, int64_t I, int64_t H, const Arrs<float>& w_ih,
                              const Arrs<float>& w_hh, const Arrs<float>& w_hr,
                              const std::string& precision) {
  if (precision != "float32" && precision != "bfloat16")
    throw std::invalid_argument("precision: float32 or bfloat16");
  PackedStack out;
  const int64_t D = static_cast<int64_t>(w_ih.size()) / L;
  const int64_t P = w_hr.empty() ? 0 : w_hr[0].shape(0);
  const Arrs<float> none;
  const auto w = weights(w_ih, w_hh, none, none, w_hr);
  {
    py::gil_scoped_release nogil;
    for (size_t k = 0; k < w.size(); ++k) {
      const RnnShape s{0, 0, k < static_cast<size_t>(D) ? I : D * (P ? P : H), H, P};
      if (precision == "bfloat16")
        out.bf16.push_back(pack_layer<Bf16Layer>(cell, s, w[k]));
      else
        out.f32.push_back(pack_layer<F32Layer>(cell, s, w[k]));
    }
  }
  out.key = py::make_tuple(cell, L, D, I, H, P);
  out.precision = precision;
  for (size_t k = 0; k < w.size(); ++k)
    out.packed_from.append(py::make_tuple(w_ih[k].original(), w_hh[k].original(),
                                          w_hr.empty() ? py::none() : w_hr[k].original()));
  return out;
}

template <typename T>
void forward(Cell cell, int64_t L, const Arr<T>& x, const Arrs<T>& w_ih, const Arrs<T>& w_hh,
             const Arrs<T>& b_ih, const Arrs<T>& b_hh, const Arrs<T>& w_hr,
             const OptArr<int32_t>& lengths, const Arr<T>& h0, const OptArr<T>& c0,
             const OptArr<T>& masks, Arr<T>& y,
             Arr<T>& h_n, OptArr<T>& c_n, OptArr<T>& ys, OptArr<T>& gates, OptArr<T>& aux,
             OptArr<T>& inputs, const OptPacked& packed) {
  StackShape s = stack_shape(x, h0, w_hr, L);
  auto w = weights(w_ih, w_hh, b_ih, b_hh, w_hr);
  for (size_t k = 0; k < w.size(); ++k)
    std::tie(w[k].bf16, w[k].f32) =
        packed_layer<T>(get(packed), k, w_ih[k], w_hh[k], w_hr.empty() ? nullptr : &w_hr[k]);
  StackSaved<T> saved{mut(ys), mut(gates), mut(aux), mut(inputs)};
  T *py = y.mutable_data(), *ph = h_n.mutable_data(), *pc = mut(c_n);
  py::gil_scoped_release nogil;
  stack_forward<T>(cell, s, x.data(), w.data(), ptr(lengths), h0.data(), ptr(c0), ptr(masks), py,
                   ph, pc, saved.ys ? &saved : nullptr);
}

template <typename T>
void backward(Cell cell, int64_t L, const Arr<T>& x, const Arrs<T>& w_ih, const Arrs<T>& w_hh,
              const Arrs<T>& b_ih, const Arrs<T>& b_hh, const Arrs<T>& w_hr,
              const OptArr<int32_t>& lengths, const Arr<T>& h0, const OptArr<T>& c0,
              const OptArr<T>& masks, Arr<T>& ys,
              OptArr<T>& gates, OptArr<T>& aux, OptArr<T>& inputs, const OptArr<T>& dy,
              const OptArr<T>& dh_n, const OptArr<T>& dc_n, OptArr<T>& dx, OptArr<T>& dh0,
              OptArr<T>& dc0, OptArrs<T>& dw_ih, OptArrs<T>& dw_hh, OptArrs<T>& db_ih,
              OptArrs<T>& db_hh, OptArrs<T>& dw_hr) {
  StackShape s = stack_shape(x, h0, w_hr, L);
  auto w = weights(w_ih, w_hh, b_ih, b_hh, w_hr);
  std::vector<LayerGrads<T>> g(dw_ih.size());
  for (size_t k = 0; k < g.size(); ++k)
    g[k] = {mut_item(dw_ih, k), mut_item(dw_hh, k), mut_item(db_ih, k), mut_item(db_hh, k),
            mut_item(dw_hr, k)};
  StackSaved<T> saved{ys.mutable_data(), mut(gates), mut(aux), mut(inputs)};
  T *pdx = mut(dx), *pdh = mut(dh0), *pdc = mut(dc0);
  py::gil_scoped_release nogil;
  stack_backward<T>(cell, s, x.data(), w.data(), ptr(lengths), h0.data(), ptr(c0), ptr(masks),
                    saved, ptr(dy), ptr(dh_n), ptr(dc_n), pdx, pdh, pdc, g.data());
}

}  // namespace

void bind_stack(py::module_& m) {
  py::enum_<Cell>(m, "Cell")
      .value("rnn_tanh", Cell::RnnTanh)
      .value("rnn_relu", Cell::RnnRelu)
      .value("lstm", Cell::Lstm)
      .value("gru", Cell::Gru)
      .value("gru_reset_before", Cell::GruResetBefore);
  py::class_<PackedStack>(m, "PackedStack")
      .def(py::init(&make_packed_stack))
      .def_readonly("key", &PackedStack::key)
      .def_readonly("precision", &PackedStack::precision)
      .def_readonly("packed_from", &PackedStack::packed_from);
  m.def("bf16_native", &bf16_native);
  m.def("bf16_amx", &bf16_amx);
  m.def("stack_forward", &forward<float>);
  m.def("stack_forward", &forward<double>);
  m.def("stack_backward", &backward<float>);
  m.def("stack_backward", &backward<double>);
}

}  // namespace seqkern::bind
