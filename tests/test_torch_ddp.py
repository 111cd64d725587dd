"""seqkern.torch under DistributedDataParallel: two processes on loopback (gloo), each with half of
a batch, take the same step as one process over the whole batch."""
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
skt = pytest.importorskip("seqkern.torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

WORLD, V, B, T = 2, 30, 6, 9


class LM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, 8)
        self.rnn = torch.nn.LSTM(8, 10, 2)
        self.out = torch.nn.Linear(10, V)

    def forward(self, ids):
        y, _ = self.rnn(self.embed(ids))
        return self.out(y)


def model_and_batch():
    torch.manual_seed(0)
    model = skt.optimize(LM().double())
    ids = torch.randint(0, V, (T + 1, B), generator=torch.Generator().manual_seed(1))
    return model, ids[:-1], ids[1:]


def step(model, x, y):
    """One SGD step on the mean cross-entropy; returns the gradients and the updated weights."""
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt.zero_grad()
    out = model(x)
    torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten()).backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    opt.step()
    return grads, {k: p.detach().clone() for k, p in model.named_parameters()}


def worker(rank, port, out_path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        model, x, y = model_and_batch()
        assert type(model.rnn(model.embed(x))[0].grad_fn).__name__ == "RecurrentStackFunctionBackward"
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        half = slice(rank * B // WORLD, (rank + 1) * B // WORLD)   # columns are sequences
        grads, weights = step(ddp, x[:, half], y[:, half])
        torch.save({"grads": grads, "weights": weights}, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_step_as_one_over_the_full_batch(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "rank")
    mp.spawn(worker, args=(free_port(), out), nprocs=WORLD, join=True)
    model, x, y = model_and_batch()
    grads, weights = step(model, x, y)
    for rank in range(WORLD):
        got = torch.load(f"{out}.{rank}", weights_only=True)
        for k in grads:  # DDP's names carry a "module." prefix
            torch.testing.assert_close(got["grads"][f"module.{k}"], grads[k], rtol=1e-12, atol=1e-13, msg=k)
            torch.testing.assert_close(got["weights"][f"module.{k}"], weights[k], rtol=1e-12, atol=1e-13, msg=k)


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_lm.py"


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/ is in the checkout, not the package")
@pytest.mark.parametrize("processes", [1, 2])
def test_the_ddp_example_trains_and_reports(processes, tmp_path):
    """examples/ddp_lm.py as the README runs it (torchrun, 2 processes) and as one process; the
    one process with a learning rate that diverges, whose perplexity is inf (math.exp raised
    OverflowError there and ended the run)."""
    text = tmp_path / "text.txt"
    text.write_text(" ".join(f"w{i % 37} w{i % 11}" for i in range(6000)))
    args = [str(EXAMPLE), "--data", str(text), "--max-steps", "4", "--log-every", "2",
            "--hidden", "8", "--batch-size", "4", "--bptt", "5"]
    if processes == 1:
        cmd = [sys.executable, *args, "--lr", "1e5", "--clip", "1e9"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(free_port()), *args]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"{processes} process(es)" in run.stdout
    assert "epoch 1 step 4 loss" in run.stdout and "val ppl" in run.stdout
    if processes == 1:
        assert "ppl inf" in run.stdout
