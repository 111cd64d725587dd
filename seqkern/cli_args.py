"""argparse types of the `seqkern` commands: a bad number or path fails at once, with the
command's usage line, before any training starts (an hour of word2vec should not end at an
--output whose folder does not exist)."""
from __future__ import annotations

import argparse
import math
import os

from seqkern.data.text_files import not_plain_text


def _number(kind, text, ok, expected):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive_int(text):
    return _number(int, text, lambda v: v >= 1, "a positive integer")


def non_negative_int(text):
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def switch(text):
    """word2vec.c's on/off options (-cbow 1, -binary 0)."""
    return _number(int, text, lambda v: v in (0, 1), "0 or 1")


def steady_calls(text):
    """Calls back to back in a benchmark's turn: the steady state is the median of the calls after
    each turn's first, so one call a turn leaves nothing to time."""
    return _number(int, text, lambda v: v >= 2, "an integer >= 2 (the first call of a turn is "
                                                "not counted in the steady state)")


def sizes(names):
    """The argparse type of a comma-separated shape, one positive integer for each of the
    comma-separated `names` ("T,B,I,H" takes "50,1,256,256" and gives (50, 1, 256, 256))."""
    count = len(names.split(","))

    def parse(text):
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != count or min(values) < 1:
            raise argparse.ArgumentTypeError(f"expected {names}, {count} positive integers "
                                             f"separated by commas, got {text!r}")
        return values
    return parse


def names_of(choices):
    """The argparse type of a comma-separated list of some of `choices` ("lstm,gru")."""
    def parse(text):
        names = text.split(",")
        wrong = [n for n in names if n not in choices]
        if wrong:
            raise argparse.ArgumentTypeError(f"expected some of {', '.join(choices)} separated "
                                             f"by commas, got {', '.join(map(repr, wrong))}")
        return names
    return parse


def positive_float(text):
    return _number(float, text, lambda v: v > 0, "a positive number")


def positive_finite(text):
    """A learning rate or a factor on one: inf or nan would train a model of NaNs to the end."""
    return _number(float, text, lambda v: 0 < v < math.inf, "a positive finite number")


def non_negative_finite(text):
    return _number(float, text, lambda v: 0 <= v < math.inf, "a finite number >= 0")


def vocabulary_size(text):
    return _number(int, text, lambda v: v >= 3, "an integer >= 3 (two specials and a token)")


def fraction(text):
    """A share of the data, strictly between 0 and 1 (both parts non-empty)."""
    return _number(float, text, lambda v: 0 < v < 1, "a fraction between 0 and 1")


def probability(text):
    """A dropout rate: 0 (none) up to, not including, 1."""
    return _number(float, text, lambda v: 0 <= v < 1, "a probability in [0, 1)")


def input_file(text):
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


def text_file(text):
    """An input_file of UTF-8 text: a compressed or UTF-16 file is refused at once (its bytes
    would train on noise)."""
    input_file(text)
    problem = not_plain_text(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def output_file(text):
    if os.path.isdir(text):  # found after the training otherwise, when the file is written
        raise argparse.ArgumentTypeError(f"{text}: is a folder; name a file in it")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} is not writable")
    return text


def distinct_files(args, inputs, outputs):
    """Refuses an output that names an input or another output (flags given by their dest
    names): a slip such as `--text corpus.txt --save corpus.txt` wrote the checkpoint over the
    text it had trained on."""
    seen = {}
    for dest in (*inputs, *outputs):
        path = getattr(args, dest)
        if path is None:
            continue
        flag = "--" + dest.replace("_", "-")
        key = os.path.realpath(path)
        if key in seen and dest in outputs:
            raise ValueError(f"{flag} {path}: the same file as {seen[key]}, which it would be "
                             "written over")
        seen.setdefault(key, flag)
