// _core.lstm_forward / lstm_backward: pointers in, GIL released, kernel called.
#include "seqkern/lstm.h"

#include "arrays.h"
#include "packed_stack.h"

namespace seqkern::bind {

namespace {

// x (T, B, I), c0 (B, H), w_hr (P, H) or none
template <typename T>
RnnShape lstm_shape(const Arr<T>& x, const Arr<T>& c0, const OptArr<T>& w_hr) {
  return {x.shape(0), x.shape(1), x.shape(2), c0.shape(1), w_hr ? w_hr->shape(0) : 0};
}

template <typename T>
void forward(const Arr<T>& x, const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& b_ih,
             const OptArr<T>& b_hh, const OptArr<T>& w_hr, const OptArr<int32_t>& lengths, const Arr<T>& h0,
             const Arr<T>& c0, Arr<T>& y, Arr<T>& h_n, Arr<T>& c_n, OptArr<T>& gates,
             OptArr<T>& cs, const OptPacked& packed) {
  RnnShape s = lstm_shape(x, c0, w_hr);
  const auto [bf16, f32] = packed_layer<T>(get(packed), 0, w_ih, w_hh, w_hr ? &*w_hr : nullptr);
  T* g = gates ? gates->mutable_data() : nullptr;
  T* c = cs ? cs->mutable_data() : nullptr;
  T *py = y.mutable_data(), *ph = h_n.mutable_data(), *pc = c_n.mutable_data();
  py::gil_scoped_release nogil;
  lstm_forward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), ptr(w_hr),
                  ptr(lengths),
                  h0.data(), c0.data(), py, ph, pc, g, c, bf16, f32);
}

template <typename T>
void backward(const Arr<T>& x, const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& w_hr,
              const OptArr<int32_t>& lengths, const Arr<T>& h0, const Arr<T>& c0, const Arr<T>& y,
              const Arr<T>& gates, const Arr<T>& cs, const OptArr<T>& dy, const OptArr<T>& dh_n,
              const OptArr<T>& dc_n, OptArr<T>& dx, OptArr<T>& dh0, Arr<T>& dc0, OptArr<T>& dw_ih,
              OptArr<T>& dw_hh, OptArr<T>& dw_hr, OptArr<T>& db) {
  RnnShape s = lstm_shape(x, c0, w_hr);
  T *pdx = mut(dx), *pdh = mut(dh0), *pdc = dc0.mutable_data();
  T *pwi = mut(dw_ih), *pwh = mut(dw_hh);
  T* pdb = db ? db->mutable_data() : nullptr;
  T* pdr = dw_hr ? dw_hr->mutable_data() : nullptr;
  py::gil_scoped_release nogil;
  lstm_backward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(w_hr), ptr(lengths), h0.data(), c0.data(),
                   y.data(), gates.data(), cs.data(), ptr(dy), ptr(dh_n), ptr(dc_n), pdx, pdh, pdc,
                   pwi, pwh, pdr, pdb);
}

}  // namespace

void bind_lstm(py::module_& m) {
  m.def("lstm_forward", &forward<float>);
  m.def("lstm_forward", &forward<double>);
  m.def("lstm_backward", &backward<float>);
  m.def("lstm_backward", &backward<double>);
}

}  // namespace seqkern::bind
