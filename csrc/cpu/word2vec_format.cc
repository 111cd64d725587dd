// word2vec.c's vector files (seqkern/word2vec_format.h). Text values go through std::to_chars
// and std::from_chars (shortest round trip, no locale), pieces of rows on the pool.
#include "seqkern/word2vec_format.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "seqkern/threads.h"

namespace seqkern {

namespace {

// Rows per piece of work: enough that a piece outweighs its call; a batch of pieces is formatted
// on the pool, then written, into buffers reused from batch to batch (fresh memory for a whole
// file's text cost more in page faults than the formatting itself).
constexpr int64_t kRowsPerPiece = 256;
constexpr int64_t kPiecesPerBatch = 16;

void format_row(std::string& out, std::string_view key, const float* v, int64_t dim,
                bool binary) {
  out.append(key);
  out.push_back(' ');
  if (binary) {
    out.append(reinterpret_cast<const char*>(v), dim * sizeof(float));  // x86 is little-endian
    return;
  }
  char buf[32];
  for (int64_t k = 0; k < dim; ++k) {
    if (k) out.push_back(' ');
    const auto r = std::to_chars(buf, buf + sizeof buf, v[k]);
    out.append(buf, r.ptr);
  }
  out.push_back('\n');
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// One text line [p, end) without its newline: its key span and dim values (returns 0), or the
// number of fields it has when that is not dim + 1, or -2 when a value is not a number.
int64_t parse_line(const char* base, const char* p, const char* end, int64_t dim, float* v,
                   int64_t* span) {
  while (end > p && is_space(end[-1])) --end;  // as Python's rstrip()
  const char* key_end = static_cast<const char*>(std::memchr(p, ' ', end - p));
  if (!key_end) return 1;
  span[0] = p - base;
  span[1] = key_end - base;
  p = key_end + 1;
  int64_t k = 0;
  while (true) {
    const char* field_end = static_cast<const char*>(std::memchr(p, ' ', end - p));
    if (!field_end) field_end = end;
    if (k < dim) {
      const auto r = std::from_chars(p, field_end, v[k]);
      if (r.ec != std::errc() || r.ptr != field_end) return -2;  // not a number
    }
    ++k;
    if (field_end == end) break;
    p = field_end + 1;
  }
  return k == dim ? 0 : k + 1;
}

}  // namespace

int64_t unreadable_key(const std::vector<std::string_view>& keys) {
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string_view k = keys[i];
    if (std::memchr(k.data(), ' ', k.size()) || std::memchr(k.data(), '\n', k.size()))
      return static_cast<int64_t>(i);
  }
  return -1;
}

int write_vectors(int fd, std::string_view header, const std::vector<std::string_view>& keys,
                  const float* vectors, int64_t dim, const int64_t* order, int64_t n,
                  bool binary) {
  for (size_t done = 0; done < header.size();) {
    const ssize_t w = ::write(fd, header.data() + done, header.size() - done);
    if (w < 0 && errno != EINTR) return errno;
    if (w > 0) done += w;
  }
  std::vector<std::string> parts(kPiecesPerBatch);  // reused: their memory stays mapped
  for (int64_t b0 = 0; b0 < n; b0 += kPiecesPerBatch * kRowsPerPiece) {
    const int64_t pieces = std::min(kPiecesPerBatch, (n - b0 + kRowsPerPiece - 1) / kRowsPerPiece);
    parallel_for(pieces, 1, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {
        parts[q].clear();
        const int64_t i0 = b0 + q * kRowsPerPiece, i1 = std::min(n, i0 + kRowsPerPiece);
        for (int64_t i = i0; i < i1; ++i)
          format_row(parts[q], keys[order[i]], vectors + order[i] * dim, dim, binary);
      }
    });
    for (int64_t q = 0; q < pieces; ++q)
      for (size_t done = 0; done < parts[q].size();) {
        const ssize_t w = ::write(fd, parts[q].data() + done, parts[q].size() - done);
        if (w < 0 && errno != EINTR) return errno;
        if (w > 0) done += w;
      }
  }
  return 0;
}

int64_t parse_vectors(std::string_view body, int64_t n, int64_t dim, bool binary, float* vectors,
                      int64_t* key_spans, ParseError& error) {
  const char* base = body.data();
  const char* end = base + body.size();
  if (binary) {  // the entries' places one after the other, then their values on the pool
    std::vector<const char*> values(n);
    const char* p = base;
    for (int64_t i = 0; i < n; ++i) {
      while (p < end && *p == '\n') ++p;
      const char* key_end = static_cast<const char*>(std::memchr(p, ' ', end - p));
      if (!key_end || end - (key_end + 1) < dim * 4) {
        error = {i, -1};
        return p - base;
      }
      if (std::memchr(p, '\n', key_end - p)) {  // no writer puts one there: a text file?
        error = {i, -3};
        return p - base;
      }
      key_spans[2 * i] = p - base;
      key_spans[2 * i + 1] = key_end - base;
      values[i] = key_end + 1;
      p = key_end + 1 + dim * 4;
    }
    parallel_for(n, kRowsPerPiece, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(vectors + i * dim, values[i], dim * sizeof(float));  // x86: little-endian
    });
    return p - base;
  }
  // Text: find the n line starts, then parse the lines in pieces on the pool.
  std::vector<const char*> starts(n + 1);
  const char* p = base;
  for (int64_t i = 0; i < n; ++i) {
    if (p >= end) {
      error = {i, -1};
      return p - base;
    }
    starts[i] = p;
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
    p = nl ? nl + 1 : end;
  }
  starts[n] = p;
  std::vector<int64_t> bad(n, 0);
  const int64_t pieces = (n + kRowsPerPiece - 1) / kRowsPerPiece;
  parallel_for(pieces, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t i = q0 * kRowsPerPiece; i < std::min(n, q1 * kRowsPerPiece); ++i) {
      const char* line_end = starts[i + 1];
      if (line_end > starts[i] && line_end[-1] == '\n') --line_end;
      bad[i] = parse_line(base, starts[i], line_end, dim, vectors + i * dim, key_spans + 2 * i);
    }
  });
  for (int64_t i = 0; i < n; ++i)
    if (bad[i]) {
      error = {i, bad[i]};
      return starts[i] - base;
    }
  return p - base;
}

}  // namespace seqkern
