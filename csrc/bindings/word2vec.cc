// _core.w2v_train: arrays to pointers, GIL released, kernel called.
#include "seqkern/word2vec.h"

#include "arrays.h"

namespace seqkern::bind {

void bind_word2vec(py::module_& m) {
  m.def("w2v_train",
        [](int64_t window, int64_t negative, bool sg, bool cbow_mean, const Arr<int32_t>& ids,
           const Arr<int64_t>& offsets, const Arr<float>& keep, const Arr<uint32_t>& cum_table,
           float alpha0, float alpha1, Arr<uint64_t>& seeds, Arr<float>& syn0,
           Arr<float>& syn1neg) {
          W2vParams p{syn0.shape(1), window, negative, sg, cbow_mean};
          const int32_t* pi = ids.data();
          const int64_t* po = offsets.data();
          const float* pk = keep.data();
          const uint32_t* pc = cum_table.data();
          uint64_t* ps = seeds.mutable_data();
          float *p0 = syn0.mutable_data(), *p1 = syn1neg.mutable_data();
          const int64_t n_sentences = offsets.shape(0) - 1, V = syn0.shape(0);
          const int64_t parts = seeds.shape(0);
          py::gil_scoped_release nogil;
          return w2v_train(p, pi, po, n_sentences, pk, pc, V, alpha0, alpha1, ps, parts, p0, p1);
        });
}

}  // namespace seqkern::bind
