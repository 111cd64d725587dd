// _core.rnn_forward / rnn_backward: pointers in, GIL released, kernel called.
#include "seqkern/rnn.h"

#include "arrays.h"
#include "packed_stack.h"

namespace seqkern::bind {

namespace {

template <typename T>
void forward(bool relu, const Arr<T>& x, const Arr<T>& w_ih, const Arr<T>& w_hh,
             const OptArr<T>& b_ih, const OptArr<T>& b_hh, const OptArr<int32_t>& lengths,
             const Arr<T>& h0, Arr<T>& y, Arr<T>& h_n, const OptPacked& packed) {
  RnnShape s = shape_of(x, h0);
  Nonlinearity act = relu ? Nonlinearity::Relu : Nonlinearity::Tanh;
  const auto [bf16, f32] = packed_layer<T>(get(packed), 0, w_ih, w_hh, nullptr);
  T *py = y.mutable_data(), *ph = h_n.mutable_data();
  py::gil_scoped_release nogil;
  rnn_forward<T>(s, act, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), ptr(lengths),
                 h0.data(), py, ph, bf16, f32);
}

template <typename T>
void backward(bool relu, const Arr<T>& x, const Arr<T>& w_ih, const Arr<T>& w_hh,
              const OptArr<int32_t>& lengths, const Arr<T>& h0, const Arr<T>& y,
              const OptArr<T>& dy, const OptArr<T>& dh_n, OptArr<T>& dx, OptArr<T>& dh0,
              OptArr<T>& dw_ih, OptArr<T>& dw_hh, OptArr<T>& db) {
  RnnShape s = shape_of(x, h0);
  Nonlinearity act = relu ? Nonlinearity::Relu : Nonlinearity::Tanh;
  T *pdx = mut(dx), *pdh = mut(dh0);
  T *pwi = mut(dw_ih), *pwh = mut(dw_hh);
  T* pdb = db ? db->mutable_data() : nullptr;
  py::gil_scoped_release nogil;
  rnn_backward<T>(s, act, x.data(), w_ih.data(), w_hh.data(), ptr(lengths), h0.data(), y.data(),
                  ptr(dy), ptr(dh_n), pdx, pdh, pwi, pwh, pdb);
}

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("rnn_forward", &forward<float>);
  m.def("rnn_forward", &forward<double>);
  m.def("rnn_backward", &backward<float>);
  m.def("rnn_backward", &backward<double>);
}

}  // namespace seqkern::bind
