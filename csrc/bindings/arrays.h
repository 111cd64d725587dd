// Array-to-pointer plumbing shared by the binding files. seqkern/_ops.py has already checked
// dtype, shape and contiguity; array_t with c_style only guards against misuse of _core itself.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "seqkern/common.h"

namespace seqkern::bind {

namespace py = pybind11;

template <typename T>
using Arr = py::array_t<T, py::array::c_style>;
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

void bind_buffers(py::module_& m);
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

}  // namespace seqkern::bind
