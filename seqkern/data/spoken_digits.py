"""A synthetic speech-like task for CTC, needing no download: digit strings "spoken" as noisy
feature frames.

Each digit 0-9 has a fixed random prototype vector (the same for every split and seed). An
example is 3-10 random digits; each digit is held for 2-6 frames, stretches of 0-3 silent frames
(zero vectors) come before, between and after the digits (at least one between a digit and its
repeat, as a speaker pauses in "one one": without it, one digit held 4-6 frames could not be told
from two), and Gaussian noise is added to every frame, so inputs have uneven lengths and no
alignment is given. Labels are the digits + 1, so
that class 0 is CTC's blank.
"""
from __future__ import annotations

import numpy as np

from seqkern._checks import check_count, non_negative, random_generator

PROTOTYPE_SEED = 20261130


def digit_prototypes(feature_size=16):
    return np.random.default_rng(PROTOTYPE_SEED).standard_normal((10, feature_size))


def spoken_digits(n, feature_size=16, noise=0.6, seed=0):
    """n examples: a list of (frames (T_i, feature_size) float32, labels (S_i,) int64 in 1..10)."""
    check_count("n", n, least=0)
    check_count("feature_size", feature_size)
    noise = non_negative("noise", noise)
    rng = random_generator(seed)
    protos = digit_prototypes(feature_size)
    out = []
    for _ in range(n):
        digits = rng.integers(0, 10, rng.integers(3, 11))
        frames = [np.zeros((rng.integers(0, 4), feature_size))]
        for k, d in enumerate(digits):
            frames.append(np.repeat(protos[d][None], rng.integers(2, 7), axis=0))
            repeat = k + 1 < len(digits) and digits[k + 1] == d
            frames.append(np.zeros((rng.integers(1 if repeat else 0, 4), feature_size)))
        x = np.concatenate(frames)
        x += noise * rng.standard_normal(x.shape)
        out.append((x.astype(np.float32), (digits + 1).astype(np.int64)))
    return out


def pad_batch(examples):
    """(x (T, B, F) zero-padded, input_lengths (B,), targets (B, S) zero-padded, target_lengths)."""
    B = len(examples)
    lengths = np.array([len(x) for x, _ in examples], dtype=np.int64)
    target_lengths = np.array([len(t) for _, t in examples], dtype=np.int64)
    F = examples[0][0].shape[1]
    x = np.zeros((lengths.max(), B, F), np.float32)
    targets = np.zeros((B, target_lengths.max()), np.int64)
    for b, (frames, labels) in enumerate(examples):
        x[:len(frames), b] = frames
        targets[b, :len(labels)] = labels
    return x, lengths, targets, target_lengths
