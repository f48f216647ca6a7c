"""Run in every process of a torchrun launch: one optimizer step of the tiny SpeaQ on 20 fixed images.

    python -m torch.distributed.run --nproc_per_node N tests/dist_accumulation_check.py OUT \
        --accumulative-counts A [--match-normaliser per_micro_batch]

The 20 images are 14 'real' (loss weight 1) and 6 'synthetic' (0.5) random scene graphs. SGGRatioBatchSampler
(ratio 0.7 / 0.3, batch 5, N ranks, A micro-batches) deals them; every rank runs its A micro-batches through
mmengine's machinery (MMDistributedDataParallel when N > 1, the non-finite guard optimizer wrapper with
``accumulative_counts=A``, plain SGD) and rank 0 saves the parameters after the step and the indices every
(micro-batch, rank) drew to OUT. tests/test_engine_gradient_accumulation.py compares N x A = 1 x 4 with 4 x 1.
"""
import argparse
import os
import os.path as osp
from types import SimpleNamespace

import torch
import torch.distributed as dist
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.model import MMDistributedDataParallel

from speaq_mm.datasets.samplers import SGGRatioBatchSampler
from speaq_mm.engine import close_process_group
from speaq_mm.engine.optim_wrappers import SpeaQNonFiniteGuardOptimWrapper
from speaq_mm.testing.random_batches import random_batch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SOURCES = (('real', 14, 1.0), ('synthetic', 6, 0.5))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out')
    parser.add_argument('--accumulative-counts', type=int, default=1)
    parser.add_argument('--match-normaliser', default='per_micro_batch')
    args = parser.parse_args()
    if int(os.environ.get('WORLD_SIZE', '1')) > 1:
        dist.init_process_group('gloo')
    rank, world_size = get_dist_info()
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models', 'speaq_tiny.py'))
    cfg.model.bbox_head.criterion.match_normaliser = args.match_normaliser
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.set_train_statistics(dict(fg_rel_count=[50, 30, 10, 5, 3, 2]))
    model.train()

    inputs, samples = random_batch(20, 64, 64, 4, 6, 6, 6, seed=1)
    first = 0
    for source, size, weight in SOURCES:
        for sample in samples[first:first + size]:
            sample.set_metainfo(dict(source=source, sample_weight=weight))
        first += size
    dataset = SimpleNamespace(cumulative_sizes=[14, 20], datasets=[list(range(14)), list(range(6))])
    sampler = SGGRatioBatchSampler(SimpleNamespace(dataset=dataset, seed=0), batch_size=5,
                                   source_ratio=[0.7, 0.3], rank=rank, world_size=world_size,
                                   accumulative_counts=args.accumulative_counts)
    wrapped = MMDistributedDataParallel(model, find_unused_parameters=True) if world_size > 1 else model
    optim_wrapper = SpeaQNonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05), accumulative_counts=args.accumulative_counts)
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    drawn = []
    for iteration in range(args.accumulative_counts):
        indices = [int(index) for index in sampler.rank_batch(iteration)]
        drawn.append(indices)
        with optim_wrapper.optim_context(wrapped):
            losses = wrapped(inputs[indices], [samples[i] for i in indices], mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)
    gathered = all_gather_object(drawn) if world_size > 1 else [drawn]  # [rank][micro-batch]
    if rank == 0:
        torch.save(dict(initial=initial, params={name: p.detach().clone() for name, p in model.named_parameters()},
                        batches=gathered, sources=[s.metainfo['source'] for s in samples]), args.out)
    close_process_group()  # as the tools do: a gloo group left alive can abort the process at exit


if __name__ == '__main__':
    main()
