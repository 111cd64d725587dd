// Backward of one recurrent layer on the device. Time runs in reverse, one kernel a step: it
// computes step t+1's pre-activation gradients times W_hh (column_dots over the G*H rows of
// W_hh, lanes on its consecutive columns), adds them to the carried dh, and runs the cell's
// backward, writing step t's pre-activation gradients. A last launch (t = -1) gives dh0. The
// weight gradients then come from three GEMMs over all steps and the biases' from column sums.
//
// Gradients past a sequence's end are zero, and its carried dh and dc pass through unchanged.
// h_{t-1} of an active step is y[t-1] (or h0), since a sequence is active up to its end.
#include "check.cuh"
#include "gemm.cuh"
#include "layout.cuh"
#include "recurrent_step.cuh"

namespace seqkern::cuda {
namespace {

template <typename T>
struct BackwardStep {
  const T* w_hh;  // (G*H, H)
  const int32_t* lengths;
  const T* gates;  // (T, B, G*H) activated gates of the forward
  const T* aux;    // (T, B, H): c_t (LSTM), W_hn h + b_hn (GRU)
  const T* y;      // (T, B, H)
  const T* h0;     // (B, H)
  const T* c0;     // (B, H), LSTM
  const T* dy;     // (T, B, H) or null
  T* dgh;          // (T, B, G*H) pre-activation gradients on the recurrent side
  T* dgx;          // (T, B, G*H) on the input side: GRU's differ in n, else dgx is dgh
  T* dh;           // (B, H) carried gradient of the state; dh0 at the end
  T* dc;           // (B, H) carried gradient of c (LSTM); dc0 at the end
  int64_t T_, B, H;
  int64_t t;       // -1: the last launch, dh += dgh[0] W_hh
};

template <typename T, CudaCell C, int BB>
__global__ void __launch_bounds__(kStepThreads) backward_step(BackwardStep<T> s) {
  constexpr int G = gate_count(C);
  const int64_t H = s.H, GH = G * H, j = int64_t(blockIdx.x) * 32 + (threadIdx.x & 31);
  const int64_t b0 = int64_t(blockIdx.y) * BB, t = s.t;
  const T* next = t + 1 < s.T_ ? s.dgh + (t + 1) * s.B * GH : nullptr;  // step t+1's gradients
  T rec[1];
  column_dots<T, 1, BB>(next, GH, s.B, b0, s.w_hh, H, 0, j, H, rec);
  const int64_t b = b0 + (threadIdx.x >> 5);
  if (threadIdx.x >= BB * 32 || b >= s.B || j >= H) return;
  const int64_t st = b * H + j;
  const T dh_state = s.dh[st] + rec[0];
  if (t < 0) {
    s.dh[st] = dh_state;
    return;
  }
  const int64_t q = (t * s.B + b) * H + j, p = (t * s.B + b) * GH + j;
  T* dgh = s.dgh + p;
  T* dgx = s.dgx + p;
  if (s.lengths != nullptr && t >= s.lengths[b]) {  // past the end: nothing flows in or out
#pragma unroll
    for (int g = 0; g < G; ++g) dgh[g * H] = dgx[g * H] = T(0);
    s.dh[st] = dh_state;
    return;
  }
  const T dh = dh_state + (s.dy != nullptr ? s.dy[q] : T(0));
  const T* gate = s.gates + p;
  if constexpr (C == CudaCell::lstm) {
    const T i = gate[0], f = gate[H], g = gate[2 * H], o = gate[3 * H];
    const T c = s.aux[q], c_prev = t > 0 ? s.aux[q - s.B * H] : s.c0[st];
    const T tc = tanh(c);
    const T dc = s.dc[st] + dh * o * (T(1) - tc * tc);
    dgh[0] = dc * g * i * (T(1) - i);
    dgh[H] = dc * c_prev * f * (T(1) - f);
    dgh[2 * H] = dc * i * (T(1) - g * g);
    dgh[3 * H] = dh * tc * o * (T(1) - o);
    s.dc[st] = dc * f;
    s.dh[st] = T(0);
  } else if constexpr (C == CudaCell::gru) {
    const T r = gate[0], z = gate[H], n = gate[2 * H], hn = s.aux[q];
    const T h_prev = t > 0 ? s.y[q - s.B * H] : s.h0[st];
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dr = dn * hn * r * (T(1) - r), dz = dh * (h_prev - n) * z * (T(1) - z);
    dgh[0] = dgx[0] = dr;
    dgh[H] = dgx[H] = dz;
    dgx[2 * H] = dn;
    dgh[2 * H] = dn * r;
    s.dh[st] = dh * z;
  } else {
    const T h = s.y[q];
    dgh[0] = C == CudaCell::rnn_tanh ? dh * (T(1) - h * h) : (h > T(0) ? dh : T(0));
    s.dh[st] = T(0);
  }
}

template <typename T, CudaCell C>
void launch_steps(BackwardStep<T> s, cudaStream_t stream) {
  constexpr int BB = batch_tile<T>();
  const unsigned cols = blocks_for(s.H, 32);
  for (int64_t t = s.T_ - 1; t >= -1; --t) {
    s.t = t;
    if (s.B == 1)
      backward_step<T, C, 1><<<dim3(cols, 1), kStepThreads, 0, stream>>>(s);
    else
      backward_step<T, C, BB><<<dim3(cols, blocks_for(s.B, BB)), kStepThreads, 0, stream>>>(s);
    check_launch("backward_step");
  }
}

void fill_or_copy(void* dst, const void* src, int64_t bytes, cudaStream_t stream) {
  check(src != nullptr ? cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream)
                       : cudaMemsetAsync(dst, 0, bytes, stream),
        "incoming gradient");
}

}  // namespace

int64_t backward_workspace(CudaCell cell, int64_t T, int64_t B, int64_t H) {
  const int64_t GH = gate_count(cell) * H;
  return T * B * GH * (cell == CudaCell::gru ? 2 : 1) + column_sums_workspace(GH);
}

template <typename T>
void backward(const LayerArgs<T>& a, const T* y, const T* gates, const T* aux, const T* dy,
              const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih,
              T* db_hh, T* workspace, void* stream_) {
  const auto stream = static_cast<cudaStream_t>(stream_);
  const int64_t GH = gate_count(a.cell) * a.H, TB = a.T * a.B, BH = a.B * a.H;
  const bool gru = a.cell == CudaCell::gru;
  T* dgh = workspace;
  T* dgx = gru ? dgh + TB * GH : dgh;
  T* partial = dgx + TB * GH;
  fill_or_copy(dh0, dh_n, BH * sizeof(T), stream);
  if (a.cell == CudaCell::lstm) fill_or_copy(dc0, dc_n, BH * sizeof(T), stream);
  const BackwardStep<T> s{a.w_hh, a.lengths, gates, aux, y, a.h0, a.c0, dy, dgh, dgx, dh0, dc0,
                          a.T, a.B, a.H, 0};
  switch (a.cell) {
    case CudaCell::rnn_tanh: launch_steps<T, CudaCell::rnn_tanh>(s, stream); break;
    case CudaCell::rnn_relu: launch_steps<T, CudaCell::rnn_relu>(s, stream); break;
    case CudaCell::lstm: launch_steps<T, CudaCell::lstm>(s, stream); break;
    case CudaCell::gru: launch_steps<T, CudaCell::gru>(s, stream); break;
  }
  gemm<T>(stream, false, false, TB, a.I, GH, T(1), dgx, GH, a.w_ih, a.I, T(0), dx, a.I);
  gemm<T>(stream, true, false, GH, a.I, TB, T(1), dgx, GH, a.x, a.I, T(0), dw_ih, a.I);
  // dW_hh = sum_t dgh[t]^T h_{t-1}: h0 for the first step, y[0..T-2] for the others
  gemm<T>(stream, true, false, GH, a.H, a.B, T(1), dgh, GH, a.h0, a.H, T(0), dw_hh, a.H);
  if (a.T > 1)
    gemm<T>(stream, true, false, GH, a.H, TB - a.B, T(1), dgh + a.B * GH, GH, y, a.H, T(1), dw_hh,
            a.H);
  if (db_ih != nullptr) column_sums<T>(stream, dgx, TB, GH, db_ih, partial);
  if (db_hh != nullptr) {
    if (db_ih != nullptr && !gru)  // one pre-activation: both biases get the same gradient
      check(cudaMemcpyAsync(db_hh, db_ih, GH * sizeof(T), cudaMemcpyDeviceToDevice, stream),
            "db_hh");
    else
      column_sums<T>(stream, dgh, TB, GH, db_hh, partial);
  }
}

template void backward<float>(const LayerArgs<float>&, const float*, const float*, const float*,
                              const float*, const float*, const float*, float*, float*, float*,
                              float*, float*, float*, float*, float*, void*);
template void backward<double>(const LayerArgs<double>&, const double*, const double*,
                               const double*, const double*, const double*, const double*,
                               double*, double*, double*, double*, double*, double*, double*,
                               double*, void*);

}  // namespace seqkern::cuda
