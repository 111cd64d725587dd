// _core.w2v_train and w2v_score: arrays to pointers, GIL released, kernel called. _core.emd: the
// earth mover's distance of KeyedVectors.wmdistance. _core.Vocabulary: the word
// scan and encoding of plain text (bytes in, numpy arrays out). _core.write_vectors and
// parse_vectors: the bodies of word2vec.c's vector files.
#include "seqkern/word2vec.h"

#include "seqkern/emd.h"
#include "seqkern/vocabulary.h"
#include "seqkern/word2vec_format.h"

#include <cerrno>
#include <cmath>
#include <tuple>

#include "arrays.h"

namespace seqkern::bind {

namespace {

using TreeArrays = std::tuple<Arr<int64_t>, Arr<int32_t>, Arr<uint8_t>>;

// Hierarchical softmax's arguments: the tree of V words (offsets, points, codes) and syn1, a
// row per inner node, dim wide.
void check_tree(const TreeArrays& tree, const Arr<float>* syn1, int64_t V, int64_t dim) {
  const auto& [offsets, points, codes] = tree;
  if (offsets.ndim() != 1 || offsets.shape(0) != V + 1 ||
      points.shape(0) != offsets.data()[V] || codes.shape(0) != offsets.data()[V])
    throw py::value_error("tree: expected the Huffman tree of syn0's words");
  if (!syn1 || syn1->ndim() != 2 || syn1->shape(0) < V - 1 || syn1->shape(1) != dim)
    throw py::value_error("syn1: expected a row per inner node of the tree, as wide as syn0");
}

// The total of masses that must be finite and >= 0 (emd's a and b).
double total_mass(const Arr<double>& w, const char* message) {
  double sum = 0;
  for (int64_t i = 0; i < w.shape(0); ++i) {
    if (!(w.data()[i] >= 0) || !std::isfinite(w.data()[i])) throw py::value_error(message);
    sum += w.data()[i];
  }
  return sum;
}

}  // namespace

void bind_word2vec(py::module_& m) {
  m.def("w2v_train",
        [](int64_t window, int64_t negative, bool sg, bool cbow_mean, bool shrink_windows,
           const Arr<int32_t>& ids, const Arr<int64_t>& offsets, const Arr<float>& keep,
           const Arr<uint32_t>& cum_table, float alpha0, float alpha1, Arr<uint64_t>& seeds,
           Arr<float>& syn0, std::optional<Arr<float>> syn1neg,
           std::optional<TreeArrays> tree,
           std::optional<Arr<float>> syn1, bool compute_loss,
           std::optional<Arr<int64_t>> bounds, std::optional<Arr<float>> lockf) {
          if (syn0.ndim() != 2) throw py::value_error("syn0: expected a 2-D array (words, dim)");
          const bool hs = tree.has_value();
          W2vParams p{syn0.shape(1), window, negative, sg, cbow_mean, hs, shrink_windows};
          if (lockf) {
            if (lockf->ndim() != 1 || lockf->shape(0) < 1)
              throw py::value_error("lockf: expected a 1-D array of at least one factor");
            p.lockf = lockf->data();
            p.n_lockf = lockf->shape(0);
          }
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
          const int64_t* pb = bounds ? bounds->data() : nullptr;
          // The model's cum_table, keep and syn1neg are public attributes: a table that does not
          // rise to a positive total would divide by zero at the first noise draw.
          if (negative > 0) {
            bool ok = cum_table.ndim() == 1 && cum_table.shape(0) == V && V > 0 && pc[V - 1] > 0;
            for (int64_t w = 1; ok && w < V; ++w) ok = pc[w - 1] <= pc[w];
            if (!ok)
              throw py::value_error("cum_table: expected one nondecreasing entry per word, the "
                                    "last positive");
            if (!syn1neg || syn1neg->ndim() != 2 || syn1neg->shape(0) != V ||
                syn1neg->shape(1) != syn0.shape(1))
              throw py::value_error("syn1neg: expected the shape of syn0");
          }
          if (keep.ndim() != 1 || keep.shape(0) != V)
            throw py::value_error("keep: expected one probability per word");
          if (hs) check_tree(*tree, syn1 ? &*syn1 : nullptr, V, syn0.shape(1));
          if (pb) {  // parts + 1 nondecreasing sentence indices from 0 to n_sentences
            bool ok = bounds->shape(0) == parts + 1 && pb[0] == 0 && pb[parts] == n_sentences;
            for (int64_t q = 0; ok && q < parts; ++q) ok = pb[q] <= pb[q + 1];
            if (!ok)
              throw py::value_error("bounds: expected parts + 1 nondecreasing sentence indices "
                                    "from 0 to the sentence count");
          }
          double loss = 0;
          int64_t trained;
          {
            py::gil_scoped_release nogil;
            trained = w2v_train(p, pi, po, n_sentences, pk, pc, V, alpha0, alpha1, ps, parts, pb,
                                p0, p1, t, ph, compute_loss ? &loss : nullptr);
          }
          return py::make_tuple(trained, loss);
        },
        py::arg("window"), py::arg("negative"), py::arg("sg"), py::arg("cbow_mean"),
        py::arg("shrink_windows"), py::arg("ids"), py::arg("offsets"), py::arg("keep"),
        py::arg("cum_table"), py::arg("alpha0"), py::arg("alpha1"), py::arg("seeds"),
        py::arg("syn0"), py::arg("syn1neg"), py::arg("tree"), py::arg("syn1"),
        py::arg("compute_loss"), py::arg("bounds") = py::none(), py::arg("lockf") = py::none());

  m.def("w2v_score",
        [](int64_t window, bool sg, bool cbow_mean, const Arr<int32_t>& ids,
           const Arr<int64_t>& offsets, const Arr<float>& syn0,
           const TreeArrays& tree, const Arr<float>& syn1) {
          if (syn0.ndim() != 2) throw py::value_error("syn0: expected a 2-D array (words, dim)");
          if (window < 1) throw py::value_error("window: expected a positive integer");
          const int64_t V = syn0.shape(0), n_sentences = offsets.shape(0) - 1;
          check_tree(tree, &syn1, V, syn0.shape(1));
          if (offsets.ndim() != 1 || n_sentences < 0 || offsets.data()[0] != 0 ||
              offsets.data()[n_sentences] != ids.shape(0))
            throw py::value_error("offsets: expected sentence starts from 0 to len(ids)");
          for (int64_t s = 0; s < n_sentences; ++s)
            if (offsets.data()[s] > offsets.data()[s + 1])
              throw py::value_error("offsets: expected nondecreasing sentence starts");
          for (int64_t i = 0; i < ids.shape(0); ++i)
            if (ids.data()[i] < 0 || ids.data()[i] >= V)
              throw py::value_error("ids: expected word indices below the vocabulary size");
          W2vParams p{syn0.shape(1), window, 0, sg, cbow_mean, true, false};
          const Tree t{std::get<0>(tree).data(), std::get<1>(tree).data(),
                       std::get<2>(tree).data()};
          py::array_t<float> scores(n_sentences);
          float* out = scores.mutable_data();
          {
            py::gil_scoped_release nogil;
            w2v_score(p, ids.data(), offsets.data(), n_sentences, syn0.data(), t, syn1.data(),
                      out);
          }
          return scores;
        },
        py::arg("window"), py::arg("sg"), py::arg("cbow_mean"), py::arg("ids"),
        py::arg("offsets"), py::arg("syn0"), py::arg("tree"), py::arg("syn1"));

  // -> the cost, or (the cost, the plan (n, m)) with return_flow
  m.def("emd",
        [](const Arr<double>& a, const Arr<double>& b, const Arr<double>& C, bool return_flow)
            -> py::object {
          const int64_t n = a.ndim() == 1 ? a.shape(0) : -1, m = b.ndim() == 1 ? b.shape(0) : -1;
          if (n < 1 || m < 1) throw py::value_error("a, b: expected nonempty 1-D masses");
          if (C.ndim() != 2 || C.shape(0) != n || C.shape(1) != m)
            throw py::value_error("C: expected a (len(a), len(b)) cost matrix");
          const double sum_a = total_mass(a, "a: expected finite masses >= 0");
          const double sum_b = total_mass(b, "b: expected finite masses >= 0");
          if (std::abs(sum_a - sum_b) > 1e-9 * std::max(sum_a, sum_b))
            throw py::value_error("a, b: expected equal total masses");
          for (int64_t k = 0; k < n * m; ++k)
            if (!std::isfinite(C.data()[k])) throw py::value_error("C: expected finite costs");
          py::array_t<double> flow;
          double* pf = nullptr;
          if (return_flow) {
            flow = py::array_t<double>({n, m});
            pf = flow.mutable_data();
          }
          double cost;
          {
            py::gil_scoped_release nogil;
            cost = emd(a.data(), n, b.data(), m, C.data(), pf);
          }
          if (return_flow) return py::make_tuple(cost, flow);
          return py::float_(cost);
        },
        py::arg("a"), py::arg("b"), py::arg("C"), py::arg("return_flow") = false);

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
  m.def("unreadable_key", [view](const std::vector<py::bytes>& keys) {
    std::vector<std::string_view> k;
    k.reserve(keys.size());
    for (const py::bytes& b : keys) k.push_back(view(b));
    return unreadable_key(k);
  }, "the first key a word2vec file cannot hold (a space or newline in it), or -1");
  m.def("write_vectors",
        [view](int fd, const py::bytes& header, const std::vector<py::bytes>& keys,
               const Arr<float>& vectors, const Arr<int64_t>& order, bool binary) {
          std::vector<std::string_view> k;
          k.reserve(keys.size());
          for (const py::bytes& b : keys) k.push_back(view(b));
          const float* v = vectors.data();
          const int64_t* o = order.data();
          const int64_t dim = vectors.shape(1), n = order.shape(0);
          const std::string_view h = view(header);
          int err;
          {
            py::gil_scoped_release nogil;
            err = write_vectors(fd, h, k, v, dim, o, n, binary);
          }
          if (err) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            throw py::error_already_set();
          }
        });
  // -> (vectors (n, dim), keys (str, decoded as bytes.decode(encoding, errors) would), bad
  // entry or -1, its fields). The keys are made here: 300,000 slices and decodes in Python took
  // longer than parsing the whole file.
  m.def("parse_vectors", [](const py::buffer& body, int64_t offset, int64_t n, int64_t dim,
                            bool binary, const std::string& encoding, const std::string& errors) {
    const py::buffer_info info = body.request();  // bytes, or a file's read-only mmap
    const std::string_view b =
        std::string_view(static_cast<const char*>(info.ptr), info.size * info.itemsize)
            .substr(offset);
    py::array_t<float> vectors({n, dim});
    std::vector<int64_t> spans(2 * n);
    ParseError error;
    {
      py::gil_scoped_release nogil;
      parse_vectors(b, n, dim, binary, vectors.mutable_data(), spans.data(), error);
    }
    py::list keys(error.entry < 0 ? n : 0);
    for (int64_t i = 0; i < static_cast<int64_t>(keys.size()); ++i) {
      PyObject* key = PyUnicode_Decode(b.data() + spans[2 * i], spans[2 * i + 1] - spans[2 * i],
                                       encoding.c_str(), errors.c_str());
      if (!key) throw py::error_already_set();
      PyList_SET_ITEM(keys.ptr(), i, key);
    }
    return py::make_tuple(vectors, keys, error.entry, error.fields);
  });

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
             int64_t words;
             {
               py::gil_scoped_release nogil;
               words = v.encode(s, max_sentence, ids, offsets);
             }
             return py::make_tuple(py::array_t<int32_t>(ids.size(), ids.data()),
                                   py::array_t<int64_t>(offsets.size(), offsets.data()), words);
           },
           py::arg("text"), py::arg("max_sentence"))
      .def("__len__", &Vocabulary::size)
      .def_property_readonly("words",
                             [](const Vocabulary& v) {
                               py::list out;
                               for (const std::string& w : v.words())
                                 out.append(py::reinterpret_steal<py::str>(
                                     PyUnicode_DecodeUTF8(w.data(), w.size(), "surrogateescape")));
                               return out;
                             })
      .def_property_readonly("counts",
                             [](const Vocabulary& v) {
                               return py::array_t<int64_t>(v.counts().size(), v.counts().data());
                             })
      .def_property_readonly("total", &Vocabulary::total);
}

}  // namespace seqkern::bind
