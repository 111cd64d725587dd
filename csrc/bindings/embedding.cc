// _core.embedding_forward / _backward: pointers in, GIL released, kernel called.
#include "seqkern/embedding.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

template <typename T>
void forward(const Arr<T>& weight, const Arr<int64_t>& ids, Arr<T>& out) {
  const int64_t N = ids.size(), D = weight.shape(1);
  const T* w = weight.data();
  const int64_t* pi = ids.data();
  T* po = out.mutable_data();
  py::gil_scoped_release nogil;
  embedding_forward<T>(N, D, w, pi, po);
}

template <typename T>
void backward(const Arr<T>& dy, const Arr<int64_t>& ids, int64_t padding_idx, Arr<T>& dweight,
              bool overwrite) {
  const int64_t N = ids.size(), D = dweight.shape(1);
  const T* pd = dy.data();
  const int64_t* pi = ids.data();
  T* pw = dweight.mutable_data();
  py::gil_scoped_release nogil;
  embedding_backward<T>(N, D, pd, pi, padding_idx, pw, overwrite ? dweight.shape(0) : 0);
}

}  // namespace

void bind_embedding(py::module_& m) {
  m.def("embedding_forward", &forward<float>);
  m.def("embedding_forward", &forward<double>);
  m.def("embedding_backward", &backward<float>, py::arg("dy"), py::arg("ids"),
        py::arg("padding_idx"), py::arg("dweight"), py::arg("overwrite") = false);
  m.def("embedding_backward", &backward<double>, py::arg("dy"), py::arg("ids"),
        py::arg("padding_idx"), py::arg("dweight"), py::arg("overwrite") = false);
}

}  // namespace seqkern::bind
