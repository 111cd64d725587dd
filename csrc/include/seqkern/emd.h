// The earth mover's distance between two discrete distributions: the least cost of moving the
// mass of a onto that of b when a unit moved from i to j costs C[i][j] (an exact transport
// problem). KeyedVectors.wmdistance (the word mover's distance) solves it over word vectors.
#pragma once
#include <cstdint>

namespace seqkern {

// a (n) and b (m): nonnegative masses with equal sums; C (n, m) row-major, nonnegative. Writes
// the transport plan to flow (n, m) when it is not null, and returns its cost, sum of
// flow[i][j] * C[i][j] (NaN where the pivots ran past their cap: cycling, which rounding alone
// could cause). Where the sums differ by rounding, the plan leaves the excess unmoved.
double emd(const double* a, int64_t n, const double* b, int64_t m, const double* C,
           double* flow);

}  // namespace seqkern
