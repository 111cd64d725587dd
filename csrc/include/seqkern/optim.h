// Optimizer steps over one parameter array, each a single fused pass (every update reads and
// writes each value once), with torch.optim's formulas. Arrays hold n values; state arrays are
// the optimizer's, kept between steps. weight_decay adds wd * p to the gradient (L2), except
// adam's `decoupled` (AdamW), which scales p by (1 - lr * wd) first.
#pragma once
#include <cstdint>

namespace seqkern {

// SGD. momentum_buf (n) is used when momentum != 0; `first` (its first step) sets it to the
// gradient instead of blending.
template <typename T>
void sgd_step(int64_t n, T* p, const T* g, T* momentum_buf, T lr, T momentum, T dampening,
              bool nesterov, T weight_decay, bool first);

// Adam / AdamW. m, v (n) moments; step is the 1-based step count (for bias correction).
template <typename T>
void adam_step(int64_t n, T* p, const T* g, T* m, T* v, T lr, T beta1, T beta2, T eps,
               T weight_decay, bool decoupled, int64_t step);

// AdaGrad: sum (n) += g^2; p -= clr * g / (sqrt(sum) + eps).
template <typename T>
void adagrad_step(int64_t n, T* p, const T* g, T* sum, T clr, T eps, T weight_decay);

// RMSprop: sq (n) = alpha sq + (1-alpha) g^2; with momentum, buf (n) = momentum buf +
// g / (sqrt(sq) + eps) and p -= lr * buf, else p -= lr * g / (sqrt(sq) + eps).
template <typename T>
void rmsprop_step(int64_t n, T* p, const T* g, T* sq, T* momentum_buf, T lr, T alpha, T eps,
                  T momentum, T weight_decay);

// Sum of squares of n values in double, over fixed blocks so that the result does not depend
// on the thread count (gradient clipping by global norm).
template <typename T>
double sum_squares(int64_t n, const T* a);

}  // namespace seqkern
