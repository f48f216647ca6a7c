"""Run in every process of a torchrun launch: build the mix dataloader from a config and record 50 batches.

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_sampler_check.py CONFIG OUT_JSON \
        [--num-batches 50] [--cfg-options KEY=VALUE ...]

Each rank initialises gloo the way tools/train.py does on a CPU machine (speaq_mm.engine.prepare_launch),
builds ``train_dataloader`` with mmengine's Runner.build_dataloader, draws the batches through the full
pipeline and gathers, per batch and rank, the ``(source, img_id, sample_weight)`` of every packed sample and
the source fractions SGGSourceMixHook logs for the batch (reduced over the ranks). Rank 0 writes them with the
sizes of the sources to OUT_JSON; tests/test_sampler_distributed.py checks them.
"""
import argparse
import json
from types import SimpleNamespace

from mmengine.config import DictAction
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from speaq_mm.engine import close_process_group, load_run_config
from speaq_mm.engine.hooks import SGGSourceMixHook


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('out')
    parser.add_argument('--num-batches', type=int, default=50)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args()

    cfg = load_run_config(args.config, args.cfg_options, work_dir='unused', launcher='pytorch')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    rank, world_size = get_dist_info()
    # A dataset-only config has no randomness.seed: the sampler then draws one seed and shares it over
    # the ranks (mmengine's sync_random_seed), which this check exercises.
    dataloader = Runner.build_dataloader(cfg.train_dataloader, seed=cfg.get('randomness', {}).get('seed'))
    # The parts of a Runner that SGGSourceMixHook uses.
    runner = SimpleNamespace(train_loop=SimpleNamespace(dataloader=dataloader), iter=0,
                             message_hub=MessageHub.get_instance('dist_sampler_check'))
    hook = SGGSourceMixHook()
    hook.before_train(runner)
    batches = iter(dataloader)
    drawn, logged = [], []
    for index in range(args.num_batches):
        data_batch = next(batches)
        drawn.append([[s.metainfo['source'], str(s.metainfo['img_id']), s.metainfo['sample_weight']]
                      for s in data_batch['data_samples']])
        hook.after_train_iter(runner, index, data_batch)
        logged.append({name: runner.message_hub.get_scalar(f'train/source_frac_{name}').current()
                       for name in ('real', 'synthetic')})
    gathered = all_gather_object(drawn)  # [rank][batch][sample]
    gathered_logs = all_gather_object(logged)  # [rank][batch]
    if rank == 0:
        dataset = dataloader.dataset
        result = dict(world_size=world_size, batch_size=dataloader.batch_sampler.batch_size,
                      source_ratio=list(dataloader.batch_sampler.source_ratio),
                      sources=[part.source for part in dataset.datasets],
                      source_sizes=[len(part) for part in dataset.datasets],
                      batches=[[gathered[r][t] for r in range(world_size)] for t in range(args.num_batches)],
                      logged_fractions=gathered_logs)
        with open(args.out, 'w') as f:
            json.dump(result, f)
    close_process_group()  # as the tools do: a gloo group left alive can abort the process at exit


if __name__ == '__main__':
    main()
