"""Helpers of the seqkern.torch tests (imported after their pytest.importorskip("torch"))."""


def uses_seqkern(out):
    """Whether one of seqkern's autograd Functions is in the graph that produced `out`."""
    todo, seen = [out.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if type(fn).__name__ in ("RecurrentStackFunctionBackward", "OneLayerFunctionBackward"):
            return True
        todo.extend(f for f, _ in fn.next_functions)
    return False
