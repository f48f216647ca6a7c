"""Train the tiny SpeaQ on the toy real + synthetic mix within a time budget and evaluate it: the `make demo`
run (``tools/demo.py``) and the convergence benchmark (``tools/benchmarks/toy_convergence.py``).

:func:`train_and_evaluate` generates the toy datasets when missing (``speaq_mm.datasets.toy_scenes``, real
style with seed 0 and synthetic style with seed 1, as docs/getting_started.md writes them), trains the given
config for at most ``minutes`` or ``max_iters``, evaluates the toy *test* split every ``val_interval``
iterations and at the end, and writes ``metrics.json``, ``learning_curve.png`` and ``loss_curve.png``.
:func:`holds_run_results` tells ``tools/demo.py`` whether a work dir holds an earlier run, which it then keeps
(the new run goes to a timestamped sibling folder unless ``--overwrite``).
"""
import glob
import math
import os
import os.path as osp
import time
from collections import Counter

from mmengine.hooks import Hook

from ..datasets.toy_scenes import make_toy_scenes
from ..engine import build_runner, load_run_config
from ..utils.atomic_io import atomic_dump

# What the toy configs read (configs/_base_/datasets/toy_real.py and toy_synthetic.py).
TOY_DATASETS = (('toy_real', 'real', 0), ('toy_synthetic', 'synthetic', 1))


def ensure_toy_data(data_dir, num_train, num_test, log=print):
    """Generate ``data_dir``/toy_real and toy_synthetic (VG layout, where the toy configs look) unless they
    already exist."""
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


def toy_param_scheduler(max_iters, decay_at=0.8, gamma=0.1):
    """The toy run's learning-rate schedule: mmengine's ``MultiStepLR`` multiplying the rate by ``gamma`` from
    the first iteration after ``decay_at`` of ``max_iters`` have been trained (iteration ``ceil(decay_at *
    max_iters)``, 0-based); `ToyProgressHook` brings that milestone forward when the time budget runs out
    first."""
    milestone = math.ceil(decay_at * max_iters)
    while milestone > 1 and (milestone - 1) / max_iters >= decay_at:  # float rounding of decay_at * max_iters
        milestone -= 1
    return [dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[milestone], gamma=gamma)]


class ToyProgressHook(Hook):
    """Print progress with an ETA, record validation metrics and training losses, and stop at the time budget.

    A time-limited run still gets the schedule's final low-lr phase: once ``decay_at`` of the time budget is
    used, the hook moves the milestone of the run's ``MultiStepLR`` (`toy_param_scheduler`) to the next
    iteration, unless the rate has dropped already. It runs before ``ParamSchedulerHook`` (priority LOW), which
    then applies the drop to that next iteration exactly as an iteration milestone would be.
    """

    priority = 'NORMAL'

    def __init__(self, minutes, log=print, decay_at=0.8):
        self.minutes = minutes
        self.log = log
        self.decay_at = decay_at
        self.start = None
        self.curve = []
        self.losses = []
        self.train_seconds = 0.0

    def before_train(self, runner):
        """Start the clock."""
        self.start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Record the loss, print progress, move the lr milestone and stop at the time budget."""
        elapsed = time.perf_counter() - self.start
        done, total = runner.iter + 1, runner.max_iters
        value = (outputs or {}).get('loss', float('nan'))
        loss = float(value.detach() if hasattr(value, 'detach') else value)
        self.losses.append((done, loss))
        if done % 20 == 0 or done == total:
            eta = elapsed / done * (total - done)
            self.log(f'[train] iter {done}/{total}  loss {loss:.3f}  {elapsed / done:.2f} s/iter  '
                     f'elapsed {elapsed / 60:.1f} min  eta {eta / 60:.1f} min')
        scheduler, = runner.param_schedulers
        if elapsed / (self.minutes * 60) >= self.decay_at and min(scheduler.milestones) > done:
            scheduler.milestones = Counter([done])
            self.log(f'[train] learning rate x{scheduler.gamma} from iteration {done} ({elapsed / 60:.1f} min, '
                     f'{self.decay_at:.0%} of the time budget)')
        if elapsed > self.minutes * 60 and not runner.train_loop.stop_training:
            self.log(f'[train] time budget of {self.minutes} min reached at iteration {done}; stopping')
            runner.train_loop.stop_training = True

    def after_val_epoch(self, runner, metrics=None):
        """Record the validation metrics of the learning curve."""
        values = {key.split('/')[-1]: float(value) for key, value in (metrics or {}).items()
                  if isinstance(value, (int, float))}
        self.curve.append(dict(iter=runner.iter, **values))
        self.log(f'[val] iter {runner.iter}: R@50 {values.get("R@50", float("nan")):.3f}  '
                 f'mR@50 {values.get("mR@50", float("nan")):.3f}')

    def after_train(self, runner):
        """Stop the clock."""
        self.train_seconds = time.perf_counter() - self.start


def build_toy_runner(config, work_dir, max_iters, val_interval, progress_hook, cfg_options=None):
    """A Runner for ``config`` that validates on the toy test split and trains for ``max_iters`` under
    `toy_param_scheduler`."""
    cfg = load_run_config(config, cfg_options, work_dir)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = val_interval
    cfg.param_scheduler = toy_param_scheduler(max_iters)
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
    hook = ToyProgressHook(minutes, log)
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

