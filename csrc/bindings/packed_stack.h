// A stack's forward weight matrices packed once for inference calls back to back (_core.PackedStack),
// shared by the stack's binding and the one-layer ones.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
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
  // Entry k's arrays as packed: (w_ih, w_hh, w_hr or None). Held, so that no other array can
  // take their place in memory while the packed copy lives.
  py::list packed_from;
};

// A binding's packed stack argument, None for none. (A `const PackedStack*` parameter takes None
// only in pybind11's second pass over a function's overloads, where it lets conversions in: every
// float call without a packed stack loaded its arguments twice.)
using OptPacked = std::optional<std::reference_wrapper<const PackedStack>>;

inline const PackedStack* get(const OptPacked& p) { return p ? &p->get() : nullptr; }

// Layer-direction k's packed matrices of a call on arrays of T (float32 only): the bfloat16 or
// the float32 ones, the other null; both null without a packed stack. The call must pass the
// arrays that were packed (the same memory: those arrays or views of them; w_hr null without
// projections): other arrays of the same shapes used to run on the packed ones' products with
// their own biases, the results of neither.
template <typename T>
std::pair<const Bf16Layer*, const F32Layer*> packed_layer(const PackedStack* p, size_t k,
                                                          const Arr<T>& w_ih, const Arr<T>& w_hh,
                                                          const Arr<T>* w_hr) {
  if (!p) return {nullptr, nullptr};
  if (!std::is_same_v<T, float>) throw std::invalid_argument("packed: float32 arrays only");
  const auto data = [](const py::handle& a) -> const void* {
    return a.is_none() ? nullptr : py::detail::array_proxy(a.ptr())->data;
  };
  const py::tuple from = p->packed_from[k];  // IndexError past the packed entries
  if (data(from[0]) != w_ih.source() || data(from[1]) != w_hh.source() ||
      data(from[2]) != (w_hr ? w_hr->source() : nullptr))
    throw std::invalid_argument(
        "prepacked: packed from other weight arrays than this call's (weights[" +
        std::to_string(k) + "]); pack these with sk.prepack_weights, or pass the arrays packed");
  return {p->bf16.empty() ? nullptr : &p->bf16[k], p->f32.empty() ? nullptr : &p->f32[k]};
}

}  // namespace seqkern::bind
