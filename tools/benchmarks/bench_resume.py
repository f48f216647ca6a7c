"""Time from ``runner.train()`` to the end of the first resumed iteration, at an early and a late iteration.

    python tools/benchmarks/bench_resume.py [--iterations 10 10000] [--replay-iterations 10 100]

Trains the toy mix recipe (``configs/toy/speaq_tiny_toy_mix.py``, one dataloader worker) for 10 iterations,
then writes copies of its checkpoint that claim to stop at each of ``--iterations`` (the schedule, weights and
sampler state are those of iteration 10; only the position counts) and resumes each for one iteration:

* with ``SpeaQIterBasedTrainLoop`` (the recipe's loop), which moves the batch sampler to the resumed batch;
* with mmengine's ``IterBasedTrainLoop`` for ``--replay-iterations``, which loads and discards every trained
  batch, for comparison (it grows with the iteration, so only small ones are timed).

Prints one line per run and a Markdown table for docs/benchmarks.md.
"""
import argparse
import os.path as osp
import tempfile
import time

from speaq_mm.apis.toy_demo import ensure_toy_data, toy_data_options

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIG = osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_mix.py')


def _runner(work_dir, name, options):
    from speaq_mm.engine import build_runner, load_run_config
    cfg = load_run_config(CONFIG, dict(options, **{'visualizer.name': name}), work_dir)
    return build_runner(cfg)


def first_iteration_seconds(checkpoint, iteration, work_dir, options, loop):
    """Seconds from ``runner.train()`` to the end of the first iteration resumed from ``checkpoint``."""
    from mmengine.hooks import Hook

    class FirstIteration(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.done = time.perf_counter()

    options = dict(options, **{'train_cfg.max_iters': iteration + 1, 'train_cfg.type': loop,
                               'train_cfg.val_interval': 10 ** 9, 'default_hooks.checkpoint.interval': 10 ** 9,
                               'resume': True, 'load_from': checkpoint})
    runner = _runner(work_dir, f'resume_{loop}_{iteration}', options)
    probe = FirstIteration()
    runner.register_hook(probe)
    start = time.perf_counter()
    runner.train()
    return probe.done - start


def main(argv=None):
    """Run the measurement; return ``{(loop, iteration): seconds}``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iterations', type=int, nargs='+', default=[10, 10000])
    parser.add_argument('--replay-iterations', type=int, nargs='*', default=[10, 100])
    parser.add_argument('--data-dir', default=osp.join(REPO, 'work_dirs', 'bench_toy'))
    args = parser.parse_args(argv)
    import torch

    from speaq_mm.utils import load_torch_file
    ensure_toy_data(args.data_dir, num_train=300, num_test=20)
    options = dict(toy_data_options(args.data_dir), **{'train_cfg.max_iters': 10, 'default_hooks.logger.interval': 5,
                                                        'default_hooks.checkpoint.interval': 10,
                                                        'default_hooks.checkpoint.save_best': None,
                                                        'train_cfg.val_interval': 10 ** 9})
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        _runner(osp.join(folder, 'trained'), 'resume_trained', options).train()
        trained = load_torch_file(osp.join(folder, 'trained', 'iter_10.pth'))
        for loop, iterations in (('SpeaQIterBasedTrainLoop', args.iterations),
                                 ('IterBasedTrainLoop', args.replay_iterations)):
            for iteration in iterations:
                checkpoint = dict(trained, meta=dict(trained['meta'], iter=iteration))
                checkpoint['meta'].pop('ratio_batch_sampler', None)  # the sampler continues at batch `iteration`
                path = osp.join(folder, f'at_{iteration}.pth')
                torch.save(checkpoint, path)
                seconds = first_iteration_seconds(path, iteration, osp.join(folder, f'{loop}_{iteration}'),
                                                  options, loop)
                results[(loop, iteration)] = seconds
                print(f'{loop} resumed at iteration {iteration}: first iteration done after {seconds:.2f} s')
    print('\n| loop | resumed at | seconds to the end of the first resumed iteration |\n|---|---|---|')
    for (loop, iteration), seconds in results.items():
        print(f'| {loop} | {iteration:,} | {seconds:.2f} |')
    return results


if __name__ == '__main__':
    main()
