"""Random draws that are a function of where they happen, so that a resumed run repeats them exactly.

A training run is a continuation of an interrupted one only if every random draw after the resume is the
one the uninterrupted run made. Instead of saving and restoring random-number states (of every rank, every
dataloader worker and its prefetch queue), speaq_mm makes each draw a pure function of its place in the run:

* every sample a batch sampler yields is a :class:`SeededIndex`: the dataset index plus a seed derived from
  (run seed, batch index, rank, position in the batch). The dataset loads and augments the sample under that
  seed (:func:`fetch_seeded`), whichever worker process does it and however many there are;
* the main process re-seeds Python's, numpy's and torch's generators before every training iteration from
  (run seed, rank, iteration) (:func:`seed_iteration`), which fixes dropout and anything else the model draws.

Why not a stateful data loader (torchdata's ``StatefulDataLoader``): mmengine builds the DataLoader itself, the
state would have to be gathered from every rank into the checkpoint rank 0 writes, and it changes with the
number of workers; the seeds here need nothing in the checkpoint but the run seed mmengine already saves.
"""
import contextlib
import random

import numpy as np
import torch

# The first word of every key: what the seed is for, so that two kinds of draw never share a seed.
SAMPLE, EPOCH_SAMPLE, ITERATION = 1, 2, 3


def draw_seed(kind, *key):
    """A 32-bit seed for a draw of ``kind`` (``SAMPLE``, ...) at ``key``, a tuple of non-negative integers.

    Keys of one kind always have the same length, so different keys give unrelated seeds
    (``numpy.random.SeedSequence``).
    """
    return int(np.random.SeedSequence([kind, *(int(part) for part in key)]).generate_state(1)[0])


class SeededIndex(int):
    """A dataset index that carries the seed its sample is to be loaded and augmented with.

    It is an ``int``, so code that only needs the index (samplers, ``ConcatDataset`` lookups, tests) sees the
    index; it pickles with its seed, so it reaches dataloader worker processes intact.
    """

    def __new__(cls, index, seed):
        value = super().__new__(cls, index)
        value.seed = int(seed)
        return value

    def __reduce__(self):
        return SeededIndex, (int(self), self.seed)

    def __repr__(self):
        return f'SeededIndex({int(self)}, seed={self.seed})'


def seeded_batch(indices, seed, batch_index, rank, epoch=None):
    """``indices`` as :class:`SeededIndex` values seeded by (seed, [epoch,] batch index, rank, position).

    ``batch_index`` counts the batches of the whole run, or of ``epoch`` when it is given.
    """
    if epoch is None:
        return [SeededIndex(index, draw_seed(SAMPLE, seed, batch_index, rank, position))
                for position, index in enumerate(indices)]
    return [SeededIndex(index, draw_seed(EPOCH_SAMPLE, seed, epoch, batch_index, rank, position))
            for position, index in enumerate(indices)]


def _seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also every CUDA device


@contextlib.contextmanager
def seeded(seed):
    """Run the body with Python's, numpy's and torch's CPU generators seeded by ``seed``; restore them after.

    Restoring keeps the caller's streams (the main process's, when there are no worker processes) as they
    were, so loading a sample never shifts the draws of the model.
    """
    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.random.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)


def fetch_seeded(index, fetch):
    """``fetch(index)``, under the seed of a :class:`SeededIndex` (a plain ``int`` is fetched as it is)."""
    if isinstance(index, SeededIndex):
        with seeded(index.seed):
            return fetch(int(index))
    return fetch(index)


def seed_iteration(seed, rank, iteration):
    """Re-seed every global generator of this process for training iteration ``iteration`` (0-based)."""
    _seed_everything(draw_seed(ITERATION, seed, rank, iteration))
