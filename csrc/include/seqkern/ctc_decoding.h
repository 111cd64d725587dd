// CTC prefix beam search (Hannun et al. 2014), seqkern.ctc_beam_search's semantics: each prefix
// keeps the log-probability of its paths ending in a blank and in a label, merged over the paths
// that collapse to it; at each frame only the beam_width most likely classes (ties to the lower
// class) and a prefix's last label extend it, and the beam_width most probable prefixes survive
// (ties to the one reached first). Sequences are independent: threads split the batch.
#pragma once
#include <cstdint>
#include <vector>

namespace seqkern {

// log_probs (T, B, C) log-softmax outputs; input_lengths (B) in 0..T; beam_width >= 1.
// labels[b]: the best prefix of sequence b (out, B entries); scores (B): its log-probability.
void ctc_beam_search(int64_t T, int64_t B, int64_t C, const double* log_probs,
                     const int64_t* input_lengths, int64_t beam_width, int64_t blank,
                     std::vector<std::vector<int64_t>>& labels, double* scores);

}  // namespace seqkern
