// _core.gru_forward / gru_backward: pointers in, GIL released, kernel called.
#include "seqkern/gru.h"

#include "arrays.h"
#include "packed_stack.h"

namespace seqkern::bind {

namespace {

template <typename T>
void forward(bool reset_after, const Arr<T>& x, const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& b_ih,
             const OptArr<T>& b_hh, const OptArr<int32_t>& lengths, const Arr<T>& h0, Arr<T>& y,
             Arr<T>& h_n, OptArr<T>& gates, OptArr<T>& aux, const OptPacked& packed) {
  RnnShape s = shape_of(x, h0);
  const auto [bf16, f32] = packed_layer<T>(get(packed), 0, w_ih, w_hh, nullptr);
  T* g = gates ? gates->mutable_data() : nullptr;
  T* n = aux ? aux->mutable_data() : nullptr;
  T *py = y.mutable_data(), *ph = h_n.mutable_data();
  py::gil_scoped_release nogil;
  gru_forward<T>(s, reset_after, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), ptr(lengths),
                 h0.data(), py, ph, g, n, bf16, f32);
}

template <typename T>
void backward(bool reset_after, const Arr<T>& x, const Arr<T>& w_ih, const Arr<T>& w_hh,
              const OptArr<int32_t>& lengths, const Arr<T>& h0, const Arr<T>& y,
              const Arr<T>& gates, const Arr<T>& aux, const OptArr<T>& dy, const OptArr<T>& dh_n,
              OptArr<T>& dx, OptArr<T>& dh0, OptArr<T>& dw_ih, OptArr<T>& dw_hh,
              OptArr<T>& db_ih, OptArr<T>& db_hh) {
  RnnShape s = shape_of(x, h0);
  T *pdx = mut(dx), *pdh = mut(dh0);
  T *pwi = mut(dw_ih), *pwh = mut(dw_hh);
  T* pbi = db_ih ? db_ih->mutable_data() : nullptr;
  T* pbh = db_hh ? db_hh->mutable_data() : nullptr;
  py::gil_scoped_release nogil;
  gru_backward<T>(s, reset_after, x.data(), w_ih.data(), w_hh.data(), ptr(lengths), h0.data(), y.data(),
                  gates.data(), aux.data(), ptr(dy), ptr(dh_n), pdx, pdh, pwi, pwh, pbi, pbh);
}

}  // namespace

void bind_gru(py::module_& m) {
  m.def("gru_forward", &forward<float>);
  m.def("gru_forward", &forward<double>);
  m.def("gru_backward", &backward<float>);
  m.def("gru_backward", &backward<double>);
}

}  // namespace seqkern::bind
