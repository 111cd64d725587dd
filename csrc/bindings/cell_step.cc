// _core.cell_step: one step of a cell for inference (torch's LSTMCell, GRUCell and RNNCell in
// seqkern.torch), its outputs made here. A decoder calls it once a token on small matrices, so
// the call's fixed cost is most of its time: this one binding replaces three empty() calls, the
// forward's own and the Python between them. _core.cell_train_step and cell_train_backward do
// the same for a training step (seqkern.torch's CellFunction), in place of one_layer's argument
// records, buffers and gradient dict.
#include <algorithm>
#include <vector>

#include "seqkern/gru.h"
#include "seqkern/lstm.h"
#include "seqkern/rnn.h"
#include "seqkern/stack.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

// x (B, I); h0 (B, H) and c0 (B, H) (lstm only), None for zeros; the weights as torch's cell
// holds them. Returns (h', c') for lstm, else (h',).
template <typename T>
py::tuple step(Cell cell, const Arr<T>& x, const OptArr<T>& h0, const OptArr<T>& c0,
               const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& b_ih,
               const OptArr<T>& b_hh) {
  const bool lstm = cell == Cell::Lstm;
  const int64_t B = x.shape(0), H = w_hh.shape(1);
  const RnnShape s{1, B, x.shape(1), H};
  py::array_t<T> h_n = empty_of<T>({B, H}), c_n;
  if (lstm) c_n = empty_of<T>({B, H});
  T *ph = h_n.mutable_data(), *pc = lstm ? c_n.mutable_data() : nullptr;
  // the step's y (h_n is its copy), and zeros for a state not given
  std::vector<T> y(B * H), zeros(!h0 || (lstm && !c0) ? B * H : 0);
  const T* h = h0 ? h0->data() : zeros.data();
  const T* c = c0 ? c0->data() : zeros.data();
  {
    py::gil_scoped_release nogil;
    switch (cell) {
      case Cell::Lstm:
        lstm_forward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), nullptr,
                        nullptr, h, c, y.data(), ph, pc, nullptr, nullptr);
        break;
      case Cell::Gru:
      case Cell::GruResetBefore:
        gru_forward<T>(s, cell == Cell::Gru, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih),
                       ptr(b_hh), nullptr, h, y.data(), ph, nullptr, nullptr);
        break;
      case Cell::RnnTanh:
      case Cell::RnnRelu:
        rnn_forward<T>(s, cell == Cell::RnnRelu ? Nonlinearity::Relu : Nonlinearity::Tanh,
                       x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), nullptr, h,
                       y.data(), ph);
        break;
    }
  }
  if (lstm) return py::make_tuple(h_n, c_n);
  return py::make_tuple(h_n);
}

// step's training counterpart: returns (h', c', saved) for lstm, else (h', saved), saved being
// what train_backward takes back: (y, gates, cs) for lstm, (y, gates, aux) for the GRUs, (y,)
// for the RNNs (y: the step's output; h' is a copy of it, so that changes to h' leave it be).
template <typename T>
py::tuple train_step(Cell cell, const Arr<T>& x, const OptArr<T>& h0, const OptArr<T>& c0,
                     const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& b_ih,
                     const OptArr<T>& b_hh) {
  const bool lstm = cell == Cell::Lstm, rnn = gates_per_cell(cell) == 1;
  const int64_t B = x.shape(0), H = w_hh.shape(1), G = gates_per_cell(cell) * H;
  const RnnShape s{1, B, x.shape(1), H};
  py::array_t<T> h_n = empty_of<T>({B, H}), c_n, y = empty_of<T>({B, H}), gates, aux;
  if (lstm) c_n = empty_of<T>({B, H});
  if (!rnn) gates = empty_of<T>({B, G}), aux = empty_of<T>({B, H});
  T *ph = h_n.mutable_data(), *pc = lstm ? c_n.mutable_data() : nullptr, *py = y.mutable_data();
  T *pg = rnn ? nullptr : gates.mutable_data(), *pa = rnn ? nullptr : aux.mutable_data();
  std::vector<T> zeros(!h0 || (lstm && !c0) ? B * H : 0);  // for a state not given
  const T* h = h0 ? h0->data() : zeros.data();
  const T* c = c0 ? c0->data() : zeros.data();
  {
    py::gil_scoped_release nogil;
    switch (cell) {
      case Cell::Lstm:  // aux holds the cell state c' (lstm_forward's cs)
        lstm_forward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), nullptr,
                        nullptr, h, c, py, ph, pc, pg, pa);
        break;
      case Cell::Gru:
      case Cell::GruResetBefore:
        gru_forward<T>(s, cell == Cell::Gru, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih),
                       ptr(b_hh), nullptr, h, py, ph, pg, pa);
        break;
      case Cell::RnnTanh:
      case Cell::RnnRelu:
        rnn_forward<T>(s, cell == Cell::RnnRelu ? Nonlinearity::Relu : Nonlinearity::Tanh,
                       x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), nullptr, h, py,
                       ph);
        break;
    }
  }
  const py::tuple saved = rnn ? py::tuple(py::make_tuple(y)) : py::tuple(py::make_tuple(y, gates, aux));
  if (lstm) return py::make_tuple(h_n, c_n, saved);
  return py::make_tuple(h_n, saved);
}

// Gradients of a train_step call from those of h' and c' (lstm), each None for zeros: x, h0,
// c0 (lstm), the inputs as train_step took them, its saved, then dh and dc. need: which of x,
// h0, c0, w_ih, w_hh, b_ih, b_hh want a gradient (torch's needs_input_grad from x on; h0 and c0
// are None when they were). Returns their gradients, None where not wanted (c0's for every
// cell but lstm).
template <typename T>
py::tuple train_backward(Cell cell, const Arr<T>& x, const OptArr<T>& h0, const OptArr<T>& c0,
                         const Arr<T>& w_ih, const Arr<T>& w_hh, const py::tuple& saved,
                         const OptArr<T>& dh, const OptArr<T>& dc, const py::tuple& need) {
  const bool lstm = cell == Cell::Lstm, rnn = gates_per_cell(cell) == 1, gru = !lstm && !rnn;
  const int64_t B = x.shape(0), I = x.shape(1), H = w_hh.shape(1), G = gates_per_cell(cell) * H;
  const RnnShape s{1, B, I, H};
  const auto wanted = [&](size_t i) { return i < need.size() && need[i].cast<bool>(); };
  const Arr<T> y = saved[0].cast<Arr<T>>();
  const Arr<T> gates = rnn ? Arr<T>() : saved[1].cast<Arr<T>>();
  const Arr<T> aux = rnn ? Arr<T>() : saved[2].cast<Arr<T>>();
  // (a default py::array_t is an empty array, not a null handle: made only where wanted)
  const auto out = [](bool make, std::vector<py::ssize_t> shape) {
    return make ? empty_of<T>(shape) : py::array_t<T>();
  };
  py::array_t<T> dx = out(wanted(0), {B, I}), dh0 = out(true, {B, H}), dc0 = out(lstm, {B, H});
  py::array_t<T> dw_ih = out(true, {G, I}), dw_hh = out(true, {G, H});
  py::array_t<T> db_ih = out(wanted(5), {G}), db_hh = out(wanted(6), {G});
  T *pdx = wanted(0) ? dx.mutable_data() : nullptr, *pdh = dh0.mutable_data();
  T *pdc = lstm ? dc0.mutable_data() : nullptr, *pwi = dw_ih.mutable_data();
  T *pwh = dw_hh.mutable_data(), *pbi = wanted(5) ? db_ih.mutable_data() : nullptr;
  T* pbh = wanted(6) ? db_hh.mutable_data() : nullptr;
  // The GRUs' two bias gradients differ; the other cells' are one (into either, copied to the
  // other when both are wanted).
  T* db = pbi ? pbi : pbh;
  std::vector<T> zeros(!h0 || (lstm && !c0) ? B * H : 0);  // the forward's state not given
  const T* h = h0 ? h0->data() : zeros.data();
  const T* c = c0 ? c0->data() : zeros.data();
  {
    py::gil_scoped_release nogil;
    switch (cell) {
      case Cell::Lstm:
        lstm_backward<T>(s, x.data(), w_ih.data(), w_hh.data(), nullptr, nullptr, h, c, y.data(),
                         gates.data(), aux.data(), nullptr, ptr(dh), ptr(dc), pdx, pdh, pdc, pwi,
                         pwh, nullptr, db);
        break;
      case Cell::Gru:
      case Cell::GruResetBefore:
        gru_backward<T>(s, cell == Cell::Gru, x.data(), w_ih.data(), w_hh.data(), nullptr, h,
                        y.data(), gates.data(), aux.data(), nullptr, ptr(dh), pdx, pdh, pwi, pwh,
                        pbi, pbh);
        break;
      case Cell::RnnTanh:
      case Cell::RnnRelu:
        rnn_backward<T>(s, cell == Cell::RnnRelu ? Nonlinearity::Relu : Nonlinearity::Tanh,
                        x.data(), w_ih.data(), w_hh.data(), nullptr, h, y.data(), nullptr,
                        ptr(dh), pdx, pdh, pwi, pwh, db);
        break;
    }
    if (!gru && pbi && pbh) std::copy(pbi, pbi + G, pbh);
  }
  const auto give = [](bool want, const py::array_t<T>& a) -> py::object {
    return want ? py::object(a) : py::object(py::none());
  };
  return py::make_tuple(give(wanted(0), dx), give(wanted(1), dh0), give(wanted(2) && lstm, dc0),
                        give(wanted(3), dw_ih), give(wanted(4), dw_hh), give(wanted(5), db_ih),
                        give(wanted(6), db_hh));
}

}  // namespace

void bind_cell_step(py::module_& m) {
  m.def("cell_step", &step<float>);
  m.def("cell_step", &step<double>);
  m.def("cell_train_step", &train_step<float>);
  m.def("cell_train_step", &train_step<double>);
  m.def("cell_train_backward", &train_backward<float>);
  m.def("cell_train_backward", &train_backward<double>);
}

}  // namespace seqkern::bind
