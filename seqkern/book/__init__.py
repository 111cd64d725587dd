"""The layers of "Deep Learning from Scratch 2" (Koki Saitoh) on seqkern's kernels. A reader of
the book changes imports and nothing else:

    from common.time_layers import *            ->  from seqkern.book import *
    from common.layers import Affine            ->  from seqkern.book import Affine
    from common.optimizer import Adam           ->  from seqkern.book import Adam
    from attention_layer import TimeAttention   ->  from seqkern.book import TimeAttention
    from negative_sampling_layer import NegativeSamplingLoss  ->  from seqkern.book import ...

Every name `from common.time_layers import *` gives is here (np, GPU, softmax, sigmoid,
cross_entropy_error and the layers of common.layers included), with the book's constructors,
params and grads lists, shapes (N, T, D), float32 and gate orders.
"""
import numpy as np

from seqkern.book.attention_layer import Attention, AttentionWeight, TimeAttention, WeightSum
from seqkern.book.functions import cross_entropy_error, relu, sigmoid, softmax
from seqkern.book.layers import (Affine, Dropout, Embedding, MatMul, Sigmoid, SigmoidWithLoss,
                                 Softmax, SoftmaxWithLoss)
from seqkern.book.negative_sampling_layer import EmbeddingDot, NegativeSamplingLoss, UnigramSampler
from seqkern.book.optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, clip_grads
from seqkern.book.time_layers import (GRU, LSTM, RNN, TimeAffine, TimeBiLSTM, TimeDropout,
                                      TimeEmbedding, TimeGRU, TimeLSTM, TimeRNN,
                                      TimeSigmoidWithLoss, TimeSoftmaxWithLoss)

GPU = False  # common.config's flag: the book's CuPy switch; seqkern.book runs on the CPU
# The book's per-step versions of two layers; here they are the same layers.
Simple_TimeAffine, Simple_TimeSoftmaxWithLoss = TimeAffine, TimeSoftmaxWithLoss

__all__ = ["np", "GPU", "softmax", "sigmoid", "relu", "cross_entropy_error",
           "MatMul", "Affine", "Softmax", "SoftmaxWithLoss", "Sigmoid", "SigmoidWithLoss", "Dropout",
           "Embedding", "RNN", "LSTM", "GRU", "TimeRNN", "TimeLSTM", "TimeGRU", "TimeBiLSTM",
           "TimeEmbedding", "TimeAffine", "TimeSoftmaxWithLoss", "TimeSigmoidWithLoss", "TimeDropout",
           "Simple_TimeAffine", "Simple_TimeSoftmaxWithLoss", "WeightSum", "AttentionWeight",
           "Attention", "TimeAttention", "EmbeddingDot", "UnigramSampler", "NegativeSamplingLoss", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam",
           "clip_grads"]
