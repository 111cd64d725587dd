// Forward of one recurrent layer on the device: one GEMM projects every step's input for all
// gates, then one kernel a step computes h_{t-1} W_hh^T for all gates (column_dots, on a
// transposed copy of W_hh so that lanes read consecutive columns) and runs the cell on the sums.
#include "check.cuh"
#include "gemm.cuh"
#include "layout.cuh"
#include "recurrent_step.cuh"

namespace seqkern::cuda {
namespace {

template <typename T>
struct ForwardStep {
  const T* w_hh_t;  // (H, G*H)
  const T* b_ih;    // (G*H,) or null
  const T* b_hh;
  const int32_t* lengths;
  const T* h_in;    // (B, H) state before the step
  T* h_out;         // (B, H) state after it
  T* c;             // (B, H) LSTM cell state, updated in place
  T* gates;         // (T, B, G*H) input projections in; activated gates out when training
  T* aux;           // (T, B, H) or null: c_t (LSTM), W_hn h + b_hn (GRU)
  T* y;             // (T, B, H)
  int64_t B, H;
  int64_t t;
};

template <typename T, CudaCell C, int BB>
__global__ void __launch_bounds__(kStepThreads) forward_step(ForwardStep<T> s) {
  constexpr int G = gate_count(C);
  const int64_t H = s.H, j = int64_t(blockIdx.x) * 32 + (threadIdx.x & 31);
  const int64_t b0 = int64_t(blockIdx.y) * BB;
  T sum[G];
  column_dots<T, G, BB>(s.h_in, H, s.B, b0, s.w_hh_t, G * H, H, j, H, sum);
  const int64_t b = b0 + (threadIdx.x >> 5);
  if (threadIdx.x >= BB * 32 || b >= s.B || j >= H) return;
  const int64_t st = b * H + j, q = (s.t * s.B + b) * H + j;
  if (s.lengths != nullptr && s.t >= s.lengths[b]) {  // past the end: y zero, state kept
    s.y[q] = T(0);
    s.h_out[st] = s.h_in[st];
    return;
  }
  T* gx = s.gates + (s.t * s.B + b) * G * H + j;
  auto bias = [&](const T* v, int g) { return v != nullptr ? v[g * H + j] : T(0); };
  auto pre = [&](int g) { return gx[g * H] + bias(s.b_ih, g) + bias(s.b_hh, g) + sum[g]; };
  const bool training = s.aux != nullptr;
  T h;
  if constexpr (C == CudaCell::lstm) {
    const T i = sigmoid(pre(0)), f = sigmoid(pre(1)), g = tanh(pre(2)), o = sigmoid(pre(3));
    const T c = f * s.c[st] + i * g;
    h = o * tanh(c);
    s.c[st] = c;
    if (training) {
      gx[0] = i, gx[H] = f, gx[2 * H] = g, gx[3 * H] = o;
      s.aux[q] = c;
    }
  } else if constexpr (C == CudaCell::gru) {
    const T r = sigmoid(pre(0)), z = sigmoid(pre(1));
    const T hn = sum[2] + bias(s.b_hh, 2);
    const T n = tanh(gx[2 * H] + bias(s.b_ih, 2) + r * hn);
    h = (T(1) - z) * n + z * s.h_in[st];
    if (training) {
      gx[0] = r, gx[H] = z, gx[2 * H] = n;
      s.aux[q] = hn;
    }
  } else {
    const T v = pre(0);
    h = C == CudaCell::rnn_tanh ? tanh(v) : (v > T(0) ? v : T(0));
  }
  s.y[q] = h;
  s.h_out[st] = h;
}

template <typename T, CudaCell C>
void launch_steps(ForwardStep<T> s, int64_t T_, T* const hbuf[2], cudaStream_t stream) {
  constexpr int BB = batch_tile<T>();
  const unsigned cols = blocks_for(s.H, 32);
  for (int64_t t = 0; t < T_; ++t) {
    s.t = t, s.h_in = hbuf[t % 2], s.h_out = hbuf[(t + 1) % 2];
    if (s.B == 1)
      forward_step<T, C, 1><<<dim3(cols, 1), kStepThreads, 0, stream>>>(s);
    else
      forward_step<T, C, BB><<<dim3(cols, blocks_for(s.B, BB)), kStepThreads, 0, stream>>>(s);
    check_launch("forward_step");
  }
}

}  // namespace

int64_t forward_workspace(CudaCell cell, int64_t, int64_t B, int64_t H) {
  return H * gate_count(cell) * H + B * H;  // W_hh^T, and one of the two state buffers
}

template <typename T>
void forward(const LayerArgs<T>& a, T* y, T* h_n, T* c_n, T* gates, T* aux, T* workspace,
             void* stream_) {
  const auto stream = static_cast<cudaStream_t>(stream_);
  const int64_t G = gate_count(a.cell), GH = G * a.H, BH = a.B * a.H;
  gemm<T>(stream, false, true, a.T * a.B, GH, a.I, T(1), a.x, a.I, a.w_ih, a.I, T(0), gates, GH);
  T* w_hh_t = workspace;
  transpose<T>(stream, a.w_hh, GH, a.H, w_hh_t);
  // The state ping-pongs between h_n and a scratch buffer, arranged to end in h_n.
  T* scratch = workspace + GH * a.H;
  T* const hbuf[2] = {a.T % 2 == 0 ? h_n : scratch, a.T % 2 == 0 ? scratch : h_n};
  check(cudaMemcpyAsync(hbuf[0], a.h0, BH * sizeof(T), cudaMemcpyDeviceToDevice, stream), "h0");
  if (a.cell == CudaCell::lstm)
    check(cudaMemcpyAsync(c_n, a.c0, BH * sizeof(T), cudaMemcpyDeviceToDevice, stream), "c0");
  const ForwardStep<T> s{w_hh_t, a.b_ih, a.b_hh, a.lengths, nullptr, nullptr, c_n, gates, aux, y,
                         a.B, a.H, 0};
  switch (a.cell) {
    case CudaCell::rnn_tanh: launch_steps<T, CudaCell::rnn_tanh>(s, a.T, hbuf, stream); break;
    case CudaCell::rnn_relu: launch_steps<T, CudaCell::rnn_relu>(s, a.T, hbuf, stream); break;
    case CudaCell::lstm: launch_steps<T, CudaCell::lstm>(s, a.T, hbuf, stream); break;
    case CudaCell::gru: launch_steps<T, CudaCell::gru>(s, a.T, hbuf, stream); break;
  }
}

template void forward<float>(const LayerArgs<float>&, float*, float*, float*, float*, float*,
                             float*, void*);
template void forward<double>(const LayerArgs<double>&, double*, double*, double*, double*,
                              double*, double*, void*);

}  // namespace seqkern::cuda
