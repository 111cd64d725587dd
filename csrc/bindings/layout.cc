// _core.swap_leading_axes, arrays between batch-major and time-major (seqkern/layout.h);
// take_rows, recurrent batches sorted longest first and back;
// length_summary, what a call with lengths checks and how it orders its batch; first_bad_id,
// what a call with ids checks.
#include "seqkern/layout.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "arrays.h"

namespace seqkern::bind {

namespace {

// Whether a buffer's elements lie in C order with no gaps.
bool c_contiguous(const py::buffer_info& i) {
  py::ssize_t stride = i.itemsize;
  for (py::ssize_t d = i.ndim - 1; d >= 0; --d) {
    if (i.shape[d] > 1 && i.strides[d] != stride) return false;
    stride *= i.shape[d];
  }
  return true;
}

// (smallest, largest, whether they run longest first) of a batch's lengths, in one pass: NumPy's
// min, max and stable argsort took 12 us of a small call's 41.
template <typename T>
py::tuple length_summary(const Arr<T>& lengths) {
  const T* l = lengths.data();
  const int64_t n = lengths.size();
  if (n == 0) return py::make_tuple(T(0), T(0), true);
  T lo = l[0], hi = l[0];
  bool longest_first = true;
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, l[i]);
    hi = std::max(hi, l[i]);
    longest_first = longest_first && l[i] <= l[i - 1];
  }
  return py::make_tuple(lo, hi, longest_first);
}

// The index of the first id outside 0..size-1 that is not `allowed`, or -1: one pass, where
// NumPy's two comparisons, their combination and any() took four (ids of an embedding or a
// loss, checked at every call).
int64_t first_bad_id(const Arr<int64_t>& ids, int64_t size, std::optional<int64_t> allowed) {
  const int64_t* p = ids.data();
  const int64_t n = ids.size();
  for (int64_t i = 0; i < n; ++i)
    if ((p[i] < 0 || p[i] >= size) && p[i] != allowed) return i;
  return -1;
}

}  // namespace

void bind_layout(py::module_& m) {
  m.def("first_bad_id", &first_bad_id, py::arg("ids"), py::arg("size"), py::arg("allowed"));
  // seqkern.nn and the models take batch-major (N, T, D) arrays (batch_first) and the kernels
  // time-major ones.
  m.def(
      "swap_leading_axes",
      [](const py::buffer& src, const py::buffer& out) {
        const py::buffer_info a = src.request(), b = out.request(true);
        if (a.ndim < 2 || b.ndim != a.ndim || a.itemsize != b.itemsize || !c_contiguous(a) ||
            !c_contiguous(b) || b.shape[0] != a.shape[1] || b.shape[1] != a.shape[0] ||
            !std::equal(a.shape.begin() + 2, a.shape.end(), b.shape.begin() + 2))
          throw py::value_error("swap_leading_axes: C-contiguous src (A, B, ...) and out (B, A, ...)");
        const int64_t A = a.shape[0], B = a.shape[1];
        const size_t row = static_cast<size_t>(a.size / std::max<py::ssize_t>(A * B, 1) * a.itemsize);
        py::gil_scoped_release nogil;
        swap_leading_axes(a.ptr, b.ptr, A, B, row);
      },
      py::arg("src"), py::arg("out"), "out[j, i] = src[i, j] for C-contiguous src (A, B, ...), out (B, A, ...)");

  m.def(
      "take_rows",
      [](const py::buffer& src, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& index,
         const py::buffer& out) {
        const py::buffer_info a = src.request(), b = out.request(true);
        const int64_t n = index.size();
        if (a.ndim < 2 || b.ndim != a.ndim || a.itemsize != b.itemsize || !c_contiguous(a) ||
            !c_contiguous(b) || index.ndim() != 1 || b.shape[0] != a.shape[0] || b.shape[1] != n ||
            !std::equal(a.shape.begin() + 2, a.shape.end(), b.shape.begin() + 2))
          throw py::value_error("take_rows: C-contiguous src (A, B, ...), index (n,), out (A, n, ...)");
        const int64_t A = a.shape[0], B = a.shape[1];
        const int64_t* idx = index.data();
        for (int64_t j = 0; j < n; ++j)
          if (idx[j] < 0 || idx[j] >= B) throw py::value_error("take_rows: an index outside 0..B-1");
        const size_t row = A * B ? static_cast<size_t>(a.size / (A * B) * a.itemsize) : 0;
        py::gil_scoped_release nogil;
        take_rows(a.ptr, b.ptr, A, B, row, idx, n);
      },
      py::arg("src"), py::arg("index"), py::arg("out"),
      "out[i, j] = src[i, index[j]] for C-contiguous src (A, B, ...), out (A, n, ...)");

  m.def("length_summary", &length_summary<int32_t>);
  m.def("length_summary", &length_summary<int64_t>);
  m.def("length_summary", &length_summary<double>);
}

}  // namespace seqkern::bind
