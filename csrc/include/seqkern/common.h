// Shapes and small helpers shared by the recurrent kernels. No Python here.
#pragma once
#include <cstdint>

namespace seqkern {

// One layer, one direction, time-major.
//   T steps, B sequences, I input features, H hidden units; P > 0: LSTM with a projection of the
//   hidden state to P values (torch's proj_size), 0: none.
struct RnnShape {
  int64_t T, B, I, H;
  int64_t P = 0;
  // The forward's weights were packed before the call (an eval layer's, bf16 or float): the
  // call itself packs none. Set by the forward kernels from their arguments.
  bool prepacked = false;
  int64_t state() const { return P ? P : H; }  // width of h (and y)
};

// One layer's weights rounded to bfloat16 and packed for inference (seqkern/bf16.h).
struct Bf16Layer;
// One layer's float32 weights packed once for inference (seqkern/f32_panels.h).
struct F32Layer;

// Length of sequence b: every step runs when lengths is null.
inline int64_t seq_len(const int32_t* lengths, int64_t T, int64_t b) {
  return lengths ? lengths[b] : T;
}

}  // namespace seqkern
