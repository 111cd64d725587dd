"""The `seqkern` command (also `python -m seqkern`).

    seqkern demo     trains a character LSTM language model on the Python standard library's
                     own source for about two minutes, then writes Python with it
    seqkern check    checks every kernel (recurrent cells, cross-entropy, attention, CTC) against
                     its NumPy twin and finite differences, and the CUDA kernels against the
                     twins where a GPU is; then times the recurrent cells against the twins
                     (and torch, when installed)
    seqkern info     version, CPU, BLAS, threads, SIMD level, CUDA
    seqkern train-lm --text FILE --save CKPT [--level char|word] ...
                     trains a language model on a text file
    seqkern sample --checkpoint CKPT [--prefix TEXT] [--length N] ...
                     generates text with a trained language model
    seqkern seq2seq --task addition|date|FILE --model plain|peeky|attention [--reverse] ...
                     trains an encoder-decoder, printing its test accuracy after each epoch
    seqkern ctc [--epochs N]
                     trains a bidirectional LSTM with CTC on synthetic spoken digits
    seqkern word2vec --train FILE --output FILE [--cbow] [--size 100] ...
                     trains word vectors and writes them in word2vec.c's format; takes
                     word2vec.c's options in its spelling too (-train FILE -cbow 1 -hs 0 ...)
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import seqkern as sk
from seqkern import bench, reference
from seqkern.cli_args import positive_int
from seqkern.ctc_commands import add_ctc_command
from seqkern.gradcheck import check_op
from seqkern.lm_commands import add_lm_commands
from seqkern.seq2seq_commands import add_seq2seq_command
from seqkern.word2vec_commands import add_word2vec_command


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)), initial=0.0))
               for u, v in zip(a, b) if u is not None)


def demo_check(cell, out=sys.stdout):
    """Kernel vs twin (float64, uneven lengths) and kernel vs central differences."""
    p, douts = _check_problem(cell)
    fwd_k, bwd_k = getattr(sk, cell), getattr(sk, cell + "_backward")
    fwd_err, bwd_err = _twin_errors(cell, p, douts, lambda a: a, np.asarray)
    small = bench.make_problem(cell, T=3, B=2, I=3, H=4, dtype=np.float64, seed=2,
                               lengths=np.array([3, 2]))
    fd_err = max(check_op(fwd_k, bwd_k, small, rtol=1e-6, atol=1e-8).values())
    ok = fwd_err < 1e-12 and bwd_err < 1e-12
    print(f"{cell:<5} vs NumPy twin: outputs {fwd_err:.1e}, gradients {bwd_err:.1e};"
          f"  vs finite differences: {fd_err:.1e}  {'ok' if ok else 'MISMATCH'}", file=out)
    return ok


def _check_problem(cell):
    lengths = np.array([5, 2, 4])
    p = bench.make_problem(cell, T=5, B=3, I=4, H=6, dtype=np.float64, lengths=lengths)
    return p, bench.output_grads(cell, p)


def _twin_errors(cell, p, douts, to_device, to_host):
    """Largest differences of outputs and gradients between the kernels, on arrays that
    to_device made (to_host brings them back), and the NumPy twin."""
    fwd_k, fwd_r = getattr(sk, cell), getattr(reference, cell)
    bwd_k, bwd_r = getattr(sk, cell + "_backward"), getattr(reference, cell + "_backward")
    on = {k: v if v is None or k == "lengths" else to_device(v) for k, v in p.items()}
    *yk, sk_saved = fwd_k(**on, training=True)
    *yr, ref_saved = fwd_r(**p, training=True)
    gk, gr = bwd_k(sk_saved, *map(to_device, douts)), bwd_r(ref_saved, *douts)
    return (_max_diff([to_host(y) for y in yk], yr),
            _max_diff([None if gk[k] is None else to_host(gk[k]) for k in gr],
                      [gr[k] for k in gr]))


def cuda_arrays():
    """(to_device, to_host) for a GPU that seqkern._cuda can use, through torch, else CuPy; None
    when the backend is not built, no GPU is visible or neither library is installed."""
    from seqkern._info import cuda_built
    if not cuda_built():
        return None
    from seqkern import _cuda
    if _cuda.device_count() == 0:
        return None
    try:
        import torch
        if torch.cuda.is_available():
            return (lambda a: torch.from_numpy(a).cuda()), (lambda t: t.cpu().numpy())
    except ImportError:
        pass
    try:
        import cupy
    except ImportError:
        return None
    return cupy.asarray, cupy.asnumpy


def cuda_check(cell, arrays, out=sys.stdout):
    """The CUDA kernels against the NumPy twin (float64, uneven lengths); arrays: cuda_arrays()'s
    converters."""
    fwd_err, bwd_err = _twin_errors(cell, *_check_problem(cell), *arrays)
    ok = fwd_err < 1e-12 and bwd_err < 1e-12
    print(f"{cell:<5} on CUDA vs NumPy twin: outputs {fwd_err:.1e}, gradients {bwd_err:.1e}"
          f"  {'ok' if ok else 'MISMATCH'}", file=out)
    return ok


def _other_ops(rng):
    """(name, op, arguments) of the non-recurrent kernels, float64, small, with masking, ignored
    targets and uneven lengths."""
    x = rng.standard_normal((4, 3, 5))
    cases = [("cross_entropy", "softmax_cross_entropy",
              dict(logits=rng.standard_normal((3, 4, 7)), label_smoothing=0.1,
                   targets=np.array([[1, 6, -100, 0]] * 3)))]
    for score, extra in (("dot", {"scale": 0.5}), ("general", {"w": rng.standard_normal((3, 2))}),
                         ("additive", {"w_q": rng.standard_normal((4, 3)),
                                       "w_k": rng.standard_normal((4, 2)),
                                       "v": rng.standard_normal(4)})):
        cases.append((f"attention {score}", "attention",
                      dict(query=rng.standard_normal((2, 3, 3)),
                           keys=rng.standard_normal((2, 4, 3 if score == "dot" else 2)),
                           values=rng.standard_normal((2, 4, 2)), lengths=np.array([4, 2]),
                           score=score, **extra)))
    cases.append(("ctc_loss", "ctc_loss",
                  dict(log_probs=x - np.log(np.exp(x).sum(axis=2, keepdims=True)),
                       targets=np.array([[1, 2, 2], [3, 0, 0], [4, 4, 0]]),
                       input_lengths=np.array([4, 3, 4]), target_lengths=np.array([3, 1, 2]))))
    return cases


def _other_op_errors(op, kw, rng, to_device=lambda a: a, to_host=np.asarray):
    """The kernel of op on kw's float arrays made by to_device (ids and lengths stay on the
    host) against its twin, with an incoming gradient w drawn from rng for the first output:
    (w, the kernel's gradients as host arrays, largest output and gradient differences)."""
    def forward(impl, args):
        *outs, saved = getattr(impl, op)(**args, training=True)
        return outs[0], saved

    def backward(impl, saved, dw, host):
        g = getattr(impl, op + "_backward")(saved, dw)
        return {k: host(v) for k, v in (g if isinstance(g, dict) else {"logits": g}).items()}

    yr, saved_r = forward(reference, kw)
    w = rng.standard_normal(np.shape(yr))
    gr = backward(reference, saved_r, w, np.asarray)
    on = {k: to_device(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
          for k, v in kw.items()}
    yk, saved_k = forward(sk, on)
    gk = backward(sk, saved_k, to_device(w), to_host)
    return w, gk, (float(np.max(np.abs(to_host(yk) - yr))),
                   max(float(np.max(np.abs(gk[k] - gr[k]))) for k in gr))


def check_other_ops(out=sys.stdout):
    """Each non-recurrent kernel against its twin and against central differences (float64),
    on the scalar sum(w * first output) for a fixed random w."""
    from seqkern.gradcheck import gradcheck

    ok = True
    rng = np.random.default_rng(0)
    for name, op, kw in _other_ops(rng):
        w, gk, (fwd_err, bwd_err) = _other_op_errors(op, kw, rng)
        arrays = {k: v.copy() for k, v in kw.items() if k in gk}
        rest = {k: v for k, v in kw.items() if k not in gk}
        first = (lambda o: o[0]) if op == "attention" else (lambda o: o)
        fd = gradcheck(lambda **a: float(np.sum(w * first(getattr(sk, op)(**a, **rest)))), arrays,
                       {k: gk[k] for k in arrays})
        good = fwd_err < 1e-12 and bwd_err < 1e-12
        ok &= good
        print(f"{name:<18} vs NumPy twin: outputs {fwd_err:.1e}, gradients {bwd_err:.1e};"
              f"  vs finite differences: {max(fd.values()):.1e}  {'ok' if good else 'MISMATCH'}",
              file=out)
    return ok


def cuda_check_other_ops(arrays, out=sys.stdout):
    """The non-recurrent CUDA kernels against their twins (float64); arrays: cuda_arrays()'s
    converters."""
    ok = True
    rng = np.random.default_rng(0)
    for name, op, kw in _other_ops(rng):
        _, _, (fwd_err, bwd_err) = _other_op_errors(op, kw, rng, *arrays)
        good = fwd_err < 1e-12 and bwd_err < 1e-12
        ok &= good
        print(f"{name:<18} on CUDA vs NumPy twin: outputs {fwd_err:.1e}, gradients "
              f"{bwd_err:.1e}  {'ok' if good else 'MISMATCH'}", file=out)
    return ok


def demo_speed(cells, shape, repeat, out=sys.stdout):
    T, B, I, H = shape
    has_torch = bench.torch_step("rnn", bench.make_problem("rnn", 1, 1, 1, 1), False) is not None
    header = f"{'cell':<5} {'mode':<6} {'seqkern ms':>11} {'numpy ms':>9} {'vs numpy':>9}"
    if has_torch:
        header += f" {'torch ms':>9} {'vs torch':>9}"
    print(f"\nfloat32, (T, B, I, H) = {shape}, {sk.get_num_threads()} threads, median of {repeat}",
          file=out)
    print(header + f" {'GFLOP/s':>8}", file=out)
    for cell in cells:
        p = bench.make_problem(cell, T, B, I, H)
        for train in (False, True):
            t_sk, t_th = bench.paired_times(
                [bench.seqkern_step(cell, p, train), bench.torch_step(cell, p, train)], repeat)
            (t_np,) = bench.paired_times([bench.reference_step(cell, p, train)],
                                         max(1, repeat // 2), min_seconds=0)
            row = (f"{cell:<5} {'train' if train else 'infer':<6} {t_sk * 1e3:>11.2f}"
                   f" {t_np * 1e3:>9.2f} {t_np / t_sk:>8.2f}x")
            if has_torch:
                row += f" {t_th * 1e3:>9.2f} {t_th / t_sk:>8.2f}x"
            gflops = bench.flops(cell, T, B, I, H, train) / t_sk / 1e9
            print(row + f" {gflops:>8.1f}", file=out)


def cmd_check(args):
    sk.info()
    print()
    cells = ("rnn", "lstm", "gru")
    ok = all([demo_check(c) for c in cells]) & check_other_ops()
    arrays = cuda_arrays()
    if arrays is not None:
        ok &= all([cuda_check(c, arrays) for c in cells]) & cuda_check_other_ops(arrays)
    demo_speed(cells, tuple(args.shape), args.repeat)
    return 0 if ok else 1


def cmd_info(_args):
    sk.info()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="seqkern", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"seqkern {sk.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, CPU, BLAS, threads, SIMD level, CUDA").set_defaults(
        func=cmd_info)
    check = sub.add_parser("check", help="check and time the fused kernels")
    check.add_argument("--shape", type=positive_int, nargs=4, default=[50, 16, 128, 128],
                       metavar=("T", "B", "I", "H"), help="timing shape (default 50 16 128 128)")
    check.add_argument("--repeat", type=positive_int, default=7, help="timed runs per cell (median)")
    check.set_defaults(func=cmd_check)
    add_lm_commands(sub)
    add_seq2seq_command(sub)
    add_ctc_command(sub)
    add_word2vec_command(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as e:  # a file or a value the command cannot use: one line
        where = f"{e.filename}: " if isinstance(e, OSError) and e.filename else ""
        print(f"seqkern {args.command}: error: {where}{e.strerror if where else e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
