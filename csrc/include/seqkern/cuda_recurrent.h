// The CUDA backend's recurrent layers: one layer, one direction, time-major, on device pointers.
// No CUDA types here, so the bindings compile with the host compiler alone: a stream is a
// cudaStream_t passed as void*, and a failed launch throws std::runtime_error.
//
// Shapes (G = 1 rnn, 4 lstm, 3 gru; PyTorch/cuDNN layout and gate order, as the CPU kernels):
//   x (T, B, I)   w_ih (G*H, I)   w_hh (G*H, H)   b_ih, b_hh (G*H,) or null
//   h0, c0, h_n, c_n, dh0, dc0 (B, H)   y (T, B, H), zero past lengths[b]
//   lengths (B,) int32 in 1..T, or null for all T
#pragma once

#include <cstdint>
#include <string>

namespace seqkern::cuda {

enum class CudaCell : int { rnn_tanh = 0, rnn_relu = 1, lstm = 2, gru = 3 };

// One layer call's device pointers. c0 is read by the LSTM only.
template <typename Real>
struct LayerArgs {
  CudaCell cell;
  int64_t T, B, I, H;
  const Real* x;
  const Real* w_ih;
  const Real* w_hh;
  const Real* b_ih;
  const Real* b_hh;
  const int32_t* lengths;
  const Real* h0;
  const Real* c0;
};

// Elements of T the forward's and the backward's workspace hold (scratch, never read back).
int64_t forward_workspace(CudaCell cell, int64_t T, int64_t B, int64_t H);
int64_t backward_workspace(CudaCell cell, int64_t T, int64_t B, int64_t H);

// Forward over the whole sequence.
//   y (T, B, H); h_n, c_n (B, H) (c_n LSTM only, may not alias c0)
//   gates (T, B, G*H): scratch for the input projections; when training it keeps the activated
//     gates (rnn: nothing of use) and must stay untouched until backward
//   aux (T, B, H) or null (inference): kept for backward, the LSTM's cell states c_t, the GRU's
//     W_hn h + b_hn
template <typename T>
void forward(const LayerArgs<T>& a, T* y, T* h_n, T* c_n, T* gates, T* aux, T* workspace,
             void* stream);

// Backward of a training forward (y, gates, aux as it left them). dy, dh_n, dc_n may be null
// (zeros). Every gradient is written: dx (T, B, I), dh0 and dc0 (B, H) (dc0 LSTM only),
// dw_ih, dw_hh, db_ih, db_hh (db_* null when the forward had no bias).
template <typename T>
void backward(const LayerArgs<T>& a, const T* y, const T* gates, const T* aux, const T* dy,
              const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih,
              T* db_hh, T* workspace, void* stream);

// The CUDA devices this process sees: 0 when there is no driver or no GPU, and then why_none
// (when given) gets the runtime's reason.
int device_count(std::string* why_none = nullptr);

// Makes `device` current for this thread's launches.
void set_device(int device);

}  // namespace seqkern::cuda
