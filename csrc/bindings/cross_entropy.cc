// _core.softmax_cross_entropy_forward / _backward: pointers in, GIL released, kernel called.
#include "seqkern/cross_entropy.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

template <typename T>
void forward(const Arr<T>& logits, const Arr<int64_t>& targets, int64_t ignore_index,
             double smoothing, Arr<T>& losses, Arr<T>& lse) {
  const int64_t N = logits.shape(0), V = logits.shape(1);
  const T* x = logits.data();
  const int64_t* t = targets.data();
  T *pl = losses.mutable_data(), *ps = lse.mutable_data();
  py::gil_scoped_release nogil;
  softmax_cross_entropy_forward<T>(N, V, x, t, ignore_index, T(smoothing), pl, ps);
}

template <typename T>
void backward(const Arr<T>& logits, const Arr<int64_t>& targets, int64_t ignore_index,
              double smoothing, const Arr<T>& lse, const Arr<T>& scale, Arr<T>& dlogits) {
  const int64_t N = logits.shape(0), V = logits.shape(1);
  const T *x = logits.data(), *ps = lse.data(), *pc = scale.data();
  const int64_t* t = targets.data();
  T* g = dlogits.mutable_data();
  py::gil_scoped_release nogil;
  softmax_cross_entropy_backward<T>(N, V, x, t, ignore_index, T(smoothing), ps, pc, g);
}

}  // namespace

void bind_cross_entropy(py::module_& m) {
  m.def("softmax_cross_entropy_forward", &forward<float>);
  m.def("softmax_cross_entropy_forward", &forward<double>);
  m.def("softmax_cross_entropy_backward", &backward<float>);
  m.def("softmax_cross_entropy_backward", &backward<double>);
}

}  // namespace seqkern::bind
