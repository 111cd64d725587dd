"""Text that needs no download: the Python standard library's own source, for the demo."""
from __future__ import annotations

import os
import sysconfig


def stdlib_source(max_chars=1_500_000):
    """Up to max_chars of the standard library's .py files, read in sorted path order (tests,
    site-packages and files that are not UTF-8 left out), each file whole, concatenated.
    Returns (text, number of files)."""
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "test", "tests",
                                                       "idle_test", "__pycache__"))
        paths += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    parts, total = [], 0
    for path in sorted(paths):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        if total + len(text) > max_chars:
            if parts:
                continue
            text = text[:max_chars]
        parts.append(text)
        total += len(text)
    if not parts:
        raise RuntimeError(f"no Python source found under {root}")
    return "".join(parts), len(parts)


def split(ids, val_fraction=0.1):
    """(train, validation): the last val_fraction of a token stream held out."""
    cut = int(len(ids) * (1.0 - val_fraction))
    return ids[:cut], ids[cut:]
