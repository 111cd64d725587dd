// word2vec: skip-gram and CBOW with negative sampling and/or hierarchical softmax, the updates
// of word2vec.c / gensim.
#pragma once
#include <cstdint>
#include <vector>

namespace seqkern {

struct W2vParams {
  int64_t dim;          // vector size
  int64_t window;       // largest distance between a word and its context
  int64_t negative;     // noise words per positive pair (0: none)
  bool sg;              // skip-gram (else CBOW)
  bool cbow_mean;       // CBOW: mean of the context vectors (else their sum)
  bool hs;              // hierarchical softmax over the Huffman tree (Tree below)
  bool shrink_windows;  // each window shrunk by a random amount in [0, window) (else full)
  // gensim's vectors_lockf: word w's input-vector updates are scaled by lockf[w % n_lockf]
  // (0 freezes a word's vector). Null: every factor 1.
  const float* lockf = nullptr;
  int64_t n_lockf = 0;
};

// word2vec.c's Huffman tree over the vocabulary: for word w, the inner nodes on the path from
// the root, points[offsets[w] .. offsets[w + 1]) (rows of syn1, V - 2 the root), and the branch
// taken at each, codes[...] (0 or 1). At most kMaxCode nodes per path.
struct Tree {
  static constexpr int64_t kMaxCode = 40;
  const int64_t* offsets;  // (V + 1)
  const int32_t* points;   // (offsets[V])
  const uint8_t* codes;    // (offsets[V])
};

// Builds the tree of word2vec.c's CreateBinaryTree from word counts (any order; ties between
// equal counts are broken by index). offsets (V + 1), points, codes as in Tree.
void huffman_tree(const int64_t* counts, int64_t V, std::vector<int64_t>& offsets,
                  std::vector<int32_t>& points, std::vector<uint8_t>& codes);

// Noise words for the kernels: gensim's cumulative table (a draw r in [0, cum[V - 1]) picks the
// first word whose entry is above r) and, so that the bisection starts close, where each of 2^16
// equal slices of the draw range begins: slice b holds draws in [b << 15, (b + 1) << 15).
struct NoiseTable {
  static constexpr int kShift = 15;
  const uint32_t* cum;          // (V)
  int64_t V;
  std::vector<uint32_t> start;  // (2^16 + 1): start[b] = the word a draw of b << 15 picks
  NoiseTable(const uint32_t* cum, int64_t V);
};

// Trains on the sentences of one chunk, Hogwild: `parts` runs of consecutive sentences, each
// with its own random stream, run at once on the pool and update the vectors without locks
// (one after the other, in order, for a chunk of fewer than 10,000 words a part).
// Part q is sentences [bounds[q], bounds[q + 1]) (bounds: parts + 1 nondecreasing indices from
// 0 to n_sentences), or with bounds null the q-th of `parts` equal runs.
// Negative sampling updates syn1neg (when negative > 0), hierarchical softmax syn1 (when hs).
//   ids (offsets[n_sentences])  vocabulary indices;  offsets (n_sentences + 1) sentence starts
//   keep (V)       probability of keeping each occurrence (word2vec.c subsampling)
//   cum_table (V)  cumulative noise distribution (unigram^ns_exponent), last entry the total
//   alpha0/alpha1  learning rate at the chunk's first word and past its last (linear between,
//                  by position in the chunk before subsampling)
//   seeds (parts)  random states (word2vec.c's LCG); advanced in place for the next chunk
//   syn0, syn1neg (V, dim)  input and output vectors, updated in place (syn1neg null: negative 0)
//   tree, syn1 (V - 1, dim) hierarchical softmax's tree and inner-node vectors (when hs)
//   loss           if not null: adds the training loss, sum over every (input, output) score f
//                  whose |f| < 6 of -log sigmoid(f) (label 1) or -log sigmoid(-f) (label 0)
// Returns the number of words trained (kept by subsampling).
int64_t w2v_train(const W2vParams& p, const int32_t* ids, const int64_t* offsets,
                  int64_t n_sentences, const float* keep, const uint32_t* cum_table, int64_t V,
                  float alpha0, float alpha1, uint64_t* seeds, int64_t parts,
                  const int64_t* bounds, float* syn0, float* syn1neg, const Tree& tree,
                  float* syn1, double* loss);

// gensim's Word2Vec.score: the log-probability of each of n_sentences sentences (ids and
// offsets as for w2v_train, no subsampling) under a hierarchical-softmax model, into
// scores[n_sentences]. Skip-gram: for each word and each other word of its full window, the
// probability of the word's path in the tree given the other's input vector; CBOW: of the
// word's path given the mean (cbow_mean) or sum of its window's input vectors. Each node's
// log sigmoid(+-f) is gensim's table lookup, scores with |f| >= 6 left out. Read-only.
void w2v_score(const W2vParams& p, const int32_t* ids, const int64_t* offsets,
               int64_t n_sentences, const float* syn0, const Tree& tree, const float* syn1,
               float* scores);

}  // namespace seqkern
