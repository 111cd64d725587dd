// _core.one_layer_train / one_layer_train_backward: a training call of one layer and direction
// (seqkern.torch's OneLayerFunction: an nn.LSTM/GRU/RNN layer's call, or a cell's step), its
// outputs, saved buffers and gradients made here. A decoder trains its cell one step at a time,
// so the call's fixed cost is much of its time: one binding each way replaces one_layer's
// argument records, empty() calls and gradient dict.
#include <algorithm>
#include <vector>

#include "seqkern/gru.h"
#include "seqkern/lstm.h"
#include "seqkern/rnn.h"
#include "seqkern/stack.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

// x (T, B, I), or a cell's step (B, I) (then T = 1); w_hh (G*H, S), w_hr (P, H) or None (an
// lstm's projection: S = P, else S = H).
template <typename T>
RnnShape layer_shape(Cell cell, const Arr<T>& x, const Arr<T>& w_hh, const OptArr<T>& w_hr) {
  const bool step = x.ndim() == 2;
  return {step ? 1 : x.shape(0), x.shape(step ? 0 : 1), x.shape(step ? 1 : 2),
          w_hh.shape(0) / gates_per_cell(cell), w_hr ? w_hr->shape(0) : 0};
}

// Zeros for a state not given (h0 (B, S), or lstm's c0 (B, H)), else the state's values.
template <typename T>
const T* state_or_zeros(const OptArr<T>& given, std::vector<T>& zeros, int64_t n) {
  if (given) return given->data();
  zeros.assign(n, T(0));
  return zeros.data();
}

// h0 (B, S) and c0 (B, H) (lstm), None for zeros; the weights as torch holds them (biases
// (G*H) or None). Returns (y, h_n, c_n, saved) for lstm, else (y, h_n, saved); a cell's step
// returns no y (its h_n is a copy of it, so that changes to h_n leave the saved y be). saved is
// what one_layer_train_backward takes back: (y, gates, cs) for lstm, (y, gates, aux) for the
// GRUs, (y,) for the RNNs.
template <typename T>
py::tuple train(Cell cell, const Arr<T>& x, const OptArr<T>& h0, const OptArr<T>& c0,
                const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& w_hr,
                const OptArr<T>& b_ih, const OptArr<T>& b_hh) {
  const bool lstm = cell == Cell::Lstm, rnn = gates_per_cell(cell) == 1, step = x.ndim() == 2;
  const RnnShape s = layer_shape(cell, x, w_hh, w_hr);
  const int64_t B = s.B, H = s.H, S = s.state(), G = gates_per_cell(cell) * H;
  py::array_t<T> y = empty_of<T>({s.T, B, S}), h_n = empty_of<T>({B, S}), c_n, gates, aux;
  if (lstm) c_n = empty_of<T>({B, H});
  if (!rnn) gates = empty_of<T>({s.T, B, G}), aux = empty_of<T>({s.T, B, H});
  T *py = y.mutable_data(), *ph = h_n.mutable_data(), *pc = lstm ? c_n.mutable_data() : nullptr;
  T *pg = rnn ? nullptr : gates.mutable_data(), *pa = rnn ? nullptr : aux.mutable_data();
  std::vector<T> zeros_h, zeros_c;
  const T* h = state_or_zeros(h0, zeros_h, B * S);
  const T* c = lstm ? state_or_zeros(c0, zeros_c, B * H) : nullptr;
  {
    py::gil_scoped_release nogil;
    switch (cell) {
      case Cell::Lstm:  // aux holds the cell states (lstm_forward's cs)
        lstm_forward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), ptr(w_hr),
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
  const py::tuple saved = rnn ? py::tuple(py::make_tuple(y)) : py::make_tuple(y, gates, aux);
  if (step) {
    if (lstm) return py::make_tuple(h_n, c_n, saved);
    return py::make_tuple(h_n, saved);
  }
  if (lstm) return py::make_tuple(y, h_n, c_n, saved);
  return py::make_tuple(y, h_n, saved);
}

// Gradients of a one_layer_train call from those of its outputs, each None for zeros (dy (T,
// B, S), none for a cell's step; dh (B, S); dc (B, H), lstm's): x, h0, c0, w_ih, w_hh and w_hr
// as the call took them, its saved, then dy, dh, dc. need: which of x, h0, c0, w_ih, w_hh,
// b_ih, b_hh (and w_hr) want a gradient (torch's needs_input_grad from x on). Returns their
// gradients, None where not wanted.
template <typename T>
py::tuple train_backward(Cell cell, const Arr<T>& x, const OptArr<T>& h0, const OptArr<T>& c0,
                         const Arr<T>& w_ih, const Arr<T>& w_hh, const OptArr<T>& w_hr,
                         const py::tuple& saved, const OptArr<T>& dy, const OptArr<T>& dh,
                         const OptArr<T>& dc, const py::tuple& need) {
  const bool lstm = cell == Cell::Lstm, rnn = gates_per_cell(cell) == 1, gru = !lstm && !rnn;
  const RnnShape s = layer_shape(cell, x, w_hh, w_hr);
  const int64_t B = s.B, I = s.I, H = s.H, S = s.state(), G = gates_per_cell(cell) * H;
  std::vector<bool> wanted(8, false);
  for (size_t i = 0; i < std::min<size_t>(need.size(), 8); ++i) wanted[i] = need[i].cast<bool>();
  const Arr<T> y = saved[0].cast<Arr<T>>();
  const Arr<T> gates = rnn ? Arr<T>() : saved[1].cast<Arr<T>>();
  const Arr<T> aux = rnn ? Arr<T>() : saved[2].cast<Arr<T>>();
  // (a default py::array_t is an empty array, not a null handle: each made where written)
  const auto make = [](bool made, std::vector<py::ssize_t> shape) {
    return made ? empty_of<T>(shape) : py::array_t<T>();
  };
  const auto data = [](bool made, py::array_t<T>& a) { return made ? a.mutable_data() : nullptr; };
  std::vector<py::ssize_t> x_shape(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) x_shape[i] = x.shape(i);
  py::array_t<T> dx = make(wanted[0], x_shape), dh0 = make(wanted[1], {B, S});
  // (a weight that wants no gradient, frozen, gets none: its products are skipped)
  py::array_t<T> dc0 = make(lstm, {B, H}), dw_ih = make(wanted[3], {G, I});
  py::array_t<T> dw_hh = make(wanted[4], {G, S});
  py::array_t<T> db_ih = make(wanted[5], {G}), db_hh = make(wanted[6], {G});
  const bool want_hr = w_hr.has_value() && wanted[7];
  py::array_t<T> dw_hr = make(want_hr, {S, H});
  T *pdx = data(wanted[0], dx), *pdh = data(wanted[1], dh0), *pdc = data(lstm, dc0);
  T *pwi = data(wanted[3], dw_ih), *pwh = data(wanted[4], dw_hh), *pwr = data(want_hr, dw_hr);
  T *pbi = data(wanted[5], db_ih), *pbh = data(wanted[6], db_hh);
  // The GRUs' two bias gradients differ; the other cells' are one (into either, copied to the
  // other when both are wanted).
  T* db = pbi ? pbi : pbh;
  std::vector<T> zeros_h, zeros_c;
  const T* h = state_or_zeros(h0, zeros_h, B * S);
  const T* c = lstm ? state_or_zeros(c0, zeros_c, B * H) : nullptr;
  {
    py::gil_scoped_release nogil;
    switch (cell) {
      case Cell::Lstm:
        lstm_backward<T>(s, x.data(), w_ih.data(), w_hh.data(), ptr(w_hr), nullptr, h, c,
                         y.data(), gates.data(), aux.data(), ptr(dy), ptr(dh), ptr(dc), pdx, pdh,
                         pdc, pwi, pwh, pwr, db);
        break;
      case Cell::Gru:
      case Cell::GruResetBefore:
        gru_backward<T>(s, cell == Cell::Gru, x.data(), w_ih.data(), w_hh.data(), nullptr, h,
                        y.data(), gates.data(), aux.data(), ptr(dy), ptr(dh), pdx, pdh, pwi, pwh,
                        pbi, pbh);
        break;
      case Cell::RnnTanh:
      case Cell::RnnRelu:
        rnn_backward<T>(s, cell == Cell::RnnRelu ? Nonlinearity::Relu : Nonlinearity::Tanh,
                        x.data(), w_ih.data(), w_hh.data(), nullptr, h, y.data(), ptr(dy),
                        ptr(dh), pdx, pdh, pwi, pwh, db);
        break;
    }
    if (!gru && pbi && pbh) std::copy(pbi, pbi + G, pbh);
  }
  const auto give = [](bool want, const py::array_t<T>& a) -> py::object {
    return want ? py::object(a) : py::object(py::none());
  };
  py::list grads;
  for (const py::object& g : {give(wanted[0], dx), give(wanted[1], dh0),
                              give(wanted[2] && lstm, dc0), give(wanted[3], dw_ih),
                              give(wanted[4], dw_hh), give(wanted[5], db_ih),
                              give(wanted[6], db_hh)})
    grads.append(g);
  if (w_hr) grads.append(give(wanted[7], dw_hr));
  return py::tuple(grads);
}

}  // namespace

void bind_one_layer(py::module_& m) {
  m.def("one_layer_train", &train<float>);
  m.def("one_layer_train", &train<double>);
  m.def("one_layer_train_backward", &train_backward<float>);
  m.def("one_layer_train_backward", &train_backward<double>);
}

}  // namespace seqkern::bind
