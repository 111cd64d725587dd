// _core.ctc_loss_forward / _backward and ctc_beam_search: pointers in, GIL released, kernel
// called.
#include "seqkern/ctc.h"
#include "seqkern/ctc_decoding.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

// log_probs (T, B, C), log_alpha (B, T, L)
template <typename T>
CtcShape shape_of(const Arr<T>& log_probs, const Arr<T>& log_alpha) {
  return {log_probs.shape(0), log_probs.shape(1), log_probs.shape(2), log_alpha.shape(2)};
}

template <typename T>
void forward(const Arr<T>& log_probs, const Arr<int64_t>& targets, const Arr<int64_t>& offsets,
             const Arr<int64_t>& input_lengths, const Arr<int64_t>& target_lengths, int64_t blank,
             Arr<T>& losses, Arr<T>& log_alpha) {
  const CtcShape s = shape_of(log_probs, log_alpha);
  T *pl = losses.mutable_data(), *pa = log_alpha.mutable_data();
  py::gil_scoped_release nogil;
  ctc_loss_forward<T>(s, log_probs.data(), targets.data(), offsets.data(), input_lengths.data(),
                      target_lengths.data(), blank, pl, pa);
}

template <typename T>
void backward(const Arr<T>& log_probs, const Arr<int64_t>& targets, const Arr<int64_t>& offsets,
              const Arr<int64_t>& input_lengths, const Arr<int64_t>& target_lengths,
              int64_t blank, const Arr<T>& losses, const Arr<T>& log_alpha, const Arr<T>& scale,
              Arr<T>& grad) {
  const CtcShape s = shape_of(log_probs, log_alpha);
  T* pg = grad.mutable_data();
  py::gil_scoped_release nogil;
  ctc_loss_backward<T>(s, log_probs.data(), targets.data(), offsets.data(), input_lengths.data(),
                       target_lengths.data(), blank, losses.data(), log_alpha.data(),
                       scale.data(), pg);
}

// (best label lists, their log-probabilities (B,)) of each sequence's prefix beam search.
py::tuple beam_search(const Arr<double>& log_probs, const Arr<int64_t>& input_lengths,
                      int64_t beam_width, int64_t blank) {
  const int64_t T = log_probs.shape(0), B = log_probs.shape(1), C = log_probs.shape(2);
  std::vector<std::vector<int64_t>> labels;
  py::array_t<double> scores(B);
  double* ps = scores.mutable_data();
  {
    py::gil_scoped_release nogil;
    ctc_beam_search(T, B, C, log_probs.data(), input_lengths.data(), beam_width, blank, labels,
                    ps);
  }
  py::list out;
  for (const auto& seq : labels) out.append(py::cast(seq));
  return py::make_tuple(out, scores);
}

}  // namespace

void bind_ctc(py::module_& m) {
  m.def("ctc_beam_search", &beam_search);
  m.def("ctc_loss_forward", &forward<float>);
  m.def("ctc_loss_forward", &forward<double>);
  m.def("ctc_loss_backward", &backward<float>);
  m.def("ctc_loss_backward", &backward<double>);
}

}  // namespace seqkern::bind
