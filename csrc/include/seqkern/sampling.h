// Drawing a token through a cumulative distribution (seqkern/models/sampling.py's next_token).
#pragma once
#include <cstdint>

namespace seqkern {

// The index np.searchsorted(cdf, u, side="right") gives, cdf = np.cumsum(p) / its last value:
// the first i whose running sum, over the total, exceeds u (n when none does). The running sums
// are NumPy's (one add after another, in order) and so is each division, so a seed draws the
// same tokens. NumPy's cumsum took 37 us for 10,000 values (Zen 4), half of a word's sampling.
//   p (n), n >= 1, non-negative with a positive finite sum    u in [0, 1)
int64_t cdf_search(const double* p, int64_t n, double u);

}  // namespace seqkern
