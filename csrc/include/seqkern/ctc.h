// CTC loss (Graves et al. 2006), torch.nn.functional.ctc_loss's semantics: forward-backward in log
// space over the extended label sequence l' = (blank, l_1, blank, l_2, ..., l_S, blank) of
// L = 2S + 1 symbols. Batch elements are independent: threads split the batch.
#pragma once
#include <cstdint>

namespace seqkern {

struct CtcShape {
  int64_t T, B, C;
  int64_t L;  // 2 * max target length + 1: the width of a row of log_alpha
};

// Forward: losses[b] = -log p(target_b | inputs), +inf when no alignment exists.
//   log_probs (T, B, C)     log-softmax outputs
//   targets (sum S_b)       concatenated labels in 1..C-1 other than blank; offsets (B) where
//                           each sequence's labels start
//   input_lengths (B) in 0..T, target_lengths (B)
//   losses (B)              out
//   log_alpha (B, T, L)     out: the forward variables; keep for backward (rows past a sequence's
//                           own input length or extended length are not written)
template <typename T>
void ctc_loss_forward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                      const int64_t* offsets, const int64_t* input_lengths,
                      const int64_t* target_lengths, int64_t blank, T* losses, T* log_alpha);

// Backward: grad[t, b, c] = scale[b] * d losses[b] / d log_probs[t, b, c] (the true derivative,
// without torch's exp(log_probs) term), zero for t >= input_lengths[b] and for a sequence whose
// loss is infinite.
//   losses, log_alpha   as the forward wrote them
//   scale (B)           the incoming gradient of each loss (reduction folded in)
//   grad (T, B, C)      out (overwritten)
template <typename T>
void ctc_loss_backward(const CtcShape& s, const T* log_probs, const int64_t* targets,
                       const int64_t* offsets, const int64_t* input_lengths,
                       const int64_t* target_lengths, int64_t blank, const T* losses,
                       const T* log_alpha, const T* scale, T* grad);

}  // namespace seqkern
