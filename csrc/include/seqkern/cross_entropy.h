// Softmax cross-entropy over the rows of a logits matrix, fused: the log-softmax, the loss and
// (in backward) the gradient come from passes over each row while it is in cache, and the
// probabilities are never stored.
//   With ε the label smoothing, the target distribution of row n is q = (1-ε) onehot(t_n) + ε/V,
//   and loss_n = lse_n - (1-ε) x_n[t_n] - ε mean_j x_n[j]   (torch's label_smoothing).
#pragma once
#include <cstdint>

namespace seqkern {

// Forward.
//   logits  (N, V)
//   targets (N)       class ids in 0..V-1, or ignore_index (that row's loss is 0)
//   losses  (N)       out: loss of each row
//   lse     (N)       out: log-sum-exp of each row; keep for backward
template <typename T>
void softmax_cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                                   int64_t ignore_index, T smoothing, T* losses, T* lse);

// Backward: dlogits_n = scale_n * (softmax(x_n) - q_n), zero for ignored rows.
//   logits, targets, lse   as given to / returned by the forward
//   scale   (N)            d loss / d losses_n (the reduction folded in)
//   dlogits (N, V)         out; may be logits itself (the logits are then overwritten)
template <typename T>
void softmax_cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int64_t* targets,
                                    int64_t ignore_index, T smoothing, const T* lse,
                                    const T* scale, T* dlogits);

}  // namespace seqkern
