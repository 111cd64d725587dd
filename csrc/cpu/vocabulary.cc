// Vocabulary: an open-addressing hash table over the words (FNV-1a), scanned and encoded straight
// from the bytes of the text, so that no Python object is made per word.
#include "seqkern/vocabulary.h"

#include "seqkern/threads.h"

namespace seqkern {

namespace {

inline bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

inline uint64_t fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Calls word(w) for each word of text and line_end() after each line: at each newline, and at
// the end of a last line that has none (a text that ends with a newline has no line after it).
template <typename Word, typename LineEnd>
void scan(std::string_view text, Word&& word, LineEnd&& line_end) {
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    while (p < end && is_space(*p) && *p != '\n') ++p;
    if (p == end) break;
    if (*p == '\n') {
      line_end();
      ++p;
      continue;
    }
    const char* start = p;
    while (p < end && !is_space(*p)) ++p;
    word(std::string_view(start, p - start));
  }
  if (!text.empty() && text.back() != '\n') line_end();
}

}  // namespace

Vocabulary::Vocabulary(const std::vector<std::string>& words) {
  size_t capacity = 1024;
  while (capacity < 2 * words.size()) capacity *= 2;
  rehash(capacity);
  for (const std::string& w : words) add(w, fnv1a(w));  // a repeated word is found as its first
}

int32_t Vocabulary::find(std::string_view word, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.tag == tag && words_[s.id] == word) return s.id;
  }
}

int32_t Vocabulary::add(std::string_view word, uint64_t hash) {
  if (2 * (words_.size() + 1) > slots_.size()) rehash(2 * slots_.size());
  const int32_t id = static_cast<int32_t>(words_.size());
  words_.emplace_back(word);
  counts_.push_back(0);
  hashes_.push_back(hash);
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].id >= 0) i = (i + 1) & mask;
  slots_[i] = {static_cast<uint32_t>(hash >> 32), id};
  return id;
}

void Vocabulary::rehash(size_t capacity) {
  slots_.assign(capacity, Slot{0, -1});
  const size_t mask = capacity - 1;
  for (size_t id = 0; id < words_.size(); ++id) {
    size_t i = hashes_[id] & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = {static_cast<uint32_t>(hashes_[id] >> 32), static_cast<int32_t>(id)};
  }
}

void Vocabulary::prune() {
  size_t kept = 0;
  for (size_t id = 0; id < words_.size(); ++id) {
    if (counts_[id] < min_reduce_) continue;  // gensim keeps count >= min_reduce
    if (kept != id) words_[kept] = std::move(words_[id]);  // a self-move would empty it
    counts_[kept] = counts_[id];
    hashes_[kept] = hashes_[id];
    ++kept;
  }
  words_.resize(kept);
  counts_.resize(kept);
  hashes_.resize(kept);
  rehash(slots_.size());
  ++min_reduce_;
}

void Vocabulary::count(std::string_view text, int64_t max_size) {
  scan(
      text,
      [&](std::string_view w) {
        const uint64_t h = fnv1a(w);
        int32_t id = find(w, h);
        if (id < 0) id = add(w, h);
        ++counts_[id];
        ++total_;
      },
      [&] {
        if (max_size > 0 && size() > max_size) prune();
      });
}

int64_t Vocabulary::encode(std::string_view text, int64_t max_sentence, std::vector<int32_t>& ids,
                           std::vector<int64_t>& offsets) const {
  // Pieces end at newlines, so that each holds whole sentences.
  const int64_t n_pieces = get_num_threads();
  std::vector<size_t> cut(n_pieces + 1, text.size());
  cut[0] = 0;
  for (int64_t k = 1; k < n_pieces; ++k) {
    size_t at = std::max(cut[k - 1], text.size() * k / n_pieces);
    while (at < text.size() && text[at] != '\n') ++at;
    cut[k] = std::min(text.size(), at + 1);
  }
  std::vector<std::vector<int32_t>> piece_ids(n_pieces);
  std::vector<std::vector<int64_t>> piece_ends(n_pieces);  // sentence ends within the piece
  std::vector<int64_t> piece_words(n_pieces, 0);            // words read, known or not
  parallel_for(n_pieces, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      std::vector<int32_t>& out = piece_ids[k];
      std::vector<int64_t>& ends = piece_ends[k];
      int64_t start = 0;  // of the current sentence in out
      const auto close = [&] {
        if (static_cast<int64_t>(out.size()) > start) ends.push_back(out.size());
        start = out.size();
      };
      scan(
          text.substr(cut[k], cut[k + 1] - cut[k]),
          [&](std::string_view w) {
            ++piece_words[k];
            const int32_t id = find(w, fnv1a(w));
            if (id < 0) return;
            out.push_back(id);
            if (static_cast<int64_t>(out.size()) - start == max_sentence) close();
          },
          close);
    }
  });
  ids.clear();
  offsets.assign(1, 0);
  int64_t words = 0;
  for (int64_t k = 0; k < n_pieces; ++k) {
    const int64_t base = ids.size();
    ids.insert(ids.end(), piece_ids[k].begin(), piece_ids[k].end());
    for (int64_t e : piece_ends[k]) offsets.push_back(base + e);
    words += piece_words[k];
  }
  return words;
}

}  // namespace seqkern
