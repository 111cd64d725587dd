// _core.lstm_book_forward / lstm_book_backward: seqkern.book's TimeLSTM, one call each way. The
// book's arrays are batch-major (N, T, ...) with its weight layout and gate order; the kernels'
// are time-major with torch's. In Python each direction took a dozen NumPy and _core calls
// around the kernel (swaps, weight conversions, the generic argument checks), 2 ms of chapter
// 7's 13 ms training iteration: the calls right after a kernel run on caches it has emptied.
#include <algorithm>
#include <vector>

#include "arrays.h"
#include "seqkern/layout.h"
#include "seqkern/lstm.h"

namespace seqkern::bind {

namespace {

// The book's gate blocks f, g, i, o in the kernels' order i, f, g, o.
constexpr int64_t kBookOrder[4] = {2, 0, 1, 3};

// What a forward keeps for its backward: x time-major (steps, N, D), the initial states, the
// kernels' y, cs and gates, and w_ih (4H, D), w_hh (4H, H) in the kernels' layout, or None after
// a call on the book's weights in place (its backward converts them then).
template <typename T>
struct BookLstmSaved {
  int64_t steps, N, D, H;
  py::array_t<T> x, h0, c0, y, cs, gates;
  py::object w_ih, w_hh;
};

template <typename T>
py::array_t<T> held(const Arr<T>& a) {
  return py::reinterpret_borrow<py::array_t<T>>(a.ptr());
}

template <typename T>
T* data(py::object& a) {
  return static_cast<T*>(py::reinterpret_borrow<py::array_t<T>>(a).mutable_data());
}

// w (R, 4H) in the book's layout as a new (4H, R) array in the kernels'.
template <typename T>
py::array_t<T> to_kernel(const T* w, int64_t R, int64_t H) {
  py::array_t<T> out = empty_of<T>({4 * H, R});
  T* po = out.mutable_data();
  py::gil_scoped_release nogil;
  convert_gate_blocks<T>(w, po, R, 4, H, kBookOrder, -1, true);
  return out;
}

// (hs (N, T, H), h_n (N, H), c_n (N, H), saved) for xs (N, T, D) from h0, c0 (N, H) on the book's
// Wx (D, 4H), Wh (H, 4H), b (4H); None when a shape does not fit (the layer then takes the
// generic path, whose checks say what is wrong).
template <typename T>
py::object book_forward(const Arr<T>& xs, const Arr<T>& h0, const Arr<T>& c0, const Arr<T>& Wx,
                        const Arr<T>& Wh, const Arr<T>& b) {
  if (xs.ndim() != 3 || h0.ndim() != 2 || c0.ndim() != 2 || Wx.ndim() != 2 || Wh.ndim() != 2 ||
      b.ndim() != 1)
    return py::none();
  const int64_t N = xs.shape(0), steps = xs.shape(1), D = xs.shape(2), H = Wh.shape(0);
  const int64_t G = 4 * H;
  if (N < 1 || steps < 1 || H < 1 || h0.shape(0) != N || h0.shape(1) != H || c0.shape(0) != N ||
      c0.shape(1) != H || Wx.shape(0) != D || Wx.shape(1) != G || Wh.shape(1) != G ||
      b.shape(0) != G)
    return py::none();
  auto* s = new BookLstmSaved<T>{steps, N, D, H};
  py::object owner = py::cast(s, py::return_value_policy::take_ownership);
  s->h0 = held(h0);
  s->c0 = held(c0);
  s->y = empty_of<T>({steps, N, H});
  s->cs = empty_of<T>({steps, N, H});
  s->gates = empty_of<T>({steps, N, G});
  py::array_t<T> hs = empty_of<T>({N, steps, H}), h_n = empty_of<T>({N, H}),
                 c_n = empty_of<T>({N, H});
  T *py = s->y.mutable_data(), *pc = s->cs.mutable_data(), *pg = s->gates.mutable_data();
  T *phs = hs.mutable_data(), *ph = h_n.mutable_data(), *pcn = c_n.mutable_data();
  const int64_t NH = N * H;
  if (lstm_book_in_place(steps, N, D, H)) {  // N == 1 or T == 1: xs is time-major as it lies
    s->x = held(xs);
    s->w_ih = s->w_hh = py::none();
    {
      py::gil_scoped_release nogil;
      lstm_book_forward<T>(steps, N, D, H, xs.data(), h0.data(), c0.data(), Wx.data(), Wh.data(),
                           b.data(), py, pc, pg);
      std::copy(py, py + steps * NH, phs);
      std::copy(py + (steps - 1) * NH, py + steps * NH, ph);
      std::copy(pc + (steps - 1) * NH, pc + steps * NH, pcn);
    }
    return py::make_tuple(hs, h_n, c_n, owner);
  }
  s->x = empty_of<T>({steps, N, D});
  s->w_ih = to_kernel(Wx.data(), D, H);
  s->w_hh = to_kernel(Wh.data(), H, H);
  T* px = s->x.mutable_data();
  const T *pwi = data<T>(s->w_ih), *pwh = data<T>(s->w_hh);
  {
    py::gil_scoped_release nogil;
    std::vector<T> bias(G);
    convert_gate_blocks<T>(b.data(), bias.data(), 1, 4, H, kBookOrder, -1, true);
    swap_leading_axes(xs.data(), px, N, steps, D * sizeof(T));
    lstm_forward<T>(RnnShape{steps, N, D, H}, px, pwi, pwh, bias.data(), nullptr, nullptr,
                    nullptr, h0.data(), c0.data(), py, ph, pcn, pg, pc);
    swap_leading_axes(py, phs, steps, N, H * sizeof(T));
  }
  return py::make_tuple(hs, h_n, c_n, owner);
}

// (dxs (N, T, D), dh0 (N, H), dc0 (N, H)) of a forward's saved state, from dhs (N, T, H), dh_n,
// dc_n (N, H) (each may be None: zeros); the weights' gradients overwrite dWx, dWh, db in the
// book's layout. Wx, Wh: the book's weights, converted here when the forward ran on them in
// place.
template <typename T>
py::tuple book_backward(BookLstmSaved<T>& s, const Arr<T>& Wx, const Arr<T>& Wh,
                        const OptArr<T>& dhs, const OptArr<T>& dh_n, const OptArr<T>& dc_n,
                        Arr<T>& dWx, Arr<T>& dWh, Arr<T>& db) {
  const int64_t steps = s.steps, N = s.N, D = s.D, H = s.H, G = 4 * H;
  const auto is = [](const Arr<T>& a, int64_t rows, int64_t cols) {
    return a.ndim() == 2 && a.shape(0) == rows && a.shape(1) == cols;
  };
  if (!is(Wx, D, G) || !is(Wh, H, G))
    throw py::value_error("TimeLSTM.backward: Wx, Wh no longer have the forward's shapes");
  if (!is(dWx, D, G) || !is(dWh, H, G) || db.ndim() != 1 || db.shape(0) != G)
    throw py::value_error("TimeLSTM.backward: grads must have the shapes of params");
  if (dhs && (dhs->ndim() != 3 || dhs->shape(0) != N || dhs->shape(1) != steps ||
              dhs->shape(2) != H))
    throw py::value_error("TimeLSTM.backward: dhs must have the shape of the forward's hs (N, T, H)");
  if ((dh_n && !is(*dh_n, N, H)) || (dc_n && !is(*dc_n, N, H)))
    throw py::value_error("TimeLSTM.backward: dh, dc must have the shape (N, H)");
  if (s.w_ih.is_none()) {
    s.w_ih = to_kernel(Wx.data(), D, H);
    s.w_hh = to_kernel(Wh.data(), H, H);
  }
  py::array_t<T> dxs = empty_of<T>({N, steps, D}), dh0 = empty_of<T>({N, H}),
                 dc0 = empty_of<T>({N, H});
  // the kernels' dy and dx (time-major) and weight gradients (their layout)
  py::array_t<T> dy = empty_of<T>({dhs ? steps * N * H : 0}), dx = empty_of<T>({steps * N * D}),
                 dw_ih = empty_of<T>({G * D}), dw_hh = empty_of<T>({G * H});
  T *pdy = dhs ? dy.mutable_data() : nullptr, *pdx = dx.mutable_data();
  T *pwi = dw_ih.mutable_data(), *pwh = dw_hh.mutable_data();
  T *pdxs = dxs.mutable_data(), *pdh0 = dh0.mutable_data(), *pdc0 = dc0.mutable_data();
  T *pdWx = dWx.mutable_data(), *pdWh = dWh.mutable_data(), *pdb = db.mutable_data();
  const T *w_ih = data<T>(s.w_ih), *w_hh = data<T>(s.w_hh);
  {
    py::gil_scoped_release nogil;
    std::vector<T> db_kernel(G);
    if (dhs) swap_leading_axes(dhs->data(), pdy, N, steps, H * sizeof(T));
    lstm_backward<T>(RnnShape{steps, N, D, H}, s.x.data(), w_ih, w_hh, nullptr, nullptr,
                     s.h0.data(), s.c0.data(), s.y.data(), s.gates.data(), s.cs.data(), pdy,
                     ptr(dh_n), ptr(dc_n), pdx, pdh0, pdc0, pwi, pwh, nullptr, db_kernel.data());
    swap_leading_axes(pdx, pdxs, steps, N, D * sizeof(T));
    convert_gate_blocks<T>(pwi, pdWx, D, 4, H, kBookOrder, -1, false);
    convert_gate_blocks<T>(pwh, pdWh, H, 4, H, kBookOrder, -1, false);
    convert_gate_blocks<T>(db_kernel.data(), pdb, 1, 4, H, kBookOrder, -1, false);
  }
  return py::make_tuple(dxs, dh0, dc0);
}

template <typename T>
void bind_dtype(py::module_& m, const char* saved_name) {
  py::class_<BookLstmSaved<T>>(m, saved_name);
  m.def("lstm_book_forward", &book_forward<T>);
  m.def("lstm_book_backward", &book_backward<T>);
}

}  // namespace

void bind_book(py::module_& m) {
  bind_dtype<float>(m, "BookLstmSavedF32");
  bind_dtype<double>(m, "BookLstmSavedF64");
  // Another dtype, or an array not C-contiguous: None, and the layer takes the generic path.
  m.def("lstm_book_forward", [](const py::args&) { return py::object(py::none()); });
  m.def("lstm_book_backward", [](const py::args&) { return py::object(py::none()); });
}

}  // namespace seqkern::bind
