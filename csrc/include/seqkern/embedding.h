// Embedding lookup: rows of a weight matrix picked by id, and the scatter-add of their gradients.
#pragma once
#include <cstdint>

namespace seqkern {

// Forward: out[n] = weight[ids[n]].
//   weight (V, D)    ids (N) in 0..V-1    out (N, D)
template <typename T>
void embedding_forward(int64_t N, int64_t D, const T* weight, const int64_t* ids, T* out);

// Backward: dweight[ids[n]] += dy[n] for every n whose id is not padding_idx (-1: none).
// Repeated ids are summed in order of n, so the result does not depend on the thread count
// (threads split the D columns, never the rows). zero_rows > 0: dweight's first zero_rows rows
// are zeroed first, on the threads (seqkern.book's layers overwrite their gradients).
//   dy (N, D)    ids (N)    dweight (V, D), accumulated into
template <typename T>
void embedding_backward(int64_t N, int64_t D, const T* dy, const int64_t* ids,
                        int64_t padding_idx, T* dweight, int64_t zero_rows = 0);

}  // namespace seqkern
