// Array-to-pointer plumbing shared by the binding files. seqkern/_ops.py has already checked
// dtype, shape and contiguity; Arr's checks only guard against misuse of _core itself.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>

#include "seqkern/common.h"

namespace seqkern::bind {

namespace py = pybind11;

// A C-contiguous NumPy array of T, held for the call: the array as passed, never a converted
// copy whose writes would be lost. The one exception is an unaligned array (a view into a
// buffer at an odd offset), which is read from an aligned copy and refused as an output.
// py::array_t's caster made a new array object for every argument through PyArray_FromAny,
// about 0.4 us each: 4 of the 5 us a tiny rnn_forward call took. (In a namespace of its own,
// so that argument-dependent lookup does not bring seqkern::bind's helpers into the binding
// files' own overloads.)
namespace array_ref {
template <typename T>
class Arr {
 public:
  Arr() = default;
  // a: the array as passed, or (copied) an aligned copy of `original`.
  Arr(py::object a, bool copied, py::object original = py::object())
      : a_(std::move(a)), original_(std::move(original)), copied_(copied) {}
  const T* data() const { return reinterpret_cast<const T*>(proxy()->data); }
  // The array the caller passed (not the aligned copy), and where its values lie.
  const py::object& original() const { return copied_ ? original_ : a_; }
  const void* source() const { return py::detail::array_proxy(original().ptr())->data; }
  T* mutable_data() {
    if (copied_) throw std::domain_error("an output array must be aligned");
    if (!(proxy()->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
      throw std::domain_error("array is not writeable");
    return reinterpret_cast<T*>(proxy()->data);
  }
  int ndim() const { return proxy()->nd; }
  int64_t shape(int i) const { return proxy()->dimensions[i]; }
  int64_t size() const {
    int64_t n = 1;
    for (int i = 0; i < ndim(); ++i) n *= shape(i);
    return n;
  }
  PyObject* ptr() const { return a_.ptr(); }

 private:
  const py::detail::PyArray_Proxy* proxy() const { return py::detail::array_proxy(a_.ptr()); }
  py::object a_, original_;
  bool copied_ = false;
};
}  // namespace array_ref
using array_ref::Arr;
template <typename T>
using OptArr = std::optional<Arr<T>>;

template <typename T>
const T* ptr(const OptArr<T>& a) {
  return a ? a->data() : nullptr;
}

template <typename T>
T* mut(OptArr<T>& a) {
  return a ? a->mutable_data() : nullptr;
}

// x (T, B, I) and a hidden-sized array (.., H) give the shape of a call.
template <typename T>
RnnShape shape_of(const Arr<T>& x, const Arr<T>& h) {
  return {x.shape(0), x.shape(1), x.shape(2), h.shape(h.ndim() - 1)};
}

// np.empty(shape, dtype) on a 64-byte boundary, blocks of 128 KiB and more reused from freed
// arrays (buffers.cc).
py::array empty(const std::vector<py::ssize_t>& shape, const py::dtype& dtype);

// empty() of T.
template <typename T>
py::array_t<T> empty_of(const std::vector<py::ssize_t>& shape) {
  return py::reinterpret_borrow<py::array_t<T>>(empty(shape, py::dtype::of<T>()));
}

void bind_buffers(py::module_& m);
void bind_book(py::module_& m);
void bind_layout(py::module_& m);
void bind_rnn(py::module_& m);
void bind_lstm(py::module_& m);
void bind_gru(py::module_& m);
void bind_stack(py::module_& m);
void bind_word2vec(py::module_& m);
void bind_cross_entropy(py::module_& m);
void bind_embedding(py::module_& m);
void bind_optim(py::module_& m);
void bind_attention(py::module_& m);
void bind_ctc(py::module_& m);
void bind_cell_step(py::module_& m);
void bind_one_layer(py::module_& m);
void bind_linear(py::module_& m);
void bind_sampling(py::module_& m);

}  // namespace seqkern::bind

namespace pybind11::detail {

template <typename T>
struct type_caster<seqkern::bind::array_ref::Arr<T>> {
  PYBIND11_TYPE_CASTER(seqkern::bind::array_ref::Arr<T>, const_name("numpy.ndarray"));

  // Only a C-contiguous ndarray of T itself (or of an equivalent dtype, as int64 and longlong);
  // anything else fails to load, so pybind11 tries the next overload or raises TypeError.
  bool load(handle src, bool /*convert*/) {
    const npy_api& api = npy_api::get();
    if (!api.PyArray_Check_(src.ptr())) return false;
    const int flags = array_proxy(src.ptr())->flags;
    if (!(flags & npy_api::NPY_ARRAY_C_CONTIGUOUS_)) return false;
    static PyObject* const descr = dtype::of<T>().release().ptr();  // NumPy's own, never freed
    PyObject* d = array_proxy(src.ptr())->descr;
    if (d != descr && !api.PyArray_EquivTypes_(d, descr)) return false;
    if (flags & npy_api::NPY_ARRAY_ALIGNED_) {
      value = seqkern::bind::Arr<T>(reinterpret_borrow<object>(src), false);
    } else {
      object copy = reinterpret_steal<object>(api.PyArray_NewCopy_(src.ptr(), 0 /* C order */));
      if (!copy) throw error_already_set();
      value = seqkern::bind::Arr<T>(std::move(copy), true, reinterpret_borrow<object>(src));
    }
    return true;
  }

  static handle cast(const seqkern::bind::Arr<T>& a, return_value_policy, handle) {
    return handle(a.ptr()).inc_ref();
  }
};

}  // namespace pybind11::detail
