"""One file of named arrays and a JSON header: how KeyedVectors and Word2Vec save themselves.

    magic b"SEQKERN\\0", header length (uint64 little-endian), header (UTF-8 JSON), then each
    array's raw bytes at an offset that is a multiple of 64

The header holds {"format", "kind", "meta", "arrays": {name: {"dtype", "shape", "offset"}}}.
The arrays sit at aligned offsets so that load(..., mmap="r") maps them read-only instead of
reading them: processes that map the same file share one copy of the vectors in memory. The file
is written to a temporary name beside the target and renamed, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from seqkern.checkpoint import check_target

MAGIC = b"SEQKERN\0"
FORMAT = 1
ALIGN = 64


def _aligned(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def save(path, kind, meta, arrays):
    """Writes `arrays` (name -> array) and `meta` (JSON-serializable) to exactly `path`."""
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    entries, offset = {}, 0
    for name, a in arrays.items():
        entries[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset}
        offset = _aligned(offset + a.nbytes)
    header = json.dumps({"format": FORMAT, "kind": kind, "meta": meta, "arrays": entries},
                        ensure_ascii=False).encode(errors="surrogateescape")
    start = _aligned(len(MAGIC) + 8 + len(header))
    check_target(path)  # so that an error names path, not the temporary file or the rename
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            for name, a in arrays.items():
                f.seek(start + entries[name]["offset"])
                f.write(memoryview(a).cast("B") if a.nbytes else b"")
            f.truncate(start + offset)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path, kind, mmap=None):
    """(meta, arrays) from a file that save wrote with this `kind`. mmap: None reads the arrays
    into memory; "r" maps them read-only; "r+" and "c" as numpy.memmap's modes."""
    if mmap not in (None, "r", "r+", "c"):
        raise ValueError(f"mmap: expected None, 'r', 'r+' or 'c', got {mmap!r}")
    with open(path, "rb") as f:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            if magic[:1] == b"\x80":
                raise ValueError(f"{path}: a pickle (as gensim saves), which seqkern does not load: "
                                 "in gensim, write it with wv.save_word2vec_format(...) and load "
                                 "that with KeyedVectors.load_word2vec_format")
            raise ValueError(f"{path}: not a file saved by seqkern (it starts {magic!r})")
        size = os.fstat(f.fileno()).st_size
        length = f.read(8)
        n = struct.unpack("<Q", length)[0] if len(length) == 8 else size
        try:
            if len(MAGIC) + 8 + n > size:
                raise ValueError("the header runs past the end")
            header = json.loads(f.read(n).decode(errors="surrogateescape"))
            if not isinstance(header, dict):
                raise ValueError("the header is not a JSON object")
        except ValueError as e:  # UnicodeDecodeError and JSONDecodeError included
            raise ValueError(f"{path}: damaged or cut short ({e})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: format {header.get('format')}, this seqkern reads format {FORMAT}")
    if header["kind"] != kind:
        raise ValueError(f"{path}: holds a {header['kind']}, not a {kind}")
    start = _aligned(len(MAGIC) + 8 + n)
    arrays = {}
    for name, e in header["arrays"].items():
        dtype, shape = np.dtype(e["dtype"]), tuple(e["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if start + e["offset"] + count * dtype.itemsize > size:
            raise ValueError(f"{path}: cut short: its array {name!r} ends past the file's "
                             f"{size:,} bytes")
        if mmap and count:
            arrays[name] = np.memmap(path, dtype=dtype, mode=mmap, offset=start + e["offset"], shape=shape)
        else:
            arrays[name] = np.fromfile(path, dtype=dtype, count=count,
                                       offset=start + e["offset"]).reshape(shape)
    return header["meta"], arrays
