"""Shared inputs for the tools tests: real output of our own code.

``make_toy_run()`` generates small toy real/synthetic datasets, trains the `make demo` recipe
(``configs/toy/speaq_tiny_toy_mix.py``) for a few iterations with validation, and tests the last checkpoint
with ``tools/test.py --out --show-dir`` drawing through ``SGGLocalVisualizer``. ``make_project_run()``
converts a synthetic scene graph JSON set with the project's tools and trains and tests
``projects/SyntheticMix``'s config on it. The session fixtures ``toy_run`` and ``project_run``
(tests/conftest.py) make each once per test session. ``panel_grid()`` and ``figure_panels()`` count the panels
of drawings and of matplotlib figures.
"""
import contextlib
import glob
import hashlib
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from tests.datasets_fixtures import load_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_MIX_CONFIG = osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_mix.py')
PROJECT_CONFIG = osp.join(REPO, 'projects', 'SyntheticMix', 'configs', 'speaq_tiny_toy_real_json_synthetic.py')
TRAIN_ITERS = 10
VAL_INTERVAL = 5
BATCH_SIZE = 4  # 3 real + 1 synthetic at the recipe's 0.7 / 0.3
NUM_VAL_IMAGES = 8
NUM_TEST_IMAGES = 6
PROJECT_ITERS = 4
from speaq_mm.visualization.figure_style import FIGURE_BACKGROUND_RGB as FIGURE_BACKGROUND  # noqa: E402


@contextlib.contextmanager
def one_torch_thread():
    """Run torch on one thread: on a shared 2-core machine two threads spin against other processes and
    cost several times the CPU of one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def loader_options(*splits: str) -> dict:
    """In-process data loading (no worker processes) for the given dataloaders."""
    options = {}
    for split in splits:
        options[f'{split}_dataloader.num_workers'] = 0
        options[f'{split}_dataloader.persistent_workers'] = False
    return options


def tool_test_options(real_root: str, name: str) -> dict:
    """``--cfg-options`` of a ``tools/test.py`` run on the toy real test split that draws with the scene graph
    visualizer (named ``name``: a fresh name makes it the current visualizer of the process)."""
    return dict(loader_options('test'), **{
        'test_dataloader.dataset.data_root': real_root + '/',
        'test_dataloader.dataset.num_val_images': NUM_VAL_IMAGES,
        'visualizer.type': 'SGGLocalVisualizer',
        'visualizer.name': name,
        'default_hooks.visualization.score_thr': 0.0,
    })


def write_raw_dump(config: str, checkpoint: str, options: dict, work_dir: str, path: str) -> None:
    """Test ``checkpoint`` and pickle the predicted data samples as mmengine's ``DumpResults`` does (they keep
    ``pred_relations.query_ids``, which the scene graph record dump of ``tools/test.py --out`` leaves out)."""
    from mmengine.evaluator import DumpResults

    from speaq_mm.engine import build_runner, load_run_config
    cfg = load_run_config(config, dict(options, **{'visualizer.name': 'raw_dump'}), work_dir)
    cfg.load_from = checkpoint
    runner = build_runner(cfg)
    runner.test_evaluator.metrics.append(DumpResults(out_file_path=path))
    runner.test()


def _as_argv(options: dict) -> List[str]:
    return [f'{key}={value}' for key, value in options.items()]


@dataclass
class ToyRun:
    """Paths of the shared toy training run."""

    root: str
    real_root: str
    synthetic_root: str
    work_dir: str
    scalars: str
    checkpoint: str
    best_checkpoint: Optional[str]
    dump: str
    raw_dump: str
    metrics_json: str
    show_dir: str


def make_toy_run(root: str) -> ToyRun:
    """Make the toy run under ``root`` (the ``toy_run`` session fixture calls it once)."""
    import speaq_mm.visualization  # noqa: F401  (until speaq_mm imports it itself)
    from speaq_mm.datasets.toy_scenes import make_toy_scenes
    from speaq_mm.engine import build_runner, load_run_config
    real_root, synthetic_root = osp.join(root, 'toy_real'), osp.join(root, 'toy_synthetic')
    make_toy_scenes(real_root, num_train=NUM_VAL_IMAGES + 24, num_test=NUM_TEST_IMAGES, seed=3)
    make_toy_scenes(synthetic_root, num_train=NUM_VAL_IMAGES + 12, num_test=0, style='synthetic', seed=4)
    work_dir = osp.join(root, 'work')
    options = dict(loader_options('train', 'val', 'test'), **{
        'train_dataloader.dataset.datasets.0.data_root': real_root + '/',
        'train_dataloader.dataset.datasets.1.data_root': synthetic_root + '/',
        'train_dataloader.dataset.datasets.0.num_val_images': NUM_VAL_IMAGES,
        'train_dataloader.dataset.datasets.1.num_val_images': NUM_VAL_IMAGES,
        'train_dataloader.batch_size': BATCH_SIZE,
        'val_dataloader.dataset.data_root': real_root + '/',
        'val_dataloader.dataset.num_val_images': NUM_VAL_IMAGES,
        'test_dataloader.dataset.data_root': real_root + '/',
        'test_dataloader.dataset.num_val_images': NUM_VAL_IMAGES,
        'train_cfg.max_iters': TRAIN_ITERS, 'train_cfg.val_interval': VAL_INTERVAL,
        'param_scheduler.0.end': TRAIN_ITERS, 'param_scheduler.0.milestones': [int(0.8 * TRAIN_ITERS)],
        'default_hooks.checkpoint.interval': TRAIN_ITERS,
        'default_hooks.logger.interval': 1, 'log_processor.window_size': 1})
    with one_torch_thread():
        runner = build_runner(load_run_config(TOY_MIX_CONFIG, options, work_dir))
        runner.train()
        scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
        checkpoint = osp.join(work_dir, f'iter_{TRAIN_ITERS}.pth')
        best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
        test_dir = osp.join(root, 'test')
        dump = osp.join(test_dir, 'dump.pkl')
        options = tool_test_options(real_root, 'toy_run_test')
        load_tool('tools/test.py').main([TOY_MIX_CONFIG, checkpoint, '--work-dir', test_dir, '--out', dump,
                                         '--show-dir', 'show', '--cfg-options'] + _as_argv(options))
        raw_dump = osp.join(root, 'raw_test', 'raw_dump.pkl')
        write_raw_dump(TOY_MIX_CONFIG, checkpoint, options, osp.dirname(raw_dump), raw_dump)
    show_dirs = sorted(glob.glob(osp.join(test_dir, '*', 'show')))
    return ToyRun(root=root, real_root=real_root, synthetic_root=synthetic_root, work_dir=work_dir,
                  scalars=scalars, checkpoint=checkpoint, best_checkpoint=best[0] if best else None, dump=dump,
                  raw_dump=raw_dump, metrics_json=osp.join(test_dir, 'dump_metrics.json'),
                  show_dir=show_dirs[-1] if show_dirs else '')


@dataclass
class ProjectRun:
    """Paths of the SyntheticMix project run (converted JSON set mixed with the toy real scenes)."""

    root: str
    json_file: str
    image_dir: str
    converted_root: str
    report: dict
    work_dir: str
    scalars: str
    checkpoint: str
    metrics_json: str
    defects: dict


def make_project_run(root: str, run: ToyRun) -> ProjectRun:
    """Make the project run under ``root``, on the real data of ``run`` (the ``project_run`` fixture)."""
    from speaq_mm.engine import build_runner, load_run_config
    made = load_tool('projects/SyntheticMix/tools/make_synthetic_json.py').make_synthetic_json(
        osp.join(root, 'generated'), num_images=16, seed=5, defects=2)
    converted = osp.join(root, 'converted')
    report = load_tool('tools/dataset_converters/json_to_vg.py').main(
        [made['json_file'], converted, '--image-dir', made['image_dir'], '--vocab',
         osp.join(run.real_root, 'VG-SGG-dicts-with-attri.json')])
    work_dir = osp.join(root, 'work')
    options = dict(loader_options('train', 'test'), **{
        'train_dataloader.dataset.datasets.0.data_root': run.real_root + '/',
        'train_dataloader.dataset.datasets.0.num_val_images': NUM_VAL_IMAGES,
        'train_dataloader.dataset.datasets.1.data_root': converted + '/',
        'train_dataloader.batch_size': BATCH_SIZE,
        'test_dataloader.dataset.data_root': run.real_root + '/',
        'test_dataloader.dataset.num_val_images': NUM_VAL_IMAGES,
        'train_cfg.max_iters': PROJECT_ITERS, 'train_cfg.val_interval': 1000,
        'param_scheduler.0.end': PROJECT_ITERS, 'param_scheduler.0.milestones': [PROJECT_ITERS],
        'default_hooks.checkpoint.interval': PROJECT_ITERS, 'default_hooks.checkpoint.save_best': None,
        'default_hooks.logger.interval': 1, 'log_processor.window_size': 1})
    with one_torch_thread():
        cfg = load_run_config(PROJECT_CONFIG, options, work_dir)
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        runner = build_runner(cfg)
        runner.train()
        checkpoint = osp.join(work_dir, f'iter_{PROJECT_ITERS}.pth')
        test_dir = osp.join(root, 'test')
        load_tool('tools/test.py').main([PROJECT_CONFIG, checkpoint, '--work-dir', test_dir, '--cfg-options']
                                        + _as_argv(tool_test_options(run.real_root, 'project_run_test')))
    return ProjectRun(root=root, json_file=made['json_file'], image_dir=made['image_dir'],
                      converted_root=converted, report=report, work_dir=work_dir,
                      scalars=osp.join(runner.log_dir, 'vis_data', 'scalars.json'), checkpoint=checkpoint,
                      metrics_json=osp.join(test_dir, 'metrics.json'), defects=made['defects'])


def fabricate(kind, seed=0):
    """Random tensors with the names and shapes of a reference (detectron2) checkpoint of ``kind``, in the
    reference order (``tools/model_converters/speaq_d2_to_mm.py``'s layout)."""
    gen = torch.Generator().manual_seed(seed)
    layout = load_tool('tools/model_converters/speaq_d2_to_mm.py').reference_layout(kind)
    return {key: torch.randn(shape, generator=gen) for key, shape in layout.items()}


def snapshot(folder):
    """relative path -> sha256 of every file under ``folder`` (symlinks by their target)."""
    digests = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = osp.join(root, name)
            key = osp.relpath(path, folder)
            if osp.islink(path):
                digests[key] = 'link:' + os.readlink(path)
            else:
                with open(path, 'rb') as file:
                    digests[key] = hashlib.sha256(file.read()).hexdigest()
    return digests


# ----------------------------------------------------------------------------------------------------------
# Image checks
# ----------------------------------------------------------------------------------------------------------
def read_png(path: str) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    from PIL import Image
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB'))


def _runs(mask: np.ndarray, min_length: int) -> List[tuple]:
    """(start, end) of the runs of True at least ``min_length`` long."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(s, e) for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_length]


def panel_grid(image: np.ndarray, gutter_colour) -> tuple:
    """(rows, columns) of a drawing whose panels are separated by full-length gutters of one colour."""
    gutter = (image == np.asarray(gutter_colour, np.uint8)).all(axis=2)
    rows = len(_runs(~gutter.all(axis=1), 2))
    columns = len(_runs(~gutter.all(axis=0), 2))
    return rows, columns


def figure_panels(image: np.ndarray, background=FIGURE_BACKGROUND, min_size: int = 80) -> int:
    """Number of plot panels of a matplotlib figure drawn on a uniform background: bands of rows mostly
    covered by panels, and in the middle row of each band the runs of non-background pixels at least
    ``min_size`` wide (titles, tick labels and colour bars are narrower or lower). Gaps of a few pixels
    inside a panel (a blend of curves that happens to match the background) do not split it."""
    content = np.abs(image.astype(np.int16) - np.asarray(background, np.int16)).max(axis=2) > 3
    bands = _runs(content.mean(axis=1) > 0.25, min_size)
    count = 0
    for start, end in bands:
        row = content[(start + end) // 2].copy()
        for gap_start, gap_end in _runs(~row, 1):
            if gap_end - gap_start < 6:
                row[gap_start:gap_end] = True
        count += len(_runs(row, min_size))
    return count


def assert_drawing(image: np.ndarray, min_std: float = 5.0) -> None:
    """Non-blank: several colours and real contrast."""
    assert image.ndim == 3 and image.shape[2] == 3
    assert image.std() > min_std, f'image looks blank (std {image.std():.1f})'
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20


def without_relation_branch(run, folder):
    """The toy run's checkpoint without the relation branch and heads (every tensor whose key names a relation,
    a predicate or the head): about 72 % of the model's tensors, enough for training init (min_matched_share
    0.5), not for a test. Returns its path and the keys dropped."""
    import torch

    from speaq_mm.utils import load_torch_file
    checkpoint = load_torch_file(run.checkpoint)
    dropped = [key for key in checkpoint['state_dict']
               if key.startswith('bbox_head.') or 'relation' in key or 'predicate' in key]
    for key in dropped:
        del checkpoint['state_dict'][key]
    path = osp.join(str(folder), 'no_relation_branch.pth')
    torch.save(checkpoint, path)
    return path, dropped


def snippet(document, marker, language='python'):
    """The fenced ``language`` block of ``document`` (relative to the repository) that contains ``marker``."""
    with open(osp.join(REPO, document)) as file:
        blocks = re.findall(rf'```{language}\n(.*?)```', file.read(), flags=re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f'{document}: {len(found)} {language} blocks contain {marker!r}'
    return found[0]
