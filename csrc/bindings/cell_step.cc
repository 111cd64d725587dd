// _core.cell_step: one step of a cell for inference (torch's LSTMCell, GRUCell and RNNCell in
// seqkern.torch), its outputs made here. A decoder calls it once a token on small matrices, so
// the call's fixed cost is most of its time: this one binding replaces three empty() calls, the
// forward's own and the Python between them.
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

}  // namespace

void bind_cell_step(py::module_& m) {
  m.def("cell_step", &step<float>);
  m.def("cell_step", &step<double>);
}

}  // namespace seqkern::bind
