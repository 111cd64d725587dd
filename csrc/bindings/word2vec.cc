// _core.w2v_train: arrays to pointers, GIL released, kernel called. _core.Vocabulary: the word
// scan and encoding of plain text (bytes in, numpy arrays out).
#include "seqkern/word2vec.h"

#include "seqkern/vocabulary.h"

#include <tuple>

#include "arrays.h"

namespace seqkern::bind {

void bind_word2vec(py::module_& m) {
  m.def("w2v_train",
        [](int64_t window, int64_t negative, bool sg, bool cbow_mean, bool shrink_windows,
           const Arr<int32_t>& ids, const Arr<int64_t>& offsets, const Arr<float>& keep,
           const Arr<uint32_t>& cum_table, float alpha0, float alpha1, Arr<uint64_t>& seeds,
           Arr<float>& syn0, std::optional<Arr<float>> syn1neg,
           std::optional<std::tuple<Arr<int64_t>, Arr<int32_t>, Arr<uint8_t>>> tree,
           std::optional<Arr<float>> syn1, bool compute_loss) {
          const bool hs = tree.has_value();
          W2vParams p{syn0.shape(1), window, negative, sg, cbow_mean, hs, shrink_windows};
          Tree t{hs ? std::get<0>(*tree).data() : nullptr, hs ? std::get<1>(*tree).data() : nullptr,
                 hs ? std::get<2>(*tree).data() : nullptr};
          const int32_t* pi = ids.data();
          const int64_t* po = offsets.data();
          const float* pk = keep.data();
          const uint32_t* pc = cum_table.data();
          uint64_t* ps = seeds.mutable_data();
          float* p0 = syn0.mutable_data();
          float* p1 = syn1neg ? syn1neg->mutable_data() : nullptr;
          float* ph = syn1 ? syn1->mutable_data() : nullptr;
          const int64_t n_sentences = offsets.shape(0) - 1, V = syn0.shape(0);
          const int64_t parts = seeds.shape(0);
          double loss = 0;
          int64_t trained;
          {
            py::gil_scoped_release nogil;
            trained = w2v_train(p, pi, po, n_sentences, pk, pc, V, alpha0, alpha1, ps, parts, p0,
                                p1, t, ph, compute_loss ? &loss : nullptr);
          }
          return py::make_tuple(trained, loss);
        });

  m.def("huffman_tree", [](const Arr<int64_t>& counts) {
    std::vector<int64_t> offsets;
    std::vector<int32_t> points;
    std::vector<uint8_t> codes;
    const int64_t V = counts.shape(0);
    {
      py::gil_scoped_release nogil;
      huffman_tree(counts.data(), V, offsets, points, codes);
    }
    for (int64_t w = 0; w < V; ++w)
      if (offsets[w + 1] - offsets[w] > Tree::kMaxCode)
        throw py::value_error("the Huffman tree is deeper than 40 levels (word2vec.c's limit): "
                              "the counts are too skewed for hierarchical softmax");
    return py::make_tuple(py::array_t<int64_t>(offsets.size(), offsets.data()),
                          py::array_t<int32_t>(points.size(), points.data()),
                          py::array_t<uint8_t>(codes.size(), codes.data()));
  });

  const auto view = [](const py::bytes& text) {
    char* data;
    Py_ssize_t n;
    PyBytes_AsStringAndSize(text.ptr(), &data, &n);
    return std::string_view(data, n);
  };
  py::class_<Vocabulary>(m, "Vocabulary")
      .def(py::init<>())
      .def(py::init<const std::vector<std::string>&>(), py::arg("words"))
      .def("count",
           [view](Vocabulary& v, const py::bytes& text, int64_t max_size) {
             const std::string_view s = view(text);
             py::gil_scoped_release nogil;
             v.count(s, max_size);
           },
           py::arg("text"), py::arg("max_size") = 0)
      .def("encode",
           [view](const Vocabulary& v, const py::bytes& text, int64_t max_sentence) {
             if (max_sentence < 1) throw py::value_error("max_sentence must be at least 1");
             const std::string_view s = view(text);
             std::vector<int32_t> ids;
             std::vector<int64_t> offsets;
             {
               py::gil_scoped_release nogil;
               v.encode(s, max_sentence, ids, offsets);
             }
             return py::make_tuple(py::array_t<int32_t>(ids.size(), ids.data()),
                                   py::array_t<int64_t>(offsets.size(), offsets.data()));
           },
           py::arg("text"), py::arg("max_sentence"))
      .def("__len__", &Vocabulary::size)
      .def_property_readonly("words",
                             [](const Vocabulary& v) {
                               py::list out;
                               for (const std::string& w : v.words())
                                 out.append(py::reinterpret_steal<py::str>(
                                     PyUnicode_DecodeUTF8(w.data(), w.size(), "replace")));
                               return out;
                             })
      .def_property_readonly("counts",
                             [](const Vocabulary& v) {
                               return py::array_t<int64_t>(v.counts().size(), v.counts().data());
                             })
      .def_property_readonly("total", &Vocabulary::total);
}

}  // namespace seqkern::bind
