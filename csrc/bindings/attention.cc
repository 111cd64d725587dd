// _core.attention_forward / _backward and additive_attention_forward / _backward: pointers in,
// GIL released, kernel called.
#include "seqkern/attention.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

// q (B, Tq, H), k (B, Tk, H'), v (B, Tk, Hv)
template <typename T>
AttnShape shape_of(const Arr<T>& q, const Arr<T>& v) {
  return {q.shape(0), q.shape(1), v.shape(1), q.shape(2), v.shape(2)};
}

template <typename T>
void forward(const Arr<T>& q, const Arr<T>& k, const Arr<T>& v, const OptArr<int32_t>& lengths,
             double scale, Arr<T>& context, OptArr<T>& lse, OptArr<T>& weights) {
  const AttnShape s = shape_of(q, v);
  T *pc = context.mutable_data(), *pl = mut(lse), *pw = mut(weights);
  py::gil_scoped_release nogil;
  attention_forward<T>(s, q.data(), k.data(), v.data(), ptr(lengths), T(scale), pc, pl, pw);
}

template <typename T>
void backward(const Arr<T>& q, const Arr<T>& k, const Arr<T>& v, const OptArr<int32_t>& lengths,
              double scale, const Arr<T>& context, const Arr<T>& lse, const OptArr<T>& weights,
              const Arr<T>& dcontext, Arr<T>& dq, Arr<T>& dk, Arr<T>& dv) {
  const AttnShape s = shape_of(q, v);
  T *pq = dq.mutable_data(), *pk = dk.mutable_data(), *pv = dv.mutable_data();
  py::gil_scoped_release nogil;
  attention_backward<T>(s, q.data(), k.data(), v.data(), ptr(lengths), T(scale), context.data(),
                        lse.data(), ptr(weights), dcontext.data(), pq, pk, pv);
}

template <typename T>
void additive_forward(const Arr<T>& pq, const Arr<T>& pk, const Arr<T>& u, const Arr<T>& v,
                      const OptArr<int32_t>& lengths, Arr<T>& context, OptArr<T>& lse,
                      OptArr<T>& weights) {
  const AttnShape s = shape_of(pq, v);
  T *pc = context.mutable_data(), *pl = mut(lse), *pw = mut(weights);
  py::gil_scoped_release nogil;
  additive_attention_forward<T>(s, pq.data(), pk.data(), u.data(), v.data(), ptr(lengths), pc,
                                pl, pw);
}

template <typename T>
void additive_backward(const Arr<T>& pq, const Arr<T>& pk, const Arr<T>& u, const Arr<T>& v,
                       const OptArr<int32_t>& lengths, const Arr<T>& lse,
                       const Arr<T>& dcontext, Arr<T>& dpq, Arr<T>& dpk, Arr<T>& du,
                       Arr<T>& dv) {
  const AttnShape s = shape_of(pq, v);
  T *a = dpq.mutable_data(), *b = dpk.mutable_data(), *c = du.mutable_data(),
    *d = dv.mutable_data();
  py::gil_scoped_release nogil;
  additive_attention_backward<T>(s, pq.data(), pk.data(), u.data(), v.data(), ptr(lengths),
                                 lse.data(), dcontext.data(), a, b, c, d);
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention_forward", &forward<float>);
  m.def("attention_forward", &forward<double>);
  m.def("attention_backward", &backward<float>);
  m.def("attention_backward", &backward<double>);
  m.def("additive_attention_forward", &additive_forward<float>);
  m.def("additive_attention_forward", &additive_forward<double>);
  m.def("additive_attention_backward", &additive_backward<float>);
  m.def("additive_attention_backward", &additive_backward<double>);
}

}  // namespace seqkern::bind
