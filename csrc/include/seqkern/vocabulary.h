// The words of plain text, for word2vec: the vocabulary scan (counts in first-seen order, with
// gensim's max_vocab_size pruning) and the text-to-ids encoding of each training chunk. A word is
// a run of bytes between ASCII whitespace (word2vec.c's rule); a newline ends a sentence.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace seqkern {

class Vocabulary {
 public:
  Vocabulary() { rehash(1024); }
  explicit Vocabulary(const std::vector<std::string>& words);  // ids are positions; counts 0

  // Counts the words of text. max_size > 0: after a line leaves more than max_size distinct
  // words, drops those counted fewer than min_reduce times and raises min_reduce, from 1
  // (gensim's pruning, once a sentence, which can drop words that would have reached
  // min_count later).
  void count(std::string_view text, int64_t max_size);

  // The ids of the known words of text (unknown ones are skipped), one sentence per line, cut
  // every max_sentence words; sentences left empty are dropped. offsets: each sentence's start
  // in ids, then ids' size. Pieces of the text run on the pool at once.
  // Returns the number of words read, unknown ones included.
  int64_t encode(std::string_view text, int64_t max_sentence, std::vector<int32_t>& ids,
                 std::vector<int64_t>& offsets) const;

  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  const std::vector<std::string>& words() const { return words_; }
  const std::vector<int64_t>& counts() const { return counts_; }
  int64_t total() const { return total_; }  // words counted, pruned ones included

 private:
  struct Slot {
    uint32_t tag;  // high half of the word's hash
    int32_t id;    // -1: empty
  };
  int32_t find(std::string_view word, uint64_t hash) const;  // -1 when absent
  int32_t add(std::string_view word, uint64_t hash);
  void rehash(size_t capacity);
  void prune();

  std::vector<std::string> words_;
  std::vector<int64_t> counts_;
  std::vector<uint64_t> hashes_;
  std::vector<Slot> slots_;  // open addressing, linear probing, a power of two at most half full
  int64_t total_ = 0, min_reduce_ = 1;
};

}  // namespace seqkern
