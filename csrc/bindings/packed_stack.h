// A stack's forward weight matrices packed once for inference calls back to back (_core.PackedStack),
// shared by the stack's binding and the one-layer ones.
#pragma once
#include <array>
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
  // Where entry k's w_ih, w_hh and w_hr (or null) lay when packed. The arrays themselves are
  // held, so that no other array can take their place in memory while the packed copy lives.
  std::vector<std::array<const void*, 3>> sources;
  std::vector<py::object> held;
};

// Checks that a call passes layer-direction k the arrays that were packed (the same memory:
// those arrays or views of them), by where their values lie (Arr::source; w_hr null without
// projections). Other arrays of the same shapes used to run on the packed ones' products with
// their own biases: the results of neither.
inline void check_packed_from(const PackedStack* p, size_t k, const void* w_ih, const void* w_hh,
                              const void* w_hr) {
  if (!p) return;
  if (p->sources.at(k) != std::array<const void*, 3>{w_ih, w_hh, w_hr})
    throw std::invalid_argument(
        "prepacked: packed from other weight arrays than this call's (weights[" +
        std::to_string(k) + "]); pack these with sk.prepack_weights, or pass the arrays packed");
}

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
