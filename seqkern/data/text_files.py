"""Whether a file is plain text before it is read as such: a compressed file, or UTF-16, read as
UTF-8 bytes trains on noise without an error (word2vec's vocabulary becomes the compressed
bytes), so the commands and Word2Vec(corpus_file=...) refuse them with a message."""
from __future__ import annotations

# (leading bytes, the compression they mark); bzip2's: "BZh", the block size 1-9, then the
# first block's magic number, so that no text beginning "BZh" is taken for one
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"),
               (b"\x28\xb5\x2f\xfd", "zstd"))


def compression(head):
    """The compression whose header the bytes `head` (a file's first 10 or more) start with, or
    None."""
    head = bytes(head[:10])
    for magic, kind in _COMPRESSED:
        if head.startswith(magic):
            return kind
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] == b"1AY&SY":
        return "bzip2"
    return None


def not_plain_text(path, instead=None):
    """Why the file at `path` is no text to read as UTF-8 bytes (a message naming it), or None.
    instead: what a compressed file could be given to, besides decompressing it."""
    with open(path, "rb") as f:
        head = f.read(10)
    kind = compression(head)
    if kind:
        also = f", or {instead}" if instead else ""
        return f"{path}: compressed ({kind}): decompress it first{also}"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return f"{path}: starts with a UTF-16 byte-order mark: convert it to UTF-8"
    return None
