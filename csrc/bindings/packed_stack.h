// A stack's forward weight matrices packed once for inference calls back to back (_core.PackedStack),
// shared by the stack's binding and the one-layer ones.
#pragma once
#include <string>
#include <type_traits>
#include <vector>

#include "arrays.h"
#include "seqkern/bf16.h"
#include "seqkern/f32_panels.h"

namespace seqkern::bind {

// Entry k for layer-direction k, either rounded to bfloat16 (seqkern/bf16.h) or float32
// (seqkern/f32_panels.h), as `precision` says; `key` = (cell, L, D, I, H, P) for the Python
// side's checks.
struct PackedStack {
  std::vector<Bf16Layer> bf16;
  std::vector<F32Layer> f32;
  py::tuple key;
  std::string precision;
};

// Layer-direction k's matrices of one precision, or null (no packed stack, or the other
// precision). Arrays of T: float32 only.
template <typename T>
const Bf16Layer* bf16_layer_at(const PackedStack* p, size_t k) {
  if (p && !std::is_same_v<T, float>) throw std::invalid_argument("packed: float32 arrays only");
  return p && !p->bf16.empty() ? &p->bf16[k] : nullptr;
}
template <typename T>
const F32Layer* f32_layer_at(const PackedStack* p, size_t k) {
  if (p && !std::is_same_v<T, float>) throw std::invalid_argument("packed: float32 arrays only");
  return p && !p->f32.empty() ? &p->f32[k] : nullptr;
}

}  // namespace seqkern::bind
