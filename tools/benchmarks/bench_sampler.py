"""Benchmark SGGRatioBatchSampler's per-batch cost on VG-sized sources, next to mmdet's MultiSourceSampler.

    python tools/benchmarks/bench_sampler.py [--batches 5000] [--repeats 3] [--append-to docs/benchmarks.md]

Sources have the sizes of the VG150 train split (57,723 images) and of the synthetic set of the public fork
(10,043 images); the sampler only needs their lengths, so no data is read. For 4 simulated ranks it times
drawing ``--batches`` consecutive batches per rank (the per-pass permutations included, amortised; the best
of ``--repeats`` runs with different seeds, as the machine is shared) at a per-GPU batch of 20 (global 80)
and 5 (global 20, the recipe's global batch), ratio 0.7 / 0.3. mmdet's ``MultiSourceSampler`` is timed the
same way and its global composition is reported, since it rounds per GPU.
"""
import argparse
import datetime
import os
import platform
import sys
import time
from unittest import mock

import mmdet.datasets.samplers.multi_source_sampler as mmdet_multi_source  # noqa: E402
import numpy as np

from speaq_mm.datasets.samplers import SGGRatioBatchSampler  # noqa: E402

SOURCE_SIZES = (57723, 10043)
RATIO = (0.7, 0.3)
WORLD_SIZE = 4
HEADER = ('# Benchmarks\n\nEach section says the command that produced it, the machine, the date and the '
          'numbers.\n')


class SizedSources:
    """The part of a ConcatDataset the samplers read: sub-dataset lengths and cumulative sizes."""

    def __init__(self, sizes):
        self.datasets = [range(size) for size in sizes]
        self.cumulative_sizes = np.cumsum(sizes).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]


class RunnerSampler:
    """What the Runner hands a batch sampler: a sampler with ``dataset`` and ``seed``."""

    def __init__(self, dataset, seed):
        self.dataset = dataset
        self.seed = seed


def ratio_batches(dataset, batch_size, rank, seed):
    """SGGRatioBatchSampler's batches on ``rank``."""
    return iter(SGGRatioBatchSampler(RunnerSampler(dataset, seed), batch_size, RATIO, seed=seed, infinite=True,
                                  rank=rank, world_size=WORLD_SIZE))


def multi_source_batches(dataset, batch_size, rank, seed):
    """mmdet MultiSourceSampler's batches on ``rank`` (grouped the way torch's BatchSampler groups them)."""
    with mock.patch.object(mmdet_multi_source, 'get_dist_info', return_value=(rank, WORLD_SIZE)):
        indices = iter(mmdet_multi_source.MultiSourceSampler(dataset, batch_size, list(RATIO), seed=seed))
    while True:
        yield [next(indices) for _ in range(batch_size)]


def measure(make_batches, dataset, batch_size, num_batches, repeats):
    """Microseconds per batch on each rank (best of ``repeats`` seeds), and the first global batch's mix."""
    per_rank, first = [], []
    for rank in range(WORLD_SIZE):
        best = float('inf')
        for seed in range(repeats):  # a new seed per repeat, so every repeat shuffles its own passes
            batches = make_batches(dataset, batch_size, rank, seed)
            if seed == 0:
                first.extend(next(batches))
            start = time.perf_counter()
            for _ in range(num_batches):
                next(batches)
            best = min(best, (time.perf_counter() - start) / num_batches * 1e6)
        per_rank.append(best)
    return per_rank, composition(dataset, first)


def composition(dataset, indices):
    """Samples per source among ``indices``."""
    return np.bincount(np.searchsorted(dataset.cumulative_sizes, indices, side='right'),
                       minlength=len(dataset.datasets)).tolist()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batches', type=int, default=5000, help='batches drawn per rank and sampler')
    parser.add_argument('--repeats', type=int, default=3, help='repeats per rank; the fastest counts')
    parser.add_argument('--append-to', help='markdown file to append the results to (docs/benchmarks.md)')
    args = parser.parse_args(argv)

    dataset = SizedSources(SOURCE_SIZES)
    rows = []
    for batch_size in (20, 5):
        for name, make_batches in (('SGGRatioBatchSampler', ratio_batches),
                                   ('mmdet MultiSourceSampler', multi_source_batches)):
            per_rank, counts = measure(make_batches, dataset, batch_size, args.batches, args.repeats)
            rows.append(f'| {name} | {WORLD_SIZE} x {batch_size} | {np.mean(per_rank):.1f} | '
                        f'{max(per_rank):.1f} | {counts[0]} + {counts[1]} |')
    arguments = sys.argv[1:] if argv is None else argv
    command = ' '.join(['python tools/benchmarks/bench_sampler.py', *arguments])
    section = '\n'.join([
        f'\n## Multi-source batch sampler ({datetime.date.today().isoformat()})\n',
        f'Command: `{command}`. Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), Python '
        f'{platform.python_version()}, numpy {np.__version__}. Sources of {SOURCE_SIZES[0]:,} and '
        f'{SOURCE_SIZES[1]:,} samples, ratio {RATIO[0]} / {RATIO[1]}, best of {args.repeats} runs of '
        f'{args.batches} consecutive batches per simulated rank (per-pass shuffles included); 1-minute load '
        f'average {os.getloadavg()[0]:.1f} at the end.\n',
        '| sampler | ranks x per-GPU batch | mean us per batch and rank | slowest rank | first global batch '
        '(real + synthetic) |',
        '|---|---|---|---|---|',
        *rows, ''])
    print(section)
    if args.append_to:
        fresh = not os.path.exists(args.append_to)
        with open(args.append_to, 'a') as f:
            f.write((HEADER if fresh else '') + section)


if __name__ == '__main__':
    main()
