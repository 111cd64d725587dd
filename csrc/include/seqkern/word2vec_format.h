// word2vec.c's vector files, the body after the "count dim" header line: per entry a key, a
// space, then dim values, as text ("v1 v2 ... vd\n", float32 in its shortest round-trip form)
// or binary (dim little-endian float32, no separator). Keys are bytes; decoding them is the
// caller's. Rows are formatted, and text parsed, in pieces on the pool.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace seqkern {

// The first of keys that these files cannot hold, or -1: one with a space or a newline in it
// (a key ends at a space, a text entry at a newline, and binary readers skip newlines before a
// key: "new york" would read back as "new", and its values' bytes as part of the next key).
int64_t unreadable_key(const std::vector<std::string_view>& keys);

// Writes header (the "count dim" line, or empty), then the entries of rows order[0..n) of
// vectors (V, dim) to the file descriptor fd: keys[r] (bytes, prefix already added) and row r
// of vectors. Returns 0, or the errno of the write that failed.
int write_vectors(int fd, std::string_view header, const std::vector<std::string_view>& keys,
                  const float* vectors, int64_t dim, const int64_t* order, int64_t n, bool binary);

// Where parsing stopped early: entry `entry` is bad (fields: the fields its text line has, not
// dim + 1; -1 when the body ends in it or before it; -2 when one of its values is not a
// number; -3 when a binary entry's key holds a newline); entry -1 when all are read.
struct ParseError {
  int64_t entry = -1, fields = 0;
};

// Parses n entries from body into vectors (n, dim) and key spans (n, 2: begin, end offsets into
// body). Text: one entry per line, trailing whitespace dropped, fields separated by single
// spaces (gensim's rule). Binary: newlines before a key are skipped (word2vec.c writes one after
// each vector). Returns the offset just past the last entry read.
int64_t parse_vectors(std::string_view body, int64_t n, int64_t dim, bool binary, float* vectors,
                      int64_t* key_spans, ParseError& error);

}  // namespace seqkern
