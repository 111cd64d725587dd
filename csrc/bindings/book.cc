// _core.book_forward / book_backward: seqkern.book's TimeRNN, TimeLSTM and TimeGRU, one call each
// way. The book's arrays are batch-major (N, T, ...) with its weight layout and gate order; the
// kernels' are time-major with torch's. In Python each direction took a dozen NumPy and _core
// calls around the kernel (swaps, weight conversions, the generic argument checks): 5-7% of an
// LSTM's training iteration at chapter 7's shapes, where the calls right after a kernel run on
// caches it has emptied.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "arrays.h"
#include "seqkern/gru.h"
#include "seqkern/layout.h"
#include "seqkern/lstm.h"
#include "seqkern/rnn.h"

namespace seqkern::bind {

namespace {

enum class Kind { rnn, lstm, gru };

// How the book's weights map to the kernels': its gate blocks in the kernels' order (LSTM i, f,
// g, o from the book's f, g, i, o; GRU r, z, n from z, r, h~), and the block the book writes
// negated (the GRU's update gate: z for the book, 1 - z for the kernels, whose n is the book's
// h~ with the reset gate applied before Wh), or -1.
struct Cell {
  Kind kind;
  int64_t gates;
  const int64_t* order;
  int64_t negate;
};

constexpr int64_t kRnnOrder[] = {0}, kLstmOrder[] = {2, 0, 1, 3}, kGruOrder[] = {1, 0, 2};

Cell cell_of(Kind kind) {
  switch (kind) {
    case Kind::lstm: return {kind, 4, kLstmOrder, -1};
    case Kind::gru: return {kind, 3, kGruOrder, 1};
    default: return {kind, 1, kRnnOrder, -1};
  }
}

Kind kind_of(const std::string& name) {
  if (name == "rnn") return Kind::rnn;
  if (name == "lstm") return Kind::lstm;
  if (name == "gru") return Kind::gru;
  throw py::value_error("book_forward: cell must be 'rnn', 'lstm' or 'gru'");
}

// What a forward keeps for its backward: x time-major (steps, N, D), the initial states, the
// kernels' y and the cell's training arrays (LSTM gates and cs, GRU gates and aux), and w_ih,
// w_hh in the kernels' layout, or None after an LSTM call on the book's weights in place (its
// backward converts them then).
template <typename T>
struct BookSaved {
  Cell cell;
  int64_t steps, N, D, H;
  py::array_t<T> x, h0, y;
  py::object c0, gates, extra, w_ih, w_hh;
};

// A layer's weights converted for the kernels, kept for its calls over one step or one sequence
// (the generation loops' calls, which repeat with unchanged weights): reused while the book's
// Wx, Wh and b hold the bytes they held then. Converting a GRU's weights at each one-step call
// (H = 650) took 4.2 ms a step against 1.8 ms with the comparison; training calls, whose
// weights change every time, convert without it.
template <typename T>
struct BookCache {
  std::vector<T> seen;  // Wx, Wh, b as converted
  py::object w_ih, w_hh;
  std::vector<T> bias;
};

template <typename T>
bool same_bytes(const T* a, const T* b, int64_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}

template <typename T>
py::array_t<T> held(const Arr<T>& a) {
  return py::reinterpret_borrow<py::array_t<T>>(a.ptr());
}

template <typename T>
T* data(const py::object& a) {
  return static_cast<T*>(py::reinterpret_borrow<py::array_t<T>>(a).mutable_data());
}

// w (R, G*H) in the book's layout as a new (G*H, R) array in the kernels'.
template <typename T>
py::array_t<T> to_kernel(const Cell& c, const T* w, int64_t R, int64_t H) {
  py::array_t<T> out = empty_of<T>({c.gates * H, R});
  T* po = out.mutable_data();
  py::gil_scoped_release nogil;
  convert_gate_blocks<T>(w, po, R, c.gates, H, c.order, c.negate, true);
  return out;
}

// Throws ValueError(what()) unless ok. The message is built only then: a generation loop's
// one-step call does about 10 us of work, and seven eager messages cost a tenth of that.
template <typename What>
void expect(bool ok, What&& what) {
  if (!ok) throw py::value_error(what());
}

std::string shape_text(std::initializer_list<int64_t> dims) {
  std::string s = "(";
  for (int64_t d : dims) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + ")";
}

template <typename T>
std::string shape_of(const Arr<T>& a) {
  std::string s = "(";
  for (int i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// (hs (N, T, H), h_n (N, H)[, c_n (N, H)], saved, cache) for xs (N, T, D) from h0 (and c0:
// LSTM) on the book's Wx (D, G*H), Wh (H, G*H), b (G*H); cache: what the last call returned (or
// None), and the same back, or None after a call that does not keep one. Every array
// C-contiguous and of one dtype; other arrays fail to convert, and the catch-all overload below
// answers None.
template <typename T>
py::tuple book_forward(const std::string& name, const Arr<T>& xs, const Arr<T>& h0,
                       const OptArr<T>& c0, const Arr<T>& Wx, const Arr<T>& Wh, const Arr<T>& b,
                       const py::object& cache) {
  const Cell cell = cell_of(kind_of(name));
  const bool lstm = cell.kind == Kind::lstm;
  expect(Wh.ndim() == 2 && Wh.shape(1) == cell.gates * Wh.shape(0) && Wh.shape(0) > 0, [&] {
    return "Wh: expected shape (H, " + std::to_string(cell.gates) + "*H), got " + shape_of(Wh);
  });
  const int64_t H = Wh.shape(0), G = cell.gates * H;
  expect(Wx.ndim() == 2 && Wx.shape(1) == G, [&] {
    return "Wx: expected shape (D, " + std::to_string(G) + "), got " + shape_of(Wx);
  });
  expect(b.ndim() == 1 && b.shape(0) == G, [&] {
    return "b: expected shape (" + std::to_string(G) + ",), got " + shape_of(b);
  });
  const int64_t D = Wx.shape(0);
  expect(xs.ndim() == 3 && xs.shape(2) == D && xs.shape(0) > 0 && xs.shape(1) > 0, [&] {
    return "xs: expected shape (N, T, " + std::to_string(D) + ") with N, T >= 1, got " +
           shape_of(xs);
  });
  const int64_t N = xs.shape(0), steps = xs.shape(1), NH = N * H;
  expect(h0.ndim() == 2 && h0.shape(0) == N && h0.shape(1) == H,
         [&] { return "h: expected shape " + shape_text({N, H}) + ", got " + shape_of(h0); });
  expect(lstm == c0.has_value(), [] { return "c: given for the LSTM only"; });
  if (lstm)
    expect(c0->ndim() == 2 && c0->shape(0) == N && c0->shape(1) == H,
           [&] { return "c: expected shape " + shape_text({N, H}) + ", got " + shape_of(*c0); });

  auto* s = new BookSaved<T>{cell, steps, N, D, H};
  py::object owner = py::cast(s, py::return_value_policy::take_ownership);
  s->h0 = held(h0);
  s->y = empty_of<T>({steps, N, H});
  s->c0 = lstm ? py::object(held(*c0)) : py::none();
  s->gates = cell.kind == Kind::rnn ? py::object(py::none()) : empty_of<T>({steps, N, G});
  s->extra = cell.kind == Kind::rnn ? py::object(py::none()) : empty_of<T>({steps, N, H});
  py::array_t<T> hs = empty_of<T>({N, steps, H}), h_n = empty_of<T>({N, H});
  py::object c_n = lstm ? py::object(empty_of<T>({N, H})) : py::none();
  T *py = s->y.mutable_data(), *phs = hs.mutable_data(), *ph = h_n.mutable_data();
  T* pg = cell.kind == Kind::rnn ? nullptr : data<T>(s->gates);
  T* pe = cell.kind == Kind::rnn ? nullptr : data<T>(s->extra);
  T* pcn = lstm ? data<T>(c_n) : nullptr;
  const T* pc0 = lstm ? c0->data() : nullptr;
  py::object cache_out = py::none();
  const auto result = [&] {
    return lstm ? py::tuple(py::make_tuple(hs, h_n, c_n, owner, cache_out))
                : py::tuple(py::make_tuple(hs, h_n, owner, cache_out));
  };
  if (lstm && lstm_book_in_place(steps, N, D, H)) {  // N == 1 or T == 1: xs is time-major as is
    s->x = held(xs);
    s->w_ih = s->w_hh = py::none();
    {
      py::gil_scoped_release nogil;
      lstm_book_forward<T>(steps, N, D, H, xs.data(), h0.data(), pc0, Wx.data(), Wh.data(),
                           b.data(), py, pe, pg);
      std::copy(py, py + steps * NH, phs);
      std::copy(py + (steps - 1) * NH, py + steps * NH, ph);
      std::copy(pe + (steps - 1) * NH, pe + steps * NH, pcn);
    }
    return result();
  }
  s->x = empty_of<T>({steps, N, D});
  std::vector<T> bias(G);
  const auto convert = [&](py::object& w_ih, py::object& w_hh, std::vector<T>& b_kernel) {
    w_ih = to_kernel(cell, Wx.data(), D, H);  // new arrays: a saved state may hold the old ones
    w_hh = to_kernel(cell, Wh.data(), H, H);
    convert_gate_blocks<T>(b.data(), b_kernel.data(), 1, cell.gates, H, cell.order, cell.negate,
                           true);
  };
  if (steps == 1 || N == 1) {
    BookCache<T>* c = nullptr;
    if (py::isinstance<BookCache<T>>(cache)) {
      c = &cache.cast<BookCache<T>&>();
      cache_out = cache;
    } else {
      c = new BookCache<T>;
      cache_out = py::cast(c, py::return_value_policy::take_ownership);
    }
    const int64_t nx = D * G, nh = H * G;
    if (c->seen.size() != static_cast<size_t>(nx + nh + G) ||
        !same_bytes(c->seen.data(), Wx.data(), nx) ||
        !same_bytes(c->seen.data() + nx, Wh.data(), nh) ||
        !same_bytes(c->seen.data() + nx + nh, b.data(), G)) {
      c->seen.resize(nx + nh + G);
      std::copy(Wx.data(), Wx.data() + nx, c->seen.begin());
      std::copy(Wh.data(), Wh.data() + nh, c->seen.begin() + nx);
      std::copy(b.data(), b.data() + G, c->seen.begin() + nx + nh);
      c->bias.resize(G);
      convert(c->w_ih, c->w_hh, c->bias);
    }
    s->w_ih = c->w_ih;
    s->w_hh = c->w_hh;
    bias = c->bias;
  } else {
    convert(s->w_ih, s->w_hh, bias);
  }
  T* px = s->x.mutable_data();
  const T *pwi = data<T>(s->w_ih), *pwh = data<T>(s->w_hh);
  {
    py::gil_scoped_release nogil;
    swap_leading_axes(xs.data(), px, N, steps, D * sizeof(T));
    const RnnShape shape{steps, N, D, H};
    if (cell.kind == Kind::lstm)
      lstm_forward<T>(shape, px, pwi, pwh, bias.data(), nullptr, nullptr, nullptr, h0.data(), pc0,
                      py, ph, pcn, pg, pe);
    else if (cell.kind == Kind::gru)
      gru_forward<T>(shape, false, px, pwi, pwh, bias.data(), nullptr, nullptr, h0.data(), py, ph,
                     pg, pe);
    else
      rnn_forward<T>(shape, Nonlinearity::Tanh, px, pwi, pwh, bias.data(), nullptr, nullptr,
                     h0.data(), py, ph);
    swap_leading_axes(py, phs, steps, N, H * sizeof(T));
  }
  return result();
}

// (dxs (N, T, D), dh0 (N, H)[, dc0 (N, H)]) of a forward's saved state, from dhs (N, T, H), dh_n
// (and dc_n: LSTM) (N, H), each may be None (zeros); the weights' gradients overwrite dWx, dWh,
// db in the book's layout. Wx, Wh: the book's weights, converted here when the forward ran on
// them in place.
template <typename T>
py::tuple book_backward(BookSaved<T>& s, const Arr<T>& Wx, const Arr<T>& Wh,
                        const OptArr<T>& dhs, const OptArr<T>& dh_n, const OptArr<T>& dc_n,
                        Arr<T>& dWx, Arr<T>& dWh, Arr<T>& db) {
  const Cell& cell = s.cell;
  const bool lstm = cell.kind == Kind::lstm;
  const int64_t steps = s.steps, N = s.N, D = s.D, H = s.H, G = cell.gates * H;
  const auto is = [](const Arr<T>& a, int64_t rows, int64_t cols) {
    return a.ndim() == 2 && a.shape(0) == rows && a.shape(1) == cols;
  };
  expect(is(Wx, D, G) && is(Wh, H, G),
         [] { return "backward: Wx, Wh no longer have the forward's shapes"; });
  expect(is(dWx, D, G) && is(dWh, H, G) && db.ndim() == 1 && db.shape(0) == G,
         [] { return "backward: grads must have the shapes of params"; });
  expect(!dhs || (dhs->ndim() == 3 && dhs->shape(0) == N && dhs->shape(1) == steps &&
                  dhs->shape(2) == H),
         [&] {
           return "backward: dhs must have the shape of the forward's hs " +
                  shape_text({N, steps, H});
         });
  expect((!dh_n || is(*dh_n, N, H)) && (!dc_n || is(*dc_n, N, H)),
         [&] { return "backward: dh, dc must have the shape " + shape_text({N, H}); });
  expect(lstm || !dc_n, [] { return "backward: dc is the LSTM's only"; });
  if (s.w_ih.is_none()) {
    s.w_ih = to_kernel(cell, Wx.data(), D, H);
    s.w_hh = to_kernel(cell, Wh.data(), H, H);
  }
  py::array_t<T> dxs = empty_of<T>({N, steps, D}), dh0 = empty_of<T>({N, H});
  py::object dc0 = lstm ? py::object(empty_of<T>({N, H})) : py::none();
  // the kernels' dy and dx (time-major) and weight gradients (their layout)
  py::array_t<T> dy = empty_of<T>({dhs ? steps * N * H : 0}), dx = empty_of<T>({steps * N * D}),
                 dw_ih = empty_of<T>({G * D}), dw_hh = empty_of<T>({G * H});
  T *pdy = dhs ? dy.mutable_data() : nullptr, *pdx = dx.mutable_data();
  T *pwi = dw_ih.mutable_data(), *pwh = dw_hh.mutable_data();
  T *pdxs = dxs.mutable_data(), *pdh0 = dh0.mutable_data();
  T* pdc0 = lstm ? data<T>(dc0) : nullptr;
  T *pdWx = dWx.mutable_data(), *pdWh = dWh.mutable_data(), *pdb = db.mutable_data();
  const T *w_ih = data<T>(s.w_ih), *w_hh = data<T>(s.w_hh);
  const T* x = s.x.data();
  const T* h0 = s.h0.data();
  const T* y = s.y.data();
  const T* c0 = lstm ? data<T>(s.c0) : nullptr;
  const T* gates = cell.kind == Kind::rnn ? nullptr : data<T>(s.gates);
  const T* extra = cell.kind == Kind::rnn ? nullptr : data<T>(s.extra);
  {
    py::gil_scoped_release nogil;
    std::vector<T> db_kernel(G);
    if (dhs) swap_leading_axes(dhs->data(), pdy, N, steps, H * sizeof(T));
    const RnnShape shape{steps, N, D, H};
    if (lstm)
      lstm_backward<T>(shape, x, w_ih, w_hh, nullptr, nullptr, h0, c0, y, gates, extra, pdy,
                       ptr(dh_n), ptr(dc_n), pdx, pdh0, pdc0, pwi, pwh, nullptr, db_kernel.data());
    else if (cell.kind == Kind::gru)
      gru_backward<T>(shape, false, x, w_ih, w_hh, nullptr, h0, y, gates, extra, pdy, ptr(dh_n),
                      pdx, pdh0, pwi, pwh, db_kernel.data(), nullptr);
    else
      rnn_backward<T>(shape, Nonlinearity::Tanh, x, w_ih, w_hh, nullptr, h0, y, pdy, ptr(dh_n),
                      pdx, pdh0, pwi, pwh, db_kernel.data());
    swap_leading_axes(pdx, pdxs, steps, N, D * sizeof(T));
    convert_gate_blocks<T>(pwi, pdWx, D, cell.gates, H, cell.order, cell.negate, false);
    convert_gate_blocks<T>(pwh, pdWh, H, cell.gates, H, cell.order, cell.negate, false);
    convert_gate_blocks<T>(db_kernel.data(), pdb, 1, cell.gates, H, cell.order, cell.negate,
                           false);
  }
  return lstm ? py::tuple(py::make_tuple(dxs, dh0, dc0)) : py::tuple(py::make_tuple(dxs, dh0));
}

template <typename T>
void bind_dtype(py::module_& m, const char* saved_name) {
  py::class_<BookSaved<T>>(m, saved_name);
  py::class_<BookCache<T>>(m, (std::string(saved_name) + "Cache").c_str());
  m.def("book_forward", &book_forward<T>);
  m.def("book_backward", &book_backward<T>);
}

}  // namespace

void bind_book(py::module_& m) {
  bind_dtype<float>(m, "BookSavedF32");
  bind_dtype<double>(m, "BookSavedF64");
  // Arrays of other dtypes, or not C-contiguous: None, and the layer converts them and calls
  // again.
  m.def("book_forward", [](const py::args&) { return py::object(py::none()); });
  m.def("book_backward", [](const py::args&) { return py::object(py::none()); });
}

}  // namespace seqkern::bind
