"""Small toy runs for the reliability tests: data, a config writer, a recording hook and process helpers.

The configs that :func:`write_run_config` writes inherit the shipped ``configs/toy/speaq_tiny_toy_mix.py`` and
only shrink it (tiny data, batch, schedule) and add :class:`ReliabilityProbeHook`, so the tests exercise the
recipe users run, with the safeguards it ships (its default hooks), and no other. They import this module
through ``custom_imports``, so processes started by torchrun or by ``tools/train.py`` register the same hook.
"""
import functools
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import time

import mmengine.config.config as mmengine_config
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import HOOKS, METRICS, TRANSFORMS
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from speaq_mm.utils import atomic_io

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_MIX_CONFIG = osp.join(REPO_ROOT, 'configs', 'toy', 'speaq_tiny_toy_mix.py')
TOY_REAL_CONFIG = osp.join(REPO_ROOT, 'configs', 'toy', 'speaq_tiny_toy_real.py')
RELIABILITY_IMPORTS = ['speaq_mm', 'tests.reliability_fixtures']
# Real: 16 train-split images (the first VAL_IMAGES are val, as in the recipe) and 5 test images (an odd
# number, so that two ranks need padding).
REAL_TRAIN, REAL_TEST, SYNTHETIC_TRAIN, VAL_IMAGES = 16, 5, 8, 4
# The best checkpoint is chosen by a score that changes with every update of the weights (a toy model trained
# for a few iterations recalls nothing: sgg/R@50 would be 0.0 at every validation).
BEST_KEY = 'probe/score'


def _memoize_config_formatting():
    """Format each distinct config text once per process.

    mmengine runs yapf over the whole config (seconds for the SpeaQ configs on a busy machine) when a Runner
    starts, twice, and again in every checkpoint it saves; the tests save several. yapf is a pure function of
    its input, so caching it changes no output.
    """
    format_code = mmengine_config.FormatCode

    @functools.lru_cache(maxsize=16)
    def cached(text, style_items):
        return format_code(text, style_config=dict(style_items))

    def format_once(text, style_config=None, **kwargs):
        if kwargs or not isinstance(style_config, dict):
            return format_code(text, style_config=style_config, **kwargs)
        return cached(text, tuple(sorted(style_config.items())))

    mmengine_config.FormatCode = format_once


_memoize_config_formatting()


def make_toy_data(folder):
    """Write a tiny real-style and synthetic-style toy set under ``folder``; return their roots (the
    ``reliability_toy_data`` session fixture of tests/conftest.py makes them once)."""
    from speaq_mm.datasets.toy_scenes import make_toy_scenes
    roots = dict(real=osp.join(folder, 'toy_real') + '/', synthetic=osp.join(folder, 'toy_synthetic') + '/')
    make_toy_scenes(roots['real'], num_train=REAL_TRAIN, num_test=REAL_TEST, seed=5)
    make_toy_scenes(roots['synthetic'], num_train=SYNTHETIC_TRAIN, num_test=1, style='synthetic', seed=5)
    return roots


def copy_toy_data(roots, folder):
    """A private copy of the toy sets (for tests that damage files); returns the new roots."""
    import shutil
    copied = {}
    for source, root in roots.items():
        copied[source] = osp.join(folder, osp.basename(root.rstrip('/'))) + '/'
        shutil.copytree(root, copied[source])
    return copied


def write_run_config(folder, roots, max_iters=6, interval=3, batch_size=2, milestone=None, on_unreadable='error',
                     validate=True, probe=None, extra='', num_workers=0, dropout=0.0, count_decodes=False,
                     single_source=False):
    """Write a small run of the toy mix recipe (or of the single-source toy recipe) into ``folder``; return the
    config path.

    Args:
        folder (str): where the config is written; the run's work dir is ``<folder>/work``.
        roots (dict): ``real`` and ``synthetic`` data roots.
        max_iters (int): training iterations.
        interval (int): validation and checkpoint interval (iterations).
        batch_size (int): samples per rank and batch.
        milestone (int, optional): iteration where the learning rate drops 10x (default ``max_iters - 2``);
            the first 3 iterations warm up linearly from a quarter of the rate.
        on_unreadable (str): ``SGGLoadImageFromFile`` policy of the training pipeline.
        validate (bool): keep the validation loop (it also runs after the last iteration).
        probe (dict, optional): extra arguments of :class:`ReliabilityProbeHook`.
        extra (str): config lines appended at the end.
        num_workers (int): training dataloader workers (persistent when > 0).
        dropout (float): dropout of every attention and feed-forward layer (the toy recipe has none).
        count_decodes (bool): record every training image decoded (:func:`read_decodes`).
        single_source (bool): run ``configs/toy/speaq_tiny_toy_real.py`` (the real toy set only, mmdet's
            aspect-ratio batches) instead of the mix; ``num_workers=None`` then keeps the recipe's workers.
    """
    milestone = max_iters - 2 if milestone is None else milestone
    probe = dict(dict(record_dir=osp.join(folder, 'records')), **(probe or {}))
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, 'reliability_run.py')
    with open(path, 'w') as f:
        f.write(f"""_base_ = [{TOY_REAL_CONFIG if single_source else TOY_MIX_CONFIG!r}]
custom_imports = dict(imports={RELIABILITY_IMPORTS!r}, allow_failed_imports=False)
work_dir = {osp.join(folder, 'work')!r}
train_pipeline = [dict(type='SGGLoadImageFromFile', on_unreadable={on_unreadable!r})] + (
    [dict(type='ReliabilityDecodeCounter', record_dir={probe['record_dir']!r})] if {count_decodes!r} else []) + \
    _base_.train_pipeline[1:]
{_single_source_data(roots, batch_size, num_workers) if single_source else _mix_data(roots, batch_size, num_workers)}
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={roots['real']!r}, num_val_images={VAL_IMAGES}))
test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root={roots['real']!r}, num_val_images={VAL_IMAGES}))
train_cfg = dict(max_iters={max_iters}, val_interval={interval})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.25, by_epoch=False, begin=0, end=3),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end={max_iters}, milestones=[{milestone}], gamma=0.1)]
default_hooks = dict(
    checkpoint=dict(type='SpeaQCheckpointHook', by_epoch=False, interval={interval}, max_keep_ckpts=1,
                    save_best={BEST_KEY!r}, rule='greater'),
    logger=dict(interval=1),
    empty_relations_guard=dict(max_consecutive_empty_batches=2))
custom_hooks = [dict(type='ReliabilityProbeHook', **{probe!r})]
val_evaluator = [dict(type='SGGMetric'), dict(type='ReliabilityScoreMetric')]
test_evaluator = val_evaluator
model = dict(
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(dropout={dropout}), ffn_cfg=dict(ffn_drop={dropout}))),
    decoder=dict(dropout={dropout}, layer_cfg=dict(self_attn_cfg=dict(dropout={dropout}),
                                                 cross_attn_cfg=dict(dropout={dropout}),
                                                 ffn_cfg=dict(ffn_drop={dropout}))))
{'' if validate else 'val_cfg = val_dataloader = val_evaluator = None'}
{extra}
""")
    return path


def _workers(num_workers):
    return '' if num_workers is None else f'num_workers={num_workers}, persistent_workers={num_workers > 0}, '


def _mix_data(roots, batch_size, num_workers):
    """The training data lines of :func:`write_run_config` for the toy mix recipe."""
    return f"""real_train_dataset = dict(_base_.real_train_dataset, data_root={roots['real']!r},
                          num_val_images={VAL_IMAGES}, pipeline=train_pipeline)
synthetic_train_dataset = dict(_base_.synthetic_train_dataset, data_root={roots['synthetic']!r},
                               num_val_images=0, pipeline=train_pipeline)
train_dataloader = dict(batch_size={batch_size}, {_workers(num_workers)}batch_sampler=dict(infinite=True),
                        dataset=dict(datasets=[real_train_dataset, synthetic_train_dataset]))"""


def _single_source_data(roots, batch_size, num_workers):
    """The training data lines of :func:`write_run_config` for the single-source toy recipe."""
    return f"""train_dataloader = dict(batch_size={batch_size}, {_workers(num_workers)}
                        dataset=dict(data_root={roots['real']!r}, num_val_images={VAL_IMAGES},
                                     pipeline=train_pipeline))"""


@HOOKS.register_module()
class ReliabilityProbeHook(Hook):
    """Records what a run did, one JSON line per event, in ``<record_dir>/rank<r>.jsonl``; injects faults.

    Lines: ``{"event": "train", "iter", "lr", "samples": [[source, img_id], ...], "loss", "pid"}`` after every
    training iteration (before the checkpoint hook saves), ``{"event": "val", "iter", "score"}`` after every
    validation and ``{"event": "test", "metrics"}`` after a test.

    Args:
        record_dir (str): folder of the record files.
        nan_loss_at (Sequence[int]): 1-based iterations whose loss is made NaN.
        nan_forward_at (Sequence[int]): 1-based iterations whose training forward turns NaN inside the model:
            the output of the backbone's stem convolution, before the BatchNorm that follows it.
        stall_checkpoint_at (int, optional): when the checkpoint of this iteration is written, write half of it
            to the temporary file, create ``<record_dir>/stalled`` and sleep, so that a test can kill the
            process in the middle of the write.
        stall_after_iter (int, optional): once this iteration is recorded, create
            ``<record_dir>/stalled_after_iter_<n>`` and sleep, so that a test kills the process at a known point:
            nothing of a later iteration (training, validation, checkpoint) can have happened, however slow or
            loaded the machine.
    """

    priority = 'NORMAL'  # after_train_iter before ParamSchedulerHook (LOW) steps the learning rate

    def __init__(self, record_dir, nan_loss_at=(), nan_forward_at=(), stall_checkpoint_at=None,
                 stall_after_iter=None):
        self.record_dir = record_dir
        self.nan_loss_at = set(nan_loss_at)
        self.nan_forward_at = set(nan_forward_at)
        self.stall_checkpoint_at = stall_checkpoint_at
        self.stall_after_iter = stall_after_iter
        os.makedirs(record_dir, exist_ok=True)

    def _record(self, **line):
        rank, _ = get_dist_info()
        with open(osp.join(self.record_dir, f'rank{rank}.jsonl'), 'a') as f:
            f.write(json.dumps(dict(line, pid=os.getpid())) + '\n')

    def before_train(self, runner):
        """Install the requested faults."""
        if self.nan_loss_at:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            compute_losses = model.loss

            def nan_loss(*args, **kwargs):
                losses = compute_losses(*args, **kwargs)
                if runner.iter + 1 in self.nan_loss_at:
                    key = next(key for key in losses if 'loss' in key)
                    losses[key] = losses[key] * float('nan')
                return losses

            model.loss = nan_loss
        if self.nan_forward_at:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model

            def nan_output(module, inputs, output):
                if module.training and runner.iter + 1 in self.nan_forward_at:
                    return output * float('nan')
                return output

            model.backbone.conv1.register_forward_hook(nan_output)
        if self.stall_checkpoint_at is not None:
            self._stall_checkpoint_write(f'.iter_{self.stall_checkpoint_at}.pth.')

    def _stall_checkpoint_write(self, partial_prefix):
        write = atomic_io._write_payload
        marker = osp.join(self.record_dir, 'stalled')

        def stalling_write(stream, data):
            if not osp.basename(stream.name).startswith(partial_prefix):
                return write(stream, data)
            stream.write(data[:len(data) // 2])
            stream.flush()
            os.fsync(stream.fileno())
            with open(marker, 'w') as f:
                f.write(stream.name)
            time.sleep(600)  # the test kills the process meanwhile

        atomic_io._write_payload = stalling_write

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Record the iteration's samples, learning rate and loss."""
        samples = [[s.metainfo['source'], str(s.metainfo['img_id'])] for s in data_batch['data_samples']]
        loss = float(outputs['loss']) if outputs and 'loss' in outputs else None
        self._record(event='train', iter=runner.iter + 1, lr=runner.optim_wrapper.get_lr()['lr'][0],
                     samples=samples, loss=loss if loss is None or loss == loss else 'nan')
        if runner.iter + 1 == self.stall_after_iter:
            open(stall_marker(self.record_dir, self.stall_after_iter), 'w').close()
            time.sleep(600)  # the test kills the process meanwhile

    def after_val_epoch(self, runner, metrics=None):
        """Record the validation score the best checkpoint is chosen by."""
        self._record(event='val', iter=runner.iter, score=(metrics or {}).get(BEST_KEY))

    def after_test_epoch(self, runner, metrics=None):
        """Record every test metric."""
        self._record(event='test', metrics={key: float(value) for key, value in (metrics or {}).items()})


def stall_marker(record_dir, iteration):
    """The file a ``ReliabilityProbeHook(stall_after_iter=iteration)`` creates once it stalls."""
    return osp.join(record_dir, f'stalled_after_iter_{iteration}')


@TRANSFORMS.register_module()
class ReliabilityDecodeCounter(BaseTransform):
    """Appends ``<pid> <image path>`` to ``<record_dir>/decodes.txt`` for every image the pipeline decoded."""

    def __init__(self, record_dir):
        self.path = osp.join(record_dir, 'decodes.txt')
        os.makedirs(record_dir, exist_ok=True)

    def transform(self, results):
        with open(self.path, 'a') as f:  # one short write per line: lines of processes do not interleave
            f.write(f'{os.getpid()} {results["img_path"]}\n')
        return results


def read_decodes(record_dir):
    """(pid, image path) of every training image decoded, in order, by any process."""
    path = osp.join(record_dir, 'decodes.txt')
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [tuple(line.split(' ', 1)) for line in f.read().splitlines()]


@METRICS.register_module()
class ReliabilityScoreMetric(BaseMetric):
    """``probe/score``: the mean predicted predicate score over the validation images; it moves with every
    weight update, so the best-checkpoint record sees distinct non-zero values."""

    default_prefix = 'probe'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(float(sample['pred_relations']['scores'][:, :-1].mean()))

    def compute_metrics(self, results):
        return dict(score=sum(results) / len(results))


def expected_batches(cfg, count):
    """``[source, img_id]`` of every sample of the first ``count`` training batches of an uninterrupted run of
    ``cfg`` on one process (from a fresh dataloader's batch sampler; no image is loaded)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataloader = Runner.build_dataloader(cfg.train_dataloader, seed=cfg.randomness.seed)
    sampler, dataset = dataloader.batch_sampler, dataloader.dataset
    return [[[dataset.get_data_info(i)['source'], str(dataset.get_data_info(i)['img_id'])]
             for i in sampler.rank_batch(index)] for index in range(count)]


def read_records(record_dir, rank=0):
    """The lines a :class:`ReliabilityProbeHook` wrote for ``rank``."""
    path = osp.join(record_dir, f'rank{rank}.jsonl')
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith('\n')]


def free_port():
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def subprocess_env(**extra):
    """Environment for child processes: the repository importable, one thread each (2 shared cores)."""
    return dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHON=sys.executable,
                **extra)


def start_training(config, log_path, *args):
    """Start ``tools/train.py config *args`` in a new process group; its output goes to ``log_path``."""
    log = open(log_path, 'w')
    return subprocess.Popen([sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), config, *args],
                            cwd=REPO_ROOT, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_tree(process):
    """SIGKILL ``process`` and every process it started (torchrun starts its workers in sessions of their own,
    out of reach of a process-group kill)."""
    import psutil
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in [psutil.Process(process.pid), *children] if process.poll() is None else children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()
    psutil.wait_procs(children, timeout=30)


def kill_when(process, condition, timeout, log_path):
    """SIGKILL ``process`` (and its children) as soon as ``condition()`` holds; fail if it exits or times out
    first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f'the run ended (code {process.returncode}) before it could be killed:\n'
                                 + _tail(log_path))
        if time.monotonic() > deadline:
            kill_tree(process)
            raise AssertionError(f'the run did not reach the kill point in {timeout} s:\n' + _tail(log_path))
        time.sleep(0.2)
    kill_tree(process)


def _tail(path, chars=4000):
    with open(path) as f:
        return f.read()[-chars:]


def load_complete(path):
    """Load a checkpoint file completely (fails on a truncated one)."""
    return torch.load(path, map_location='cpu', weights_only=False)
