#include "seqkern/sampling.h"

#include <vector>

namespace seqkern {

int64_t cdf_search(const double* p, int64_t n, double u) {
  thread_local std::vector<double> cdf;  // running sums, kept between tokens
  cdf.resize(n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) cdf[i] = sum += p[i];
  // binary search of the non-decreasing cdf[i] / sum, divided where probed only
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] / sum > u)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

}  // namespace seqkern
