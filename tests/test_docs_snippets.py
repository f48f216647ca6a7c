"""The config snippets users copy from README and docs/ do what the text around them says.

Each test takes the snippet from the document itself (so that a change to the docs is tested), runs it as a
config or a command line, and checks its effect on the resolved config or the built datasets.
"""
import os.path as osp
import re
import shlex

import numpy as np
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from speaq_mm.datasets.vg_format import write_vg_dataset
from speaq_mm.engine import load_run_config
from speaq_mm.engine.hooks.vocabulary_check_hook import vocabulary_mismatches
from tests.tools_fixtures import snippet

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def as_config(text, folder, name, base):
    """Write ``text`` as ``folder/name``, its relative ``_base_`` pointed at ``configs/<base>``."""
    text = re.sub(r"_base_ = \['\./[\w.]+'\]", f"_base_ = [{osp.join(REPO, 'configs', base)!r}]", text)
    path = osp.join(folder, name)
    with open(path, 'w') as file:
        file.write(text)
    return path


def train_datasets(cfg):
    dataset = cfg.train_dataloader.dataset
    return dataset.datasets if 'datasets' in dataset else [dataset]


def test_the_unreadable_image_policy_snippet_reaches_every_training_dataset(tmp_path):
    text = snippet('docs/distributed.md', "on_unreadable='skip'")
    for base in ('speaq_multi.py', 'visual_genome.py', 'toy/speaq_tiny_toy_mix.py'):
        cfg = Config.fromfile(as_config(text, str(tmp_path), f'skip_{osp.basename(base)}', base))
        original = Config.fromfile(osp.join(REPO, 'configs', base))
        for dataset, before in zip(train_datasets(cfg), train_datasets(original)):
            loaders = [step for step in dataset.pipeline if step.type == 'SGGLoadImageFromFile']
            assert [(step.on_unreadable, step.max_skipped) for step in loaders] == [('skip', 100)], base
            assert len(dataset.pipeline) == len(before.pipeline)  # the rest of the pipeline (64 px toy) is kept
            assert [s for s in dataset.pipeline if s.type != 'SGGLoadImageFromFile'] == [
                s for s in before.pipeline if s.type != 'SGGLoadImageFromFile']
        for loader in ('val_dataloader', 'test_dataloader'):
            assert cfg[loader].dataset.pipeline == original[loader].dataset.pipeline


def test_the_own_dataset_snippet_builds_every_split(tmp_path):
    classes = tuple(f'class{i}' for i in range(150))  # VG150's sizes, as the snippet's recipe expects
    predicates = tuple(f'predicate{i}' for i in range(50))
    root = tmp_path / 'my_set'
    boxes = np.array([[10, 10, 50, 50], [30, 30, 90, 80]] * 4, np.float64)
    write_vg_dataset(str(root), classes, predicates, split=np.array([0, 0, 0, 2]), width=np.full(4, 100),
                     height=np.full(4, 100), image_id=['a1', 'a2', 'a3', 'b1'], box_counts=np.full(4, 2),
                     boxes=boxes, labels=np.array([3, 7] * 4), rel_counts=np.ones(4, np.int64),
                     relations=np.array([[0, 1, 4]] * 4))
    text = snippet('docs/dataset_format.md', 'my_set = dict(').replace("'data/my_set/'", repr(f'{root}/'))
    cfg = load_run_config(as_config(text, str(tmp_path), 'my_set.py', 'synthetic_genome.py'), work_dir='unused')
    init_default_scope('mmdet')
    sizes = {}
    for split in ('train', 'val', 'test'):
        dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
        sizes[split] = len(dataset)
        assert dataset.metainfo['classes'] == classes
    assert sizes == dict(train=3, val=1, test=1)  # val and test read the split-2 rows
    model = type('Model', (), dict(bbox_head=type('Head', (), dict(
        num_entity_classes=cfg.model.bbox_head.num_entity_classes, num_predicates=cfg.model.bbox_head.num_predicates))))
    assert vocabulary_mismatches(model, dataset.metainfo) == []


def test_the_mix_quick_start_command_sets_what_it_says(tmp_path):
    command = snippet('docs/multi_dataset.md', 'sample_weights.synthetic=0.25', language='bash')
    line = ' '.join(command.replace('\\\n', ' ').splitlines()[-1:])
    words = shlex.split(line)
    assert words[:3] == ['python', 'tools/train.py', 'configs/toy/speaq_tiny_toy_mix.py']
    options = dict(word.split('=', 1) for word in words[words.index('--cfg-options') + 1:])
    from mmengine.config import DictAction
    parsed = {key: DictAction._parse_iterable(value) for key, value in options.items()}
    cfg = load_run_config(osp.join(REPO, words[2]), parsed, work_dir='unused')
    assert cfg.train_dataloader.batch_sampler.source_ratio == dict(real=0.5, synthetic=0.5)
    assert cfg.train_dataloader.dataset.sample_weights == dict(real=1.0, synthetic=0.25)
    assert cfg.train_dataloader.dataset.statistics_sources == ['real', 'synthetic']


def test_the_synthetic_mix_project_readme_shows_its_config():
    """Every statement the project README quotes from its config is in the config."""
    text = snippet('projects/SyntheticMix/README.md', 'SGGSampleWeightRampHook')
    with open(osp.join(REPO, 'projects', 'SyntheticMix', 'configs', 'speaq_tiny_toy_real_json_synthetic.py')) as f:
        config = ' '.join(f.read().split())
    code = '\n'.join(line.split('  #')[0].rstrip() for line in text.splitlines())
    for statement in re.split(r'\n(?=\w)', code.strip()):
        assert ' '.join(statement.split()) in config, statement


def test_documented_toy_commands_make_the_demo_data():
    """Every toy-data command in docs/ and configs/ uses the style and seed that ``make demo`` generates with, so
    following the docs gives the demo's datasets."""
    import glob

    from speaq_mm.apis.toy_demo import TOY_DATASETS
    expected = {name: (style, seed) for name, style, seed in TOY_DATASETS}
    found = 0
    for path in glob.glob(osp.join(REPO, 'docs', '*.md')) + glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                                                        recursive=True):
        with open(path) as file:
            for command in re.findall(r'make_toy_scenes\.py (data/(toy_\w+)[^\n`#]*)', file.read()):
                args = shlex.split(command[0])
                style = args[args.index('--style') + 1] if '--style' in args else 'real'
                seed = int(args[args.index('--seed') + 1]) if '--seed' in args else 0
                assert (style, seed) == expected[command[1]], f'{path}: {command[0]}'
                found += 1
    assert found >= 6
