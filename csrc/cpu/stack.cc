// Layers and directions of a recurrent network routed through the one-layer kernels.
// Shapes: seqkern/stack.h.
//
// The reverse direction runs the forward kernel on a per-sequence reversed copy of its input
// (step s reads time lengths[b]-1-s), so padding stays at the end and the kernels need no second
// code path; its output is reversed back into its half of the layer output.
#include "seqkern/stack.h"

#include <algorithm>
#include <cstring>

#include "recurrent.h"
#include "seqkern/gru.h"
#include "seqkern/lstm.h"
#include "seqkern/threads.h"

namespace seqkern {

namespace {

Nonlinearity nonlinearity(Cell cell) {
  return cell == Cell::RnnRelu ? Nonlinearity::Relu : Nonlinearity::Tanh;
}

// dst[t, b] = src[u, b] for t < lengths[b], with u = t, or u = lengths[b]-1-t when reverse; rows
// are n values with leading dimensions lds / ldd. Past lengths[b], dst is zeroed, or left alone
// when add (then dst[t, b] += src[u, b] instead of =).
template <typename T>
void copy_steps(const StackShape& s, const int32_t* lengths, bool reverse, bool add, int64_t n,
                const T* src, int64_t lds, T* dst, int64_t ldd) {
  parallel_for(s.T, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t b = 0; b < s.B; ++b) {
        const int64_t len = seq_len(lengths, s.T, b);
        T* d = dst + (t * s.B + b) * ldd;
        if (t >= len) {
          if (!add) std::fill(d, d + n, T(0));
          continue;
        }
        const T* r = src + ((reverse ? len - 1 - t : t) * s.B + b) * lds;
        if (add) {
          for (int64_t j = 0; j < n; ++j) d[j] += r[j];
        } else {
          std::memcpy(d, r, n * sizeof(T));
        }
      }
    }
  });
}

// a *= m elementwise over n values (dropout, forward and backward).
template <typename T>
void multiply(T* a, const T* m, int64_t n) {
  parallel_for(n, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] *= m[i];
  });
}

template <typename T>
void layer_forward(Cell cell, const RnnShape& s, const T* x, const LayerWeights<T>& w,
                   const int32_t* lengths, const T* h0, const T* c0, T* y, T* h_n, T* c_n,
                   T* gates, T* aux) {
  switch (cell) {
    case Cell::Lstm:
      lstm_forward(s, x, w.w_ih, w.w_hh, w.b_ih, w.b_hh, w.w_hr, lengths, h0, c0, y, h_n, c_n,
                   gates, aux, w.bf16, w.f32);
      return;
    case Cell::Gru:
    case Cell::GruResetBefore:
      gru_forward(s, cell == Cell::Gru, x, w.w_ih, w.w_hh, w.b_ih, w.b_hh, lengths, h0, y, h_n,
                  gates, aux, w.bf16, w.f32);
      return;
    default:
      rnn_forward(s, nonlinearity(cell), x, w.w_ih, w.w_hh, w.b_ih, w.b_hh, lengths, h0, y, h_n,
                  w.bf16, w.f32);
  }
}

template <typename T>
void layer_backward(Cell cell, const RnnShape& s, const T* x, const LayerWeights<T>& w,
                    const int32_t* lengths, const T* h0, const T* c0, const T* y, const T* gates,
                    const T* aux, const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0,
                    T* dc0, const LayerGrads<T>& g) {
  T* db = g.b_ih ? g.b_ih : g.b_hh;  // LSTM, RNN: one bias gradient (either may be frozen)
  switch (cell) {
    case Cell::Lstm:
      lstm_backward(s, x, w.w_ih, w.w_hh, w.w_hr, lengths, h0, c0, y, gates, aux, dy, dh_n, dc_n,
                    dx, dh0, dc0, g.w_ih, g.w_hh, g.w_hr, db);
      break;
    case Cell::Gru:
    case Cell::GruResetBefore:
      gru_backward(s, cell == Cell::Gru, x, w.w_ih, w.w_hh, lengths, h0, y, gates, aux, dy, dh_n, dx, dh0, g.w_ih,
                   g.w_hh, g.b_ih, g.b_hh);
      return;
    default:
      rnn_backward(s, nonlinearity(cell), x, w.w_ih, w.w_hh, lengths, h0, y, dy, dh_n, dx, dh0,
                   g.w_ih, g.w_hh, db);
  }
  // LSTM and RNN biases enter as a sum, so both get the same gradient.
  if (g.b_ih && g.b_hh) std::copy(g.b_ih, g.b_ih + gates_per_cell(cell) * s.H, g.b_hh);
}

}  // namespace

// With two or three threads, the two directions of a layer run at once, one per core, each on
// one thread: that beats splitting a small batch further, and the directions are independent.
// With more threads, each direction gets the whole pool in turn.
template <typename F>
void for_directions(int64_t D, F&& f) {
  const int threads = get_num_threads();
  if (D == 2 && threads >= 2 && threads < 4) {
    parallel_for(2, 1, [&](int64_t d0, int64_t d1) {
      for (int64_t d = d0; d < d1; ++d) f(d);
    });
  } else {
    for (int64_t d = 0; d < D; ++d) f(d);
  }
}

template <typename T>
void stack_forward(Cell cell, const StackShape& s, const T* x, const LayerWeights<T>* w,
                   const int32_t* lengths, const T* h0, const T* c0, const T* masks, T* y, T* h_n,
                   T* c_n, const StackSaved<T>* saved) {
  const int64_t S = s.state(), TB = s.T * s.B, BH = s.B * s.H, BS = s.B * S, TBH = TB * s.H;
  const int64_t TBS = TB * S, DS = s.D * S, GH = gates_per_cell(cell) * s.H;
  const bool lstm = cell == Cell::Lstm;
  // Reused from call to call (detail::scratch): fresh buffers cost page faults and zeroing, 10%
  // of a 2-layer bidirectional RNN at (100,32,256,256) with variable lengths.
  T* x_rev = s.D == 2 ? detail::scratch<T>(3, TB * std::max(s.I, DS)) : nullptr;
  // inference, bidirectional: each direction's y (one direction writes the layer output itself)
  T* y_own = saved || s.D == 1 ? nullptr : detail::scratch<T>(4, s.D * TBS);
  T* outs = saved || s.L == 1 ? nullptr : detail::scratch<T>(5, 2 * TB * DS);  // layer outputs

  const T* in = x;
  int64_t I = s.I;
  for (int64_t l = 0; l < s.L; ++l) {
    T* out = l == s.L - 1 ? y : saved ? saved->inputs + l * TB * DS : outs + (l % 2) * TB * DS;
    for_directions(s.D, [&](int64_t d) {
      const int64_t k = l * s.D + d;
      const bool reverse = d == 1;
      const T* xk = in;
      if (reverse) {
        copy_steps(s, lengths, true, false, I, in, I, x_rev, I);
        xk = x_rev;
      }
      T* yk = saved ? saved->ys + k * TBS : s.D == 1 ? out : y_own + d * TBS;
      T* gk = saved && saved->gates ? saved->gates + k * TB * GH : nullptr;
      T* ak = saved && saved->aux ? saved->aux + k * TBH : nullptr;
      layer_forward(cell, RnnShape{s.T, s.B, I, s.H, s.P}, xk, w[k], lengths, h0 + k * BS,
                    lstm ? c0 + k * BH : nullptr, yk, h_n + k * BS, lstm ? c_n + k * BH : nullptr,
                    gk, ak);
      if (yk != out) copy_steps(s, lengths, reverse, false, S, yk, S, out + d * S, DS);
    });
    if (masks && l < s.L - 1) multiply(out, masks + l * TB * DS, TB * DS);
    in = out;
    I = DS;
  }
}

template <typename T>
void stack_backward(Cell cell, const StackShape& s, const T* x, const LayerWeights<T>* w,
                    const int32_t* lengths, const T* h0, const T* c0, const T* masks,
                    const StackSaved<T>& saved, const T* dy, const T* dh_n, const T* dc_n, T* dx,
                    T* dh0, T* dc0, const LayerGrads<T>* g) {
  const int64_t S = s.state(), TB = s.T * s.B, BH = s.B * s.H, BS = s.B * S, TBH = TB * s.H;
  const int64_t TBS = TB * S, DS = s.D * S, GH = gates_per_cell(cell) * s.H;
  const bool lstm = cell == Cell::Lstm;
  const int64_t I_max = std::max(s.I, DS);
  // Reused from call to call, as in stack_forward.
  T* dout = detail::scratch<T>(3, TB * DS);                   // gradient of the layer's output
  T* din = s.L > 1 ? detail::scratch<T>(4, TB * DS) : nullptr;  // ... and of its input (l > 0)
  T* dy_k = detail::scratch<T>(5, s.D * TBS);                 // each direction's share of dout
  T* x_rev = s.D == 2 ? detail::scratch<T>(6, TB * I_max) : nullptr;
  T* dx_rev = s.D == 2 ? detail::scratch<T>(7, TB * I_max) : nullptr;  // reverse dx, reversed
  if (dy)
    std::copy(dy, dy + TB * DS, dout);
  else
    std::fill(dout, dout + TB * DS, T(0));

  for (int64_t l = s.L - 1; l >= 0; --l) {
    const int64_t I = l == 0 ? s.I : DS;
    const T* in = l == 0 ? x : saved.inputs + (l - 1) * TB * DS;
    T* dlayer_in = l == 0 ? dx : din;
    for_directions(s.D, [&](int64_t d) {
      const int64_t k = l * s.D + d;
      const bool reverse = d == 1;
      T* dyk = dy_k + d * TBS;
      copy_steps(s, lengths, reverse, false, S, dout + d * S, DS, dyk, S);
      const T* xk = in;
      if (reverse) {
        copy_steps(s, lengths, true, false, I, in, I, x_rev, I);
        xk = x_rev;
      }
      layer_backward(cell, RnnShape{s.T, s.B, I, s.H, s.P}, xk, w[k], lengths, h0 + k * BS,
                     lstm ? c0 + k * BH : nullptr, saved.ys + k * TBS,
                     saved.gates ? saved.gates + k * TB * GH : nullptr,
                     saved.aux ? saved.aux + k * TBH : nullptr, dyk,
                     dh_n ? dh_n + k * BS : nullptr, lstm && dc_n ? dc_n + k * BH : nullptr,
                     reverse && dlayer_in ? dx_rev : dlayer_in, dh0 ? dh0 + k * BS : nullptr,
                     lstm ? dc0 + k * BH : nullptr, g[k]);
    });
    if (s.D == 2 && dlayer_in) copy_steps(s, lengths, true, true, I, dx_rev, I, dlayer_in, I);
    if (l > 0) {
      if (masks) multiply(din, masks + (l - 1) * TB * DS, TB * DS);
      std::swap(dout, din);
    }
  }
}

#define SEQKERN_INSTANTIATE(T)                                                                  \
  template void stack_forward<T>(Cell, const StackShape&, const T*, const LayerWeights<T>*,      \
                                 const int32_t*, const T*, const T*, const T*, T*, T*, T*,       \
                                 const StackSaved<T>*);                                          \
  template void stack_backward<T>(Cell, const StackShape&, const T*, const LayerWeights<T>*,     \
                                  const int32_t*, const T*, const T*, const T*,                  \
                                  const StackSaved<T>&, const T*, const T*, const T*, T*, T*, T*, \
                                  const LayerGrads<T>*);
SEQKERN_INSTANTIATE(float)
SEQKERN_INSTANTIATE(double)
#undef SEQKERN_INSTANTIATE

}  // namespace seqkern
