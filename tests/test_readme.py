"""The README's Python examples, run as written: each ```python block in turn, in a fresh
namespace and folder, with the arrays and files its text leaves to the reader defined just before
the line that first needs them. A renamed argument or a changed return shows up here before a user
copies it. Two conventions of the text are undone: ", ..." in a call (the other arguments), and
the "# before" line of an import swap (the module it replaces is not installed)."""
import ast
import re
from pathlib import Path

import numpy as np
import pytest

import seqkern as sk
from seqkern._info import cuda_built
from stack_problems import stack_problem

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)

WEIGHT_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh")  # the functional examples' names
WORDS = ("king queen man woman cat dog car road the a of meaning and runs sees with on big small "
         "old new red blue").split()


def write_text(path, lines, seed):
    """`lines` lines of 8-14 words drawn from WORDS, so that every word appears often."""
    rng = np.random.default_rng(seed)
    text = "\n".join(" ".join(rng.choice(WORDS, rng.integers(8, 15))) for _ in range(lines))
    Path(path).write_text(text + "\n")


def recurrent_layers(ns):
    rng = np.random.default_rng(0)
    T, B, I, H = 4, 3, 5, 7
    ns.update(input_size=I, hidden_size=H, I=I, H=H,
              x=rng.standard_normal((T, B, I)).astype(np.float32), lengths=np.array([4, 2, 3]),
              dy=np.ones((T, B, 2 * H), np.float32),
              chunks=[rng.standard_normal((2, B, I)).astype(np.float32) for _ in range(3)])

    class TorchLSTM:  # a torch.nn.LSTM(I, H, 2, bidirectional) stand-in: its state_dict's names
        def state_dict(self):
            return sk.nn.LSTM(I, H, num_layers=2, bidirectional=True, seed=1).state_dict()
    ns["torch_lstm"] = TorchLSTM()


def tbptt_gradient(ns):
    ns["dy"] = np.ones((2, 3, ns["H"]), np.float32)  # one chunk's y


def low_precision(ns):
    x, weights, _ = stack_problem(np.random.default_rng(0), "lstm", 4, 3, 5, 7, D=2)
    ns.update(lstm=sk.nn.LSTM(5, 7), x=x, h0=None, c0=None, weights=weights)
    ns.update(zip(WEIGHT_NAMES, weights[0]))


def torch_model(ns):
    torch = pytest.importorskip("torch")
    ns["model"] = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LSTM(4, 5))


def text_file(ns):
    write_text("train.txt", 300, seed=0)


def language_model_batch(ns):
    rng = np.random.default_rng(0)
    V = len(ns["vocab"])
    ns.update(xs=rng.integers(0, V, (4, 6)), ts=rng.integers(0, V, (4, 6)))


def attention_args(ns):
    rng = np.random.default_rng(0)
    ns.update(query=rng.standard_normal((2, 3, 8)).astype(np.float32),
              keys=rng.standard_normal((2, 5, 8)).astype(np.float32),
              dcontext=np.ones((2, 3, 8), np.float32))


def attention_saved(ns):
    ns["saved"] = sk.attention(ns["query"], ns["keys"], training=True)[-1]


def ctc_args(ns):
    rng = np.random.default_rng(0)
    T, B, C = 12, 2, 11
    ns.update(log_probs=np.log(rng.dirichlet(np.ones(C), (T, B))).astype(np.float32),
              targets=np.array([[1, 2, 3], [4, 4, 0]]), input_lengths=np.array([12, 10]),
              target_lengths=np.array([3, 2]))


def word2vec_corpus(ns):
    write_text("text.txt", 400, seed=1)
    ns["sentences"] = [line.split() for line in Path("text.txt").read_text().splitlines()]
    Path("wordsim353.tsv").write_text("king\tqueen\t8.6\ncat\tdog\t7.4\ncar\troad\t5.9\n"
                                      "man\twoman\t8.3\nbig\tsmall\t2.0\n")


def more_sentences(ns):
    ns["more"] = [["zebra", "runs", "with", "the", "king"]] * 10


def functional_args(ns):
    x, [weights], _ = stack_problem(np.random.default_rng(0), "lstm", 4, 3, 5, 7)
    B, H = 3, 7
    ns.update(x=x, h0=np.zeros((B, H), np.float32), c0=np.zeros((B, H), np.float32),
              dy=np.ones((4, B, H), np.float32), dh_n=np.zeros((B, H), np.float32),
              dc_n=np.zeros((B, H), np.float32))
    ns.update(zip(WEIGHT_NAMES, weights))


def weights_of(cell):
    """A set-up giving the example's w_ih, w_hh, b_ih, b_hh the shapes of this cell's."""
    def setup(ns):
        [weights] = stack_problem(np.random.default_rng(1), cell, 4, 3, 5, 7)[1]
        ns.update(zip(WEIGHT_NAMES, weights))
    return setup


def saved_of(forward):
    """A set-up giving the example the `saved` of a training call of forward (sk.gru, sk.rnn)."""
    def setup(ns):
        ns["saved"] = forward(*(ns[k] for k in ("x", "h0") + WEIGHT_NAMES), training=True)[-1]
    return setup


def cuda_arrays(ns):
    """The CUDA example's lengths and dy; skipped without a GPU and seqkern._cuda."""
    torch = pytest.importorskip("torch")
    if not (cuda_built() and torch.cuda.is_available()):
        pytest.skip("needs a CUDA GPU and seqkern._cuda")
    ns.update(lengths=np.random.default_rng(0).integers(1, 101, 64),
              dy=torch.ones(100, 64, 512, device="cuda"))


def cuda_targets(ns):
    """The CUDA cross-entropy example's targets; skipped without a GPU and seqkern._cuda."""
    torch = pytest.importorskip("torch")
    if not (cuda_built() and torch.cuda.is_available()):
        pytest.skip("needs a CUDA GPU and seqkern._cuda")
    ns["targets"] = torch.randint(0, 10000, (35, 20), device="cuda")


# Each block, known by a phrase in it: (a phrase of the statement to set up before, set-up), in
# the order the statements come. Every block of the README has an entry, and every entry a block.
SETUPS = {
    "lstm = sk.nn.LSTM(input_size": [("lstm = sk.nn.LSTM(", recurrent_layers),
                                     ("for chunk in chunks", tbptt_gradient)],
    'lstm.eval(precision="bfloat16")': [("lstm.eval(", low_precision)],
    "import seqkern.torch": [("import seqkern.torch", torch_model)],
    "vocab = sk.data.Vocabulary": [("vocab = ", text_file), ("loss = model.forward", language_model_batch)],
    "context, weights = sk.attention(": [("context, weights", attention_args),
                                         ("g = sk.attention_backward", attention_saved)],
    "loss, saved = sk.ctc_loss(": [("loss, saved", ctc_args)],
    "model = sk.Word2Vec(sentences": [("model = sk.Word2Vec(sentences", word2vec_corpus),
                                      ("model.build_vocab(more", more_sentences)],
    "from gensim.models import": [],
    "sk.softmax_cross_entropy(logits": [("import torch, seqkern", cuda_targets)],
    'device="cuda"': [("import torch, seqkern", cuda_arrays)],
    "from common.time_layers import": [],
    "y, h_n, c_n = sk.lstm(x, h0": [("y, h_n, c_n = sk.lstm(", functional_args),
                                    ("y, h_n = sk.gru(", weights_of("gru")),
                                    ("g = sk.gru_backward", saved_of(sk.gru)),
                                    ("y, h_n = sk.rnn(", weights_of("rnn_tanh")),
                                    ("g = sk.rnn_backward", saved_of(sk.rnn)),
                                    ("packed = sk.prepack_weights", functional_args)],
}


def block_key(block):
    for key in SETUPS:
        if key in block:
            return key
    raise KeyError(f"a README example without a set-up in tests/test_readme.py:\n{block}")


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block, tmp_path, monkeypatch, restore_threads):
    monkeypatch.chdir(tmp_path)
    setups = list(SETUPS[block_key(block)])
    source = "\n".join(line for line in block.splitlines() if "# before" not in line)
    source = source.replace(", ...)", ")")
    ns = {"__name__": "readme", "sk": sk}  # later examples take the first one's import
    for node in ast.parse(source).body:
        while setups and setups[0][0] in ast.get_source_segment(source, node):
            setups.pop(0)[1](ns)
        exec(compile(ast.Module([node], []), "<README example>", "exec"), ns)
    assert not setups, f"set-ups never reached: {setups}"


def test_every_setup_has_its_readme_example():
    assert sorted(map(block_key, BLOCKS)) == sorted(SETUPS)
