// _core.lstm_forward / lstm_backward: pointers in, GIL released, kernel called; lstm_book_forward.
#include "seqkern/lstm.h"

#include <algorithm>

#include "arrays.h"

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
             OptArr<T>& cs) {
  RnnShape s = lstm_shape(x, c0, w_hr);
  T* g = gates ? gates->mutable_data() : nullptr;
  T* c = cs ? cs->mutable_data() : nullptr;
  T *py = y.mutable_data(), *ph = h_n.mutable_data(), *pc = c_n.mutable_data();
  py::gil_scoped_release nogil;
  lstm_forward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), ptr(w_hr),
                  ptr(lengths),
                  h0.data(), c0.data(), py, ph, pc, g, c);
}

template <typename T>
void backward(const Arr<T>& x, const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& w_hr,
              const OptArr<int32_t>& lengths, const Arr<T>& h0, const Arr<T>& c0, const Arr<T>& y,
              const Arr<T>& gates, const Arr<T>& cs, const OptArr<T>& dy, const OptArr<T>& dh_n,
              const OptArr<T>& dc_n, Arr<T>& dx, Arr<T>& dh0, Arr<T>& dc0, Arr<T>& dw_ih,
              Arr<T>& dw_hh, OptArr<T>& dw_hr, OptArr<T>& db) {
  RnnShape s = lstm_shape(x, c0, w_hr);
  T *pdx = dx.mutable_data(), *pdh = dh0.mutable_data(), *pdc = dc0.mutable_data();
  T *pwi = dw_ih.mutable_data(), *pwh = dw_hh.mutable_data();
  T* pdb = db ? db->mutable_data() : nullptr;
  T* pdr = dw_hr ? dw_hr->mutable_data() : nullptr;
  py::gil_scoped_release nogil;
  lstm_backward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(w_hr), ptr(lengths), h0.data(), c0.data(),
                   y.data(), gates.data(), cs.data(), ptr(dy), ptr(dh_n), ptr(dc_n), pdx, pdh, pdc,
                   pwi, pwh, pdr, pdb);
}

// seqkern.book's TimeLSTM in generation: (hs (N, T, H), h_n (N, H), c_n (N, H), y (T, N, H), cs,
// gates), xs (N, T, D) batch-major with N == 1 or T == 1, so that it is time-major as it lies.
// None when a shape does not fit; the layer then takes the kernels' path, whose checks say what
// is wrong. The checks and the allocations are here because the Python around a 10 us step
// took twice as long as the step.
template <typename T>
py::object book_forward(const Arr<T>& xs, const Arr<T>& h0, const Arr<T>& c0, const Arr<T>& Wx,
                        const Arr<T>& Wh, const Arr<T>& b) {
  if (xs.ndim() != 3 || h0.ndim() != 2 || c0.ndim() != 2 || Wx.ndim() != 2 || Wh.ndim() != 2 ||
      b.ndim() != 1)
    return py::none();
  const int64_t N = xs.shape(0), steps = xs.shape(1), D = xs.shape(2), H = Wh.shape(0);
  const bool fits = (N == 1 || steps == 1) && N > 0 && steps > 0 && H > 0 &&
                    h0.shape(0) == N && h0.shape(1) == H && c0.shape(0) == N &&
                    c0.shape(1) == H && Wx.shape(0) == D && Wx.shape(1) == 4 * H &&
                    Wh.shape(1) == 4 * H && b.shape(0) == 4 * H;
  if (!fits) return py::none();
  py::array_t<T> hs({N, steps, H}), h_n({N, H}), c_n({N, H}), y({steps, N, H}), cs({steps, N, H}),
      gates({steps, N, 4 * H});
  T *py = y.mutable_data(), *pc = cs.mutable_data(), *pg = gates.mutable_data();
  T *phs = hs.mutable_data(), *ph = h_n.mutable_data(), *pcn = c_n.mutable_data();
  {
    py::gil_scoped_release nogil;
    lstm_book_forward<T>(steps, N, D, H, xs.data(), h0.data(), c0.data(), Wx.data(), Wh.data(),
                         b.data(), py, pc, pg);
    const int64_t NH = N * H;
    std::copy(py, py + steps * NH, phs);  // N == 1 or T == 1: the same order either way
    std::copy(py + (steps - 1) * NH, py + steps * NH, ph);
    std::copy(pc + (steps - 1) * NH, pc + steps * NH, pcn);
  }
  return py::make_tuple(hs, h_n, c_n, y, cs, gates);
}

}  // namespace

void bind_lstm(py::module_& m) {
  m.def("lstm_book_forward", &book_forward<float>);
  m.def("lstm_book_forward", &book_forward<double>);
  m.def("lstm_book_forward", [](const py::args&) { return py::none(); });  // another dtype, a view
  m.def("lstm_forward", &forward<float>);
  m.def("lstm_forward", &forward<double>);
  m.def("lstm_backward", &backward<float>);
  m.def("lstm_backward", &backward<double>);
}

}  // namespace seqkern::bind
