"""Train the tiny SpeaQ on the toy real + synthetic mix within a time budget and evaluate it: the `make demo`
run (``tools/demo.py``) and the convergence benchmark (``tools/benchmarks/toy_convergence.py``).

:func:`train_and_evaluate` generates the toy datasets when missing (``speaq_mm.datasets.toy_scenes``, real
style with seed 0 and synthetic style with seed 1, as docs/getting_started.md writes them), trains the given
config for at most ``minutes`` or ``max_iters``, evaluates the toy *test* split every ``val_interval``
iterations and at the end, and writes ``metrics.json``, ``learning_curve.png`` and ``loss_curve.png``.
:func:`run_command_line` never writes over an earlier run: when the work dir holds one's results, the new
run goes to a timestamped sibling folder (``--overwrite`` writes into the earlier one instead).
"""
import argparse
import glob
import os
import os.path as osp
import time

from ..utils.atomic_io import atomic_dump
from ..utils.output_guard import fresh_run_dir

# What the toy configs read (configs/_base_/datasets/toy_real.py and toy_synthetic.py).
TOY_DATASETS = (('toy_real', 'real', 0), ('toy_synthetic', 'synthetic', 1))


def ensure_toy_data(data_dir, num_train, num_test, log=print):
    """Generate ``data_dir``/toy_real and toy_synthetic (VG layout, where the toy configs look) unless they
    already exist."""
    from ..datasets.toy_scenes import make_toy_scenes
    for name, style, seed in TOY_DATASETS:
        out_dir = osp.join(data_dir, name)
        if osp.isfile(osp.join(out_dir, 'VG-SGG-with-attri.h5')):
            log(f'[data] {out_dir} exists; reusing it')
            continue
        start = time.perf_counter()
        summary = make_toy_scenes(out_dir, num_train=num_train, num_test=num_test, style=style, seed=seed)
        log(f'[data] {out_dir}: {summary["images"]} images, {summary["relations"]} relations '
            f'({time.perf_counter() - start:.0f} s)')


def toy_data_options(data_dir):
    """``--cfg-options`` pointing the toy mix config's datasets at ``data_dir``/toy_real and toy_synthetic."""
    real, synthetic = (osp.join(data_dir, name) + '/' for name, _, _ in TOY_DATASETS)
    return {
        'train_dataloader.dataset.datasets.0.data_root': real,
        'train_dataloader.dataset.datasets.1.data_root': synthetic,
        'val_dataloader.dataset.data_root': real,
        'test_dataloader.dataset.data_root': real,
    }


def _hook_base():
    from mmengine.hooks import Hook
    return Hook


def make_progress_hook(minutes, log, decay_at=0.8, gamma=0.1):
    """A hook that prints progress with an ETA, records validation metrics, lowers the learning rate by
    ``gamma`` once ``decay_at`` of the iteration or the time budget is used (whichever comes first: a
    time-limited run still gets the schedule's final low-lr phase) and stops at the time budget."""

    class ToyProgressHook(_hook_base()):
        priority = 'LOW'

        def __init__(self):
            self.start = None
            self.curve = []
            self.losses = []
            self.train_seconds = 0.0
            self.decayed = False

        def before_train(self, runner):
            self.start = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            elapsed = time.perf_counter() - self.start
            done, total = runner.iter + 1, runner.max_iters
            value = (outputs or {}).get('loss', float('nan'))
            loss = float(value.detach() if hasattr(value, 'detach') else value)
            self.losses.append((done, loss))
            if done % 20 == 0 or done == total:
                eta = elapsed / done * (total - done)
                log(f'[train] iter {done}/{total}  loss {loss:.3f}  {elapsed / done:.2f} s/iter  '
                    f'elapsed {elapsed / 60:.1f} min  eta {eta / 60:.1f} min')
            if not self.decayed and max(done / total, elapsed / (minutes * 60)) >= decay_at:
                self.decayed = True
                for group in runner.optim_wrapper.optimizer.param_groups:
                    group['lr'] *= gamma
                log(f'[train] learning rate x{gamma} at iteration {done} ({elapsed / 60:.1f} min)')
            if elapsed > minutes * 60 and not runner.train_loop.stop_training:
                log(f'[train] time budget of {minutes} min reached at iteration {done}; stopping')
                runner.train_loop.stop_training = True

        def after_val_epoch(self, runner, metrics=None):
            values = {key.split('/')[-1]: float(value) for key, value in (metrics or {}).items()
                      if isinstance(value, (int, float))}
            self.curve.append(dict(iter=runner.iter, **values))
            log(f'[val] iter {runner.iter}: R@50 {values.get("R@50", float("nan")):.3f}  '
                f'mR@50 {values.get("mR@50", float("nan")):.3f}')

        def after_train(self, runner):
            self.train_seconds = time.perf_counter() - self.start

    return ToyProgressHook()


def build_toy_runner(config, work_dir, max_iters, val_interval, progress_hook, cfg_options=None):
    """A Runner for ``config`` that validates on the toy test split and trains for ``max_iters``."""
    from ..engine import build_runner, load_run_config
    cfg = load_run_config(config, cfg_options, work_dir)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = val_interval
    cfg.param_scheduler = None  # the progress hook lowers the lr at 80% of the iteration or time budget
    cfg.default_hooks.checkpoint.interval = max_iters
    # The curve is measured on the test split (the toy val split is a small carve-out of train).
    cfg.val_dataloader = cfg.test_dataloader
    cfg.val_evaluator = cfg.test_evaluator
    runner = build_runner(cfg)
    runner.register_hook(progress_hook)
    return runner


def plot_curves(work_dir, curve, losses):
    """learning_curve.png (R@50, mR@50 vs iterations) and loss_curve.png (training loss vs iterations, with
    its running mean over 20 iterations)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = {}
    if curve:
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in ('R@50', 'mR@50'):
            values = [point.get(key, float('nan')) for point in curve]
            ax.plot([point['iter'] for point in curve], values, marker='o', label=key)
        ax.set_xlabel('iteration')
        ax.set_ylabel('recall on the toy test split')
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        paths['learning_curve'] = osp.join(work_dir, 'learning_curve.png')
        fig.savefig(paths['learning_curve'], dpi=100, bbox_inches='tight')
        plt.close(fig)
    if losses:
        iterations, values = zip(*losses)
        window = [values[max(0, i - 19):i + 1] for i in range(len(values))]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(iterations, values, alpha=0.3, label='per iteration')
        ax.plot(iterations, [sum(w) / len(w) for w in window], label='mean of 20')
        ax.legend()
        ax.set_xlabel('iteration')
        ax.set_ylabel('training loss (all terms, all layers)')
        ax.grid(alpha=0.3)
        paths['loss_curve'] = osp.join(work_dir, 'loss_curve.png')
        fig.savefig(paths['loss_curve'], dpi=100, bbox_inches='tight')
        plt.close(fig)
    return paths


def train_and_evaluate(config, work_dir, minutes, max_iters, val_interval, data_dir, num_train, num_test,
                       cfg_options=None, log=print):
    """Generate data, train within the budget, test, plot, and write ``metrics.json``; return its content."""
    os.makedirs(work_dir, exist_ok=True)
    ensure_toy_data(data_dir, num_train, num_test, log)
    hook = make_progress_hook(minutes, log)
    options = dict(toy_data_options(data_dir), **(cfg_options or {}))
    runner = build_toy_runner(config, work_dir, max_iters, val_interval, hook, options)
    runner.train()
    iterations = runner.iter
    log('[test] evaluating on the toy test split')
    metrics = runner.test()
    final = {key.split('/')[-1]: float(value) for key, value in metrics.items()
             if isinstance(value, (int, float))}
    plots = plot_curves(work_dir, hook.curve + [dict(iter=iterations, **final)], hook.losses)
    checkpoint = osp.join(work_dir, f'iter_{iterations}.pth')
    if not osp.isfile(checkpoint):
        runner.save_checkpoint(work_dir, f'iter_{iterations}.pth')
    result = dict(final, iterations=iterations, train_minutes=hook.train_seconds / 60,
                  seconds_per_iteration=hook.train_seconds / max(iterations, 1),
                  config=config, curve=hook.curve, checkpoint=checkpoint,
                  log=osp.join(runner.log_dir, f'{runner.timestamp}.log'), **plots)
    atomic_dump(result, osp.join(work_dir, 'metrics.json'))
    return result


def holds_run_results(work_dir):
    """Whether ``work_dir`` holds the results of a run (``metrics.json``, checkpoints, ``last_checkpoint``)."""
    return any(osp.exists(osp.join(work_dir, name)) for name in ('metrics.json', 'last_checkpoint')) or bool(
        glob.glob(osp.join(glob.escape(work_dir), '*.pth')))


def run_command_line(argv, description, repo, work_dir, minutes, max_iters, val_interval):
    """Parse the options shared by ``tools/demo.py`` and ``tools/benchmarks/toy_convergence.py`` (with the
    caller's defaults; paths default to places inside the checkout ``repo``) and run :func:`train_and_evaluate`.

    Returns:
        tuple: the parsed options (``work_dir`` the folder actually written), the ``metrics.json`` content and
        the total minutes taken.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=osp.join(repo, 'configs', 'toy', 'speaq_tiny_toy_mix.py'))
    parser.add_argument('--work-dir', default=osp.join(repo, 'work_dirs', work_dir))
    parser.add_argument('--minutes', type=float, default=minutes, help='training time budget')
    parser.add_argument('--max-iters', type=int, default=max_iters, help='iteration budget (the lr drops at 80%%)')
    parser.add_argument('--val-interval', type=int, default=val_interval,
                        help='test-split evaluation every N iterations')
    parser.add_argument('--data-dir', default=osp.join(repo, 'data'), help='holds (or receives) toy_real and '
                        'toy_synthetic')
    parser.add_argument('--num-train', type=int, default=2000,
                        help='train images per toy dataset when generated')
    parser.add_argument('--num-test', type=int, default=300,
                        help='test images per toy dataset when generated')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into --work-dir even if it holds an earlier run (replacing its checkpoint and '
                             'metrics); by default such a run goes to a new <work-dir>_<timestamp> folder')
    args = parser.parse_args(argv)
    if not args.overwrite:
        args.work_dir = fresh_run_dir(args.work_dir, holds_run_results, log=lambda line: print(f'[demo] {line}'))
    start = time.perf_counter()
    result = train_and_evaluate(args.config, args.work_dir, args.minutes, args.max_iters, args.val_interval,
                                args.data_dir, args.num_train, args.num_test)
    return args, result, (time.perf_counter() - start) / 60
