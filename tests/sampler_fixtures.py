"""Tiny in-memory sources, simulated ranks and a batch-recording model for the multi-source sampler tests.

Imported through ``custom_imports`` by the runner configs the tests write, so the registered stand-ins exist
wherever the config is built.
"""
import os
import os.path as osp
import subprocess
import sys
from collections import Counter

import numpy as np
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

import speaq_mm.engine.hooks  # noqa: F401  (registers SGGSourceMixHook until speaq_mm.engine imports it)
from speaq_mm.datasets import SGGConcatDataset
from speaq_mm.datasets.samplers import SGGRatioBatchSampler

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The ratio settings the issue asks every test grid to cover.
RATIOS = ([0.7, 0.3], [0.5, 0.5], [1.0, 0.0], [0.33, 0.67])


@DATASETS.register_module()
class SamplerTestSource(BaseDataset):
    """``size`` numbered samples of one source; records carry ``source``, ``sample_weight`` and ``uid``.

    ``uid`` is ``'<source>/<i>'`` so a drawn sample names its source and position without the dataset.
    Metainfo holds a vocabulary and train statistics in the layout of ``VGH5Dataset``.
    """

    sample_weight = 1.0  # as VGH5Dataset: SGGConcatDataset(sample_weights=...) sets another per source

    def __init__(self, size, source, fg_rel_count=(1, 2, 3), triplets=((0, 1, 0),)):
        self.size = size
        self.source = source
        metainfo = dict(classes=('a', 'b'), predicates=('p', 'q', 'r'),
                        fg_rel_count=np.asarray(fg_rel_count, dtype=np.int64),
                        obj_count=np.asarray([size, 2 * size], dtype=np.int64),
                        triplets=np.asarray(triplets, dtype=np.int64),
                        split_counts=dict(train=dict(images=size, relations=int(np.sum(fg_rel_count)))))
        super().__init__(metainfo=metainfo, serialize_data=False)

    def load_data_list(self):
        return [dict(uid=f'{self.source}/{i}', source=self.source) for i in range(self.size)]

    def get_data_info(self, idx):
        # Read at access time, as VGH5Dataset does, so SGGConcatDataset(sample_weights=...) reaches it.
        return dict(super().get_data_info(idx), sample_weight=self.sample_weight)

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        sample = BaseDataElement(metainfo=dict(uid=info['uid'], source=info['source'],
                                               sample_weight=info['sample_weight']))
        return dict(inputs=torch.ones(1), data_samples=sample)


@MODELS.register_module()
class SamplerTestRecorder(BaseModel):
    """Records the ``uid`` of every training sample, batch by batch; its loss trains one weight."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            self.seen.append([sample.uid for sample in data_samples])
            return dict(loss=((self.weight - torch.stack(inputs)) ** 2).mean())
        return self.weight


def make_sources(sizes=(23, 7), sources=('real', 'synthetic'), sample_weights=(1.0, 0.5)):
    """A ConcatDataset (statistics from the real source) of :class:`SamplerTestSource`, one per size."""
    return SGGConcatDataset([SamplerTestSource(size, source) for size, source in zip(sizes, sources)],
                            sample_weights=dict(zip(sources, sample_weights)))


class _SamplerArgs:
    """The part of the Runner's sampler a SGGRatioBatchSampler reads: its dataset and seed."""

    def __init__(self, dataset, seed):
        self.dataset = dataset
        self.seed = seed


def ratio_samplers(dataset, batch_size, source_ratio, world_size, seed=0, **kwargs):
    """One SGGRatioBatchSampler per simulated rank."""
    return [SGGRatioBatchSampler(_SamplerArgs(dataset, seed), batch_size, source_ratio, rank=rank,
                              world_size=world_size, **kwargs) for rank in range(world_size)]


def global_batches(samplers, first, count):
    """Rank batches of global batches ``first .. first + count - 1``: a list of per-rank index lists."""
    return [[sampler.rank_batch(t) for sampler in samplers] for t in range(first, first + count)]


def source_of(dataset, index):
    """Position of the sub-dataset a ConcatDataset index falls in."""
    return int(np.searchsorted(dataset.cumulative_sizes, index, side='right'))


def check_batches(dataset, rank_batches_per_step, expected_counts, batch_size):
    """Assert the properties every global batch must have; return the per-source draws in stream order.

    For each global batch: each rank holds ``batch_size`` samples; the sources' global counts equal
    ``expected_counts``; each source's per-rank counts differ by at most 1. Over the sequence: every rank
    is short of the larger share equally often over ``world_size`` consecutive batches (checked by the caller
    through the returned per-rank tallies).

    Returns:
        tuple(list[list[int]], np.ndarray): per source, the drawn indices in order (ranks in rank order
        within a batch); and (world_size, num_sources) total counts per rank.
    """
    num_sources = len(expected_counts)
    world_size = len(rank_batches_per_step[0])
    streams = [[] for _ in range(num_sources)]
    rank_totals = np.zeros((world_size, num_sources), dtype=np.int64)
    for rank_batches in rank_batches_per_step:
        per_rank = np.zeros((world_size, num_sources), dtype=np.int64)
        for rank, batch in enumerate(rank_batches):
            assert len(batch) == batch_size
            for index in batch:
                per_rank[rank, source_of(dataset, index)] += 1
        assert per_rank.sum(axis=0).tolist() == list(expected_counts)
        assert (per_rank.max(axis=0) - per_rank.min(axis=0)).max() <= 1
        rank_totals += per_rank
        for source in range(num_sources):
            for batch in rank_batches:
                streams[source].extend(i for i in batch if source_of(dataset, i) == source)
    return streams, rank_totals


def assert_passes_without_repeats(streams, sizes):
    """Every consecutive window of a source's size in its stream is a permutation of that source."""
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for stream, size, offset in zip(streams, sizes, offsets):
        for start in range(0, len(stream) - size + 1, size):
            assert sorted(stream[start:start + size]) == list(range(offset, offset + size))
        tail = stream[len(stream) - len(stream) % size:]
        assert len(set(tail)) == len(tail)


def max_draw_imbalance(stream):
    """Largest difference between how often two drawn samples were drawn (0 or 1 without replacement)."""
    counts = Counter(stream).values()
    return max(counts) - min(counts) if counts else 0


def run_torchrun(script, nproc, args, port, timeout=600):
    """Run ``script`` under ``python -m torch.distributed.run`` with ``nproc`` CPU processes."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(nproc),
               '--master_addr', '127.0.0.1', '--master_port', str(port), script, *args]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


TOY_MIX_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'toy_mix.py')
# Split-0 images of the small toy sets; toy_mix_options carves TOY_VAL_IMAGES of each out for val, which
# leaves about 30 real and 11 synthetic training images, so the tests cycle through several passes of each.
TOY_SIZES = dict(real=36, synthetic=17)
TOY_VAL_IMAGES = 6


def make_toy_roots(folder):
    """Generate a small real-style and synthetic-style toy set under ``folder``; return their data roots."""
    from speaq_mm.datasets.toy_scenes import make_toy_scenes
    roots = {}
    for style, num_train in TOY_SIZES.items():
        roots[style] = osp.join(folder, f'toy_{style}') + '/'
        make_toy_scenes(roots[style], num_train=num_train, num_test=2, style=style, seed=3)
    return roots


def toy_mix_options(roots, **extra):
    """``--cfg-options`` that point toy_mix.py at ``roots`` and keep its dataloader in this process."""
    options = {'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False}
    for position, style in enumerate(('real', 'synthetic')):
        key = f'train_dataloader.dataset.datasets.{position}'
        options[f'{key}.data_root'] = roots[style]
        options[f'{key}.num_val_images'] = TOY_VAL_IMAGES
    options.update(extra)
    return options
