"""NumPy twin of seqkern.embedding / embedding_backward."""
import numpy as np

from seqkern._checks import as_float_array, as_ids


def embedding(weight, ids):
    weight = as_float_array("weight", weight)
    return weight[as_ids("ids", ids, weight.shape[0])]


def embedding_backward(ids, dy, dweight, padding_idx=None):
    ids = as_ids("ids", ids, dweight.shape[0])
    dy = np.asarray(dy).reshape(-1, dweight.shape[1])
    keep = ids.reshape(-1) != (-1 if padding_idx is None else padding_idx)
    np.add.at(dweight, ids.reshape(-1)[keep], dy[keep])
    return dweight
