"""Batches with an exact per-source composition over the sources of a ConcatDataset.

mmdet's ``MultiSourceSampler`` rounds the ratio per GPU and hands the rounding remainder to source 0, so the
global batch drifts from the requested ratio (4 GPUs x 5 images at 0.7 give 16 + 4 instead of 14 + 6) and
``MultiDataSampler`` only holds the ratio in expectation. Neither can be configured to round the *global*
batch, which is why this sampler is written here. See docs/multi_dataset.md for the user-facing description.

How a batch is made. Every source ``i`` has an endless stream of sample indices: pass ``k`` over the source
is a permutation seeded by ``(seed, i, k)``, so each pass is drawn without replacement and a small source
cycles through its passes independently of a large one. Global batch ``t`` takes the next ``n_i`` positions
of every stream (``n`` = largest-remainder rounding of ``ratio * world_size * batch_size``) and splits each
source's chunk over the ranks: every rank gets ``n_i // world_size`` and the ``n_i % world_size`` leftovers
are dealt round-robin, starting at rank ``t % world_size``, so each rank still gets exactly ``batch_size``
samples and no rank is always the short one.

Gradient accumulation (``accumulative_counts = A``, the optimizer wrapper's ``accumulative_counts``): the
global batch is then the ``A`` micro-batches of every rank that feed one optimizer step, ``A * world_size *
batch_size`` samples. Its counts are rounded once and split over the ``A * world_size`` micro-batches (slot
``a * world_size + rank`` for micro-batch ``a`` of a window) as above, so 1 GPU x 4 micro-batches of 5 at
0.7 / 0.3 hold 14 + 6 per optimizer step, exactly the images that 4 GPUs x 5 get (slot = rank there).

Batch ``t`` is a function of ``(seed, t, rank, world_size, accumulative_counts)``
and of the resume state (:meth:`SGGRatioBatchSampler.load_state_dict`) only, which is what lets a resumed run
reproduce the uninterrupted one: :meth:`SGGRatioBatchSampler.resume_at` starts the stream at any batch in constant
time, and every index carries the seed its sample is augmented with (``seeded_draws``).
"""
import itertools
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from ..seeded_draws import seeded_batch
from ..sgg_concat_dataset import source_names

RATIO_KEY = 'train_dataloader.batch_sampler.source_ratio'


def ratios_by_source(source_ratio, dataset):
    """The ratios of a ``{source name: ratio}`` dict in the order of the ConcatDataset's sub-datasets.

    Every source needs a ratio (0 leaves it out) and every name must be a source of the dataset, so a typo
    can never silently drop a source or leave a ratio unused.
    """
    names = source_names(dataset)
    if len(set(names)) != len(names):
        raise ValueError(f'{RATIO_KEY} is keyed by source name, but the datasets share names: {names}; give '
                         'every dataset of the mix its own source')
    unknown = [name for name in source_ratio if name not in names]
    missing = [name for name in names if name not in source_ratio]
    if unknown or missing:
        problem = (f'{unknown} match no dataset' if unknown else '') + (' and ' if unknown and missing else '') + (
            f'{missing} have no ratio (0 leaves a source out)' if missing else '')
        raise ValueError(f'{RATIO_KEY}: {problem}; the sources are {names}')
    return [source_ratio[name] for name in names]


def largest_remainder_counts(ratios, total):
    """Split ``total`` into integer counts proportional to ``ratios`` (largest-remainder rounding).

    Every count is the floor of its exact quota; the seats left over go to the largest fractional parts, ties
    to the earlier source. Ratios are read as the decimals they are written as (``0.33`` is 33/100), so quotas
    that are integers on paper are integers here too, free of binary floating-point error.

    Args:
        ratios (Sequence[float]): non-negative weights, not all zero; they need not sum to 1.
        total (int): the number to split.

    Returns:
        np.ndarray: int64 counts, one per ratio, summing to ``total``.
    """
    exact = [Fraction(str(r)) for r in ratios]
    quotas = [r / sum(exact) * total for r in exact]
    counts = np.array([math.floor(q) for q in quotas], dtype=np.int64)
    leftover = total - int(counts.sum())
    # sorted() is stable, so equal remainders keep source order.
    by_remainder = sorted(range(len(quotas)), key=lambda i: quotas[i] - counts[i], reverse=True)
    counts[by_remainder[:leftover]] += 1
    return counts


def split_over_ranks(global_counts, world_size, first_rank):
    """Share each source's global count over ``world_size`` ranks as evenly as possible.

    Every rank gets ``count // world_size`` of every source. The leftovers, laid out source after source,
    are dealt one per rank round-robin starting at ``first_rank``; since a source has fewer leftovers than
    ranks, no rank gets two of one source, and since the leftovers add up to a multiple of ``world_size``
    (the global batch is ``world_size`` equal rank batches), every rank gets the same number.

    Args:
        global_counts (np.ndarray): (S,) samples per source in the global batch; the sum is divisible by
            ``world_size``.
        world_size (int): number of ranks.
        first_rank (int): the rank that receives the first leftover.

    Returns:
        np.ndarray: (world_size, S) int64 counts per rank and source.
    """
    base, leftover = np.divmod(global_counts, world_size)
    per_rank = np.tile(base, (world_size, 1))
    leftover_sources = np.repeat(np.arange(len(global_counts)), leftover)
    receiving_ranks = (first_rank + np.arange(len(leftover_sources))) % world_size
    np.add.at(per_rank, (receiving_ranks, leftover_sources), 1)
    return per_rank


@lru_cache(maxsize=32)
def _source_permutation(seed, source, pass_index, size):
    """Order of pass ``pass_index`` over source ``source`` (cached: a batch usually reuses the last pass)."""
    return np.random.default_rng([seed, source, pass_index]).permutation(size)


def _valid_batch_sizes_near(ratios, world_size, batch_size):
    """Nearest per-GPU batch sizes below and above ``batch_size`` that give every non-zero ratio a sample."""
    def holds_every_source(b):
        counts = largest_remainder_counts(ratios, world_size * b)
        return all(c > 0 for c, r in zip(counts, ratios) if r > 0)

    below = next((b for b in range(batch_size - 1, 0, -1) if holds_every_source(b)), None)
    # Every floor(quota) is >= 1 once the global batch reaches sum / min(non-zero ratio), so this ends.
    above = next(b for b in itertools.count(batch_size + 1) if holds_every_source(b))
    return [b for b in (below, above) if b is not None]


@DATA_SAMPLERS.register_module()
class SGGRatioBatchSampler(Sampler):
    """Batch sampler giving every global batch an exact, fixed number of samples from each source.

    Use it as ``train_dataloader.batch_sampler`` over a ``ConcatDataset``; ``train_dataloader.sampler``
    must still be given (the Runner requires one) and is only used for its dataset and seed. With ``W``
    ranks and per-GPU batch ``b``, each global batch of ``W * b`` samples holds exactly the
    largest-remainder rounding of ``ratio * W * b`` samples of each source, each rank's share of a source is
    within 1 of every other rank's, and which ranks get the larger shares rotates from batch to batch.
    Within a rank's batch, samples are grouped by source in dataset order.

    Epochs. Each source is drawn without replacement within a pass over it and reshuffled for the next
    pass (deterministically from the seed). A training epoch (``len(self)``, what ``EpochBasedTrainLoop``
    counts) is by default the number of batches after which every sample of every drawn source has been
    used at least once, ``max_i ceil(len(source_i) / n_i)``; sources keep cycling independently across
    training epochs, so epoch ``e`` is batches ``e * len(self)`` to ``(e + 1) * len(self) - 1`` of one
    endless stream.

    Args:
        sampler (Sampler): the sampler built from ``train_dataloader.sampler`` (passed in by the Runner); its
            ``dataset`` must be a ConcatDataset and its ``seed`` is used when ``seed`` is None.
        batch_size (int): samples per rank and batch (``train_dataloader.batch_size``).
        source_ratio (dict[str, float]): a non-negative weight per source name (the sub-datasets' ``source``),
            normalised by their sum, e.g. ``dict(real=0.7, synthetic=0.3)``; every source needs one. A list
            (one weight per sub-dataset, in order) is accepted too, for code that builds the sampler itself.
        seed (int, optional): seed of the per-source shuffles; defaults to ``sampler.seed`` (the Runner's
            ``randomness.seed``), or a seed shared by all ranks when the sampler has none.
        num_batches_per_epoch (int, optional): batches per training epoch instead of the default above.
        infinite (bool): keep yielding past the end of the epoch. Set it with ``IterBasedTrainLoop`` to avoid
            the worker restart and 2 s pause mmengine takes at every epoch end; never with
            ``EpochBasedTrainLoop``, whose epochs would not end. Defaults to False.
        rank (int, optional): this process's rank; defaults to ``mmengine.dist.get_dist_info()``.
        world_size (int, optional): number of ranks; defaults to ``mmengine.dist.get_dist_info()``.
        accumulative_counts (int): micro-batches per optimizer step; set it to the optimizer wrapper's
            ``accumulative_counts`` so that the exact mix holds over each step's samples (module docstring).
            ``len(self)`` and ``num_batches_per_epoch`` count micro-batches (training iterations).
    """

    def __init__(self,
                 sampler,
                 batch_size,
                 source_ratio,
                 seed=None,
                 num_batches_per_epoch=None,
                 infinite=False,
                 rank=None,
                 world_size=None,
                 accumulative_counts=1):
        super().__init__()
        dataset = getattr(sampler, 'dataset', None)
        if not hasattr(dataset, 'cumulative_sizes'):
            raise TypeError('SGGRatioBatchSampler needs train_dataloader.dataset to be a ConcatDataset of the '
                            f'sources, got {type(dataset).__name__}')
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank {self.rank} is outside world size {self.world_size}')
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'train_dataloader.batch_size must be a positive integer, got {batch_size!r}')
        self.batch_size = batch_size
        if not isinstance(accumulative_counts, int) or accumulative_counts < 1:
            raise ValueError('train_dataloader.batch_sampler.accumulative_counts must be a positive integer, '
                             f'got {accumulative_counts!r}')
        self.accumulative_counts = accumulative_counts
        self.dataset = dataset
        self.source_sizes = np.diff(np.concatenate([[0], dataset.cumulative_sizes])).astype(np.int64)
        self.source_offsets = np.concatenate([[0], dataset.cumulative_sizes[:-1]]).astype(np.int64)
        self.source_ratio = self._check_ratios(source_ratio, dataset)
        # Per global batch (all ranks' micro-batches of one optimizer step).
        slots = self.world_size * accumulative_counts
        self.source_counts = largest_remainder_counts(self.source_ratio, slots * batch_size)
        self._check_every_source_fits()
        # Per rotation (global batch w uses rotation w % slots) and micro-batch a: this rank's count of each
        # source, and where its piece starts inside each source's share of the global batch.
        tables = [split_over_ranks(self.source_counts, slots, first) for first in range(slots)]
        self._rotations = [[(table[slot], table[:slot].sum(axis=0)) for slot in self._slots()]
                           for table in tables]
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        self.seed = sync_random_seed() if seed is None else seed
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f'SGGRatioBatchSampler seed must be a non-negative integer, got {self.seed!r}')
        drawn = self.source_counts > 0
        default_length = accumulative_counts * int(
            np.max(-(-self.source_sizes[drawn] // self.source_counts[drawn])))
        if num_batches_per_epoch is not None and (not isinstance(num_batches_per_epoch, int)
                                                  or num_batches_per_epoch < 1):
            raise ValueError('train_dataloader.batch_sampler.num_batches_per_epoch must be a positive '
                             f'integer or None, got {num_batches_per_epoch!r}')
        self.num_batches_per_epoch = num_batches_per_epoch or default_length
        self.infinite = infinite
        self.epoch = 0
        self._start_batch = None  # set by resume_at: where the next __iter__ starts
        # Set by load_state_dict when resuming: from global batch _resume_window on, source i continues at
        # position _resume_positions[i] of its stream.
        self._resume_window = 0
        self._resume_positions = np.zeros(len(self.source_counts), dtype=np.int64)
        # mmengine's DistSamplerSeedHook and IterBasedTrainLoop advance epochs through
        # ``dataloader.batch_sampler.sampler.set_epoch`` (the DataLoader's own sampler is a plain
        # SequentialSampler when a batch sampler is given); pointing it here lets this class own the epoch.
        self.sampler = self

    def _slots(self):
        """This rank's slot in the global batch for each micro-batch position a: a * world_size + rank."""
        return [a * self.world_size + self.rank for a in range(self.accumulative_counts)]

    @staticmethod
    def _check_ratios(source_ratio, dataset):
        """Validate ``source_ratio`` against the sub-datasets; return it as a tuple of floats in dataset order."""
        if isinstance(source_ratio, Mapping):
            source_ratio = ratios_by_source(source_ratio, dataset)
        elif isinstance(source_ratio, str) or not isinstance(source_ratio, Sequence):
            raise TypeError(f'{RATIO_KEY} must be a dict of source name -> ratio (e.g. dict(real=0.7, '
                            f'synthetic=0.3)), got {source_ratio!r}')
        try:
            ratios = tuple(float(r) for r in source_ratio)
        except (TypeError, ValueError):
            raise TypeError(f'{RATIO_KEY} must map source names to numbers, got {source_ratio!r}') from None
        if len(ratios) != len(dataset.datasets):
            raise ValueError(f'{RATIO_KEY} gives {len(ratios)} ratio(s) for the {len(dataset.datasets)} '
                             'datasets of the ConcatDataset; give one per dataset')
        if any(not math.isfinite(r) or r < 0 for r in ratios):
            raise ValueError(f'{RATIO_KEY} must be finite and non-negative, got {list(source_ratio)}')
        if sum(ratios) == 0:
            raise ValueError(f'{RATIO_KEY} is all zero; at least one source must be drawn')
        for index, (ratio, sub_dataset) in enumerate(zip(ratios, dataset.datasets)):
            if ratio > 0 and len(sub_dataset) == 0:
                raise ValueError(f'dataset {index} of the ConcatDataset ({_describe(sub_dataset)}) is empty '
                                 f'but {RATIO_KEY} = {ratio} asks for its samples')
        return ratios

    def _check_every_source_fits(self):
        """Refuse a global batch too small to give each non-zero ratio at least one sample."""
        starved = [f'{i} ({_describe(self.dataset.datasets[i])})'
                   for i, (count, ratio) in enumerate(zip(self.source_counts, self.source_ratio))
                   if ratio > 0 and count == 0]
        if starved:
            slots = self.world_size * self.accumulative_counts
            suggestions = _valid_batch_sizes_near(self.source_ratio, slots, self.batch_size)
            accumulated = f' x {self.accumulative_counts} accumulated' if self.accumulative_counts > 1 else ''
            raise ValueError(
                f'a global batch of {self.world_size} x {self.batch_size}{accumulated} samples cannot hold an exact '
                f'{RATIO_KEY} = {list(self.source_ratio)} (in dataset order): dataset {", ".join(starved)} '
                f'would get 0 samples. Nearest valid train_dataloader.batch_size with {self.world_size} rank(s): '
                f'{" or ".join(map(str, suggestions))}')

    def set_epoch(self, epoch):
        """Start the next ``__iter__`` at training epoch ``epoch`` (called by mmengine's loops and hooks)."""
        self.epoch = epoch

    def __len__(self):
        """Batches per training epoch on each rank (every rank yields the same number)."""
        return self.num_batches_per_epoch

    def __iter__(self):
        """Yield this rank's batches (lists of ConcatDataset indices) from the start of ``self.epoch``, or from
        the batch :meth:`resume_at` named."""
        first = self.epoch * self.num_batches_per_epoch
        end = first + self.num_batches_per_epoch
        if self._start_batch is not None:
            first, self._start_batch = self._start_batch, None
        for batch_index in itertools.count(first) if self.infinite else range(first, end):
            yield self.rank_batch(batch_index)

    def resume_at(self, batch_index):
        """Make the next ``__iter__`` start at global batch ``batch_index`` (0-based, over the whole run),
        without drawing the batches before it; return the training epoch that batch belongs to.

        ``SpeaQIterBasedTrainLoop`` calls it when a run resumes, instead of loading and discarding every batch
        already trained on.
        """
        self.epoch = batch_index // self.num_batches_per_epoch
        self._start_batch = batch_index
        return self.epoch

    def rank_batch(self, batch_index):
        """This rank's batch (micro-batch) ``batch_index``, counted from 0 over the whole run: its part of global
        batch ``batch_index // accumulative_counts``.

        Args:
            batch_index (int): the training iteration.

        Returns:
            list[SeededIndex]: ``batch_size`` ConcatDataset indices, grouped by source, each seeded by (seed,
            batch index, rank, position) for its augmentation.
        """
        window, micro_batch = divmod(batch_index, self.accumulative_counts)
        slots = self.world_size * self.accumulative_counts
        counts, slot_starts = self._rotations[window % slots][micro_batch]
        parts = []
        for source, count in enumerate(counts):
            if count:
                start = self._stream_start(source, window) + int(slot_starts[source])
                parts.append(self._stream(source, start, int(count)))
        # Seeded by slot rather than (batch, rank), so 1 GPU x A and A GPUs x 1 augment a sample the same way.
        return seeded_batch(np.concatenate(parts).tolist(), self.seed, window,
                            self._slots()[micro_batch])

    def _stream_start(self, source, window):
        """Position in ``source``'s stream where global batch ``window`` starts taking samples."""
        count = int(self.source_counts[source])
        if window < self._resume_window:
            return window * count
        return int(self._resume_positions[source]) + (window - self._resume_window) * count

    def state_dict(self, next_batch):
        """What a checkpoint needs so the run continues each source's stream where it stopped.

        Args:
            next_batch (int): index of the first batch not yet trained on (the checkpoint's ``iter``).

        Returns:
            dict: ``seed``, ``next_batch`` and ``stream_positions`` (per source, the position where the global
            batch holding ``next_batch`` starts; with accumulation a resume inside a window redraws it).
        """
        window = next_batch // self.accumulative_counts
        positions = [self._stream_start(source, window) for source in range(len(self.source_counts))]
        return dict(seed=int(self.seed), next_batch=int(next_batch), stream_positions=positions)

    def load_state_dict(self, state):
        """Continue from a :meth:`state_dict`: its seed, and each source's saved stream position.

        From batch ``next_batch`` on, every source continues at its saved position, so the sequence goes on
        where it stopped even if the ratio, the batch size or the number of ranks changed. Batches before
        ``next_batch`` (which mmengine's ``IterBasedTrainLoop`` draws and discards when it fast-forwards)
        keep their uninterrupted-run content.
        """
        positions = list(state['stream_positions'])
        if len(positions) != len(self.source_counts):
            raise ValueError(f'the checkpoint\'s SGGRatioBatchSampler state has {len(positions)} sources, the '
                             f'config has {len(self.source_counts)}; resume with the same datasets')
        self.seed = int(state['seed'])
        self._resume_window = int(state['next_batch']) // self.accumulative_counts
        self._resume_positions = np.asarray(positions, dtype=np.int64)

    def _stream(self, source, start, count):
        """ConcatDataset indices at positions ``[start, start + count)`` of ``source``'s endless stream."""
        size = int(self.source_sizes[source])
        chunks = []
        position, end = start, start + count
        while position < end:
            pass_index, offset = divmod(position, size)
            take = min(end - position, size - offset)
            chunks.append(_source_permutation(self.seed, source, pass_index, size)[offset:offset + take])
            position += take
        return np.concatenate(chunks) + self.source_offsets[source]


def _describe(dataset):
    """A short name for a sub-dataset in error messages: its source name and annotation file when known."""
    details = [f'{key}={getattr(dataset, key)!r}' for key in ('source', 'ann_file')
               if getattr(dataset, key, None)]
    return ', '.join(details) or type(dataset).__name__
