"""The benchmark scripts as a user runs them: each in a process of its own, at its smallest sizes,
prints its table and writes its JSON, whose ratios are finite; a bad argument is refused with the
usage line before any work. Their timings are not checked here: speed lives in benchmarks/ and
benchmarks/RESULTS.md."""
import json
import math
import os
import random
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks")


def run(script, args, tmp_path):
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), *args, "--json",
                           str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout, json.loads(out.read_text())


def ratios(tree):
    """Every number stored under a key holding "ratio" or "_vs_" (bf16.py's), anywhere in a
    JSON tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if ("ratio" in key or "_vs_" in key) and isinstance(value, (int, float)):
                yield key, value
            else:
                yield from ratios(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from ratios(value)


def check_ratios(result, least):
    found = list(ratios(result))
    assert len(found) >= least, found
    for key, value in found:
        assert math.isfinite(value) and value > 0, (key, value)


def installed(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


CASES = [
    # script, arguments, the peer it needs (None: rnn.py, whose torch columns are empty without
    # torch), the JSON's list of rows, how many ratios it holds at least
    ("rnn.py", ["--cells", "lstm,gru", "--shapes", "3,2,8,8", "1,1,5,9", "--calls", "2",
                "--turns", "1", "--repeat", "1", "--roofline-shape", "4,3,8,16", "--no-layers"],
     None, "rows", 8),
    ("rnn.py", ["--cells", "rnn", "--shapes", "2,3,4,5", "--calls", "2", "--turns", "1"], None,
     "layer_rows", 12),
    ("bf16.py", ["--shapes", "3,1,8,8", "--calls", "2", "--turns", "1"], "torch", "rows", 4),
    ("bf16.py", ["--cells", "linear", "--shapes", "2,1,8,5", "--calls", "2", "--turns", "1"],
     "torch", "rows", 2),
    ("ctc.py", ["--repeat", "1"], "torch", "rows", 3),
    ("generate.py", ["--shapes", "50,8,8,1", "40,6,8,2", "--length", "3", "--calls", "2",
                     "--turns", "1"], "torch", "rows", 4),
    ("attention.py", ["--repeat", "1", "--no-epoch"], "torch", "rows", 4),
    ("torch_small.py", ["--rounds", "1", "--calls", "1"], "torch", "rows", 10),
    ("word2vec_io.py", ["--shapes", "50,4", "--rounds", "1"], "gensim", "rows", 4),
    ("word2vec_queries.py", ["--vocab", "50", "--dim", "4", "--sentences", "10", "--length", "5",
                             "--pairs", "3", "--doc-lengths", "3", "2", "--calls", "2",
                             "--turns", "1"], "gensim", "rows", 4),
]


@pytest.mark.parametrize("script, args, peer, rows, least", [
    pytest.param(*case, id=f"{case[0]}-{i}", marks=pytest.mark.skipif(
        case[2] is not None and not installed(case[2]), reason=f"{case[2]} is not installed"))
    for i, case in enumerate(CASES)])
def test_a_benchmark_runs_and_writes_its_table(script, args, peer, rows, least, tmp_path):
    _, result = run(script, args, tmp_path)
    assert result[rows], result
    check_ratios(result, least if peer or installed("torch") else 0)


@pytest.mark.skipif(not installed("gensim"), reason="gensim is not installed")
def test_the_word2vec_benchmark_on_a_corpus_without_the_tests_words(tmp_path):
    """A user's own corpus may hold none of wordsim353's, SimLex-999's or the analogies' words (a
    small corpus, another language): their scores read n/a instead of ending the run."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(200)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words) for _ in range(12))
                                for _ in range(1500)))
    stdout, result = run("word2vec.py", ["--corpus", str(corpus), "--modes", "sg", "--seeds",
                                         "1"], tmp_path)
    assert "n/a" in stdout
    for row in result["rows"]:
        assert row["wordsim353"] is None and row["simlex999"] is None and row["analogy"] is None
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0


@pytest.mark.parametrize("script, args, message", [
    ("rnn.py", ["--calls", "1"], "--calls: expected an integer >= 2"),
    ("rnn.py", ["--shapes", "3,2,8"], "--shapes: expected T,B,I,H"),
    ("rnn.py", ["--cells", "lstm,lsmt"], "--cells: expected some of lstm, gru, rnn"),
    ("rnn.py", ["--json", "no/such/folder/out.json"], "does not exist"),
    ("rnn.py", ["--turns", "0"], "--turns: expected a positive integer"),
    ("word2vec_io.py", ["--shapes", "50,x"], "--shapes: expected V,dim"),
    ("word2vec.py", ["--modes", "sg,skipgram"], "--modes: expected some of"),
    ("packed_gemm.py", ["--shapes", "0,8,8"], "--shapes: expected M,K,N"),
    ("lm.py", ["--steps", "-1"], "--steps: expected a positive integer"),
])
def test_a_bad_argument_is_refused_before_any_work(script, args, message, tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""
