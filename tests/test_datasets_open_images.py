"""Open Images V6 data: ``oi_to_json.py`` on the hand-written fixture ``tests/fixtures/open_images_toy`` (every
count worked out below), the docs' preparation commands, and ``configs/open_images.py`` on the result."""
import importlib.util
import json
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

from speaq_mm.datasets.scene_graph_json.open_images import OI_DROP_REASONS, oi_to_scene_graph_json

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURE = osp.join(REPO, 'tests/fixtures/open_images_toy')
TOOL = 'tools/dataset_converters/oi_to_json.py'

# Image by image (tests/fixtures/open_images_toy):
# train  tr0: 3 boxes, 3 relations, all kept.
#        tr1: box 1 has class 9 (4 classes) -> dropped, and the 3 relations all use it.
#        tr2: img_size [0, 100] -> the image (2 boxes, 1 relation) is dropped.
# val    va0: relation [0, 1, 7] names predicate 7 (5 predicates) -> dropped; 2 boxes, 1 relation kept.
#        a string instead of an image -> dropped (its boxes are not counted as read).
#        img_fn "../escape" is not a plain file name -> dropped.
# test   te0: relation [0, 5, 1] names box 5 of 3 -> dropped; the repeated [0, 1, 0] is passed on.
#        tr0 again -> dropped as a repeated img_fn (1 box read).
#        te2: box 0 has 3 numbers -> dropped with relation 0; relation 1 is not 3 integers.
#        te3: 1 box but 2 labels -> the image is dropped.
EXPECTED_COUNTS = {
    'train_images_in': 3, 'train_images_kept': 2, 'train_boxes_in': 7, 'train_boxes_kept': 4,
    'train_relations_in': 7, 'train_relations_kept': 3,
    'val_images_in': 3, 'val_images_kept': 1, 'val_boxes_in': 2, 'val_boxes_kept': 2,
    'val_relations_in': 2, 'val_relations_kept': 1,
    'test_images_in': 4, 'test_images_kept': 2, 'test_boxes_in': 7, 'test_boxes_kept': 4,
    'test_relations_in': 6, 'test_relations_kept': 3,
}
EXPECTED_DROPS = {
    'image: not an object': 1, 'image: no img_fn': 1, 'image: repeated img_fn': 1, 'image: bad img_size': 1,
    'image: boxes and labels differ': 1, 'box: bad bbox': 1, 'box: unknown class': 1, 'relation: bad entry': 1,
    'relation: unknown box': 1, 'relation: uses a dropped box': 4, 'relation: unknown predicate': 1,
}


def load_tool(path):
    """Import a command line script of the repository as a module."""
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fixture_is_converted_with_every_drop_counted_by_reason(tmp_path):
    out = tmp_path / 'oi.json'
    report = oi_to_scene_graph_json(FIXTURE, str(out))
    assert dict(report.counts) == EXPECTED_COUNTS
    assert dict(report.dropped) == EXPECTED_DROPS
    assert set(EXPECTED_DROPS) == set(OI_DROP_REASONS)  # the fixture exercises every reason
    data = json.loads(out.read_text())
    assert data['classes'] == ['person', 'car', 'dog', 'chair'] and len(data['predicates']) == 5
    images = {image['id']: image for image in data['images']}
    assert list(images) == ['tr0', 'tr1', 'va0', 'te0', 'te2']
    te0 = images['te0']
    assert (te0['split'], te0['file_name'], te0['width'], te0['height']) == ('test', 'te0.jpg', 640, 480)
    assert te0['relations'] == [{'subject': 0, 'object': 1, 'predicate': 'at'}] * 2 + [
        {'subject': 2, 'object': 0, 'predicate': 'on'}]
    assert [o['id'] for o in images['tr1']['objects']] == [0]  # ids stay the OI box indices
    assert report.to_dict()['dropped']['box: unknown class']['examples'] == ['vrd-train-anno.json[1] (tr1) '
                                                                              'det_labels[1]: 9']


def test_the_docs_commands_make_a_vg_dataset_that_the_config_reads(tmp_path):
    with open(osp.join(REPO, 'docs/open_images.md')) as file:
        block = next(b for b in re.findall(r'```shell\n(.*?)```', file.read(), flags=re.S) if 'oi_to_json.py' in b)
    commands = [shlex.split(line) for line in block.replace('\\\n', ' ').splitlines() if line.strip()]
    replace = {'data/oi_v6_pysgg/annotations': FIXTURE, 'data/oi_v6.json': str(tmp_path / 'oi.json'),
               'data/oi_v6_oi_to_json_report.json': str(tmp_path / 'report.json'),
               'data/openimages_v6': str(tmp_path / 'openimages_v6')}
    for command in commands:
        command = [replace.get(word, word) for word in command]
        if '--image-dir' in command:  # the fixture has no image files: sizes come from the JSON
            at = command.index('--image-dir')
            command[at:at + 2] = ['--image-mode', 'none']
        assert command[0] == 'python'
        load_tool(command[1]).main(command[2:])  # in this process: a subprocess would import mmdet again
    assert json.loads((tmp_path / 'report.json').read_text())['dropped']['relation: uses a dropped box'][
        'count'] == 4
    vg_report = json.loads((tmp_path / 'openimages_v6' / 'conversion_report.json').read_text())
    # json_to_vg keeps the 5 images and drops te0's repeated relation (docs/open_images.md says so).
    assert vg_report['counts']['images_kept'] == 5 and vg_report['counts']['relations_kept'] == 6
    assert vg_report['dropped']['relation: duplicate']['count'] == 1

    cfg = Config.fromfile(osp.join(REPO, 'configs/open_images.py'))
    assert cfg.test_evaluator.protocol == 'open_images' and cfg.default_hooks.checkpoint.save_best == 'sgg/score_wtd'
    from mmengine.registry import init_default_scope

    from speaq_mm.datasets import VGH5Dataset  # noqa: F401 (registers the dataset)
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS
    sizes = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = DATASETS.build(dict(cfg[loader].dataset, data_root=str(tmp_path / 'openimages_v6') + '/',
                                      pipeline=[]))
        sizes[loader] = [info['img_id'] for info in (dataset[i] for i in range(len(dataset)))]
    # Images without relations (tr1, te2) are filtered, as the reference's loader does.
    assert sizes == {'train_dataloader': ['tr0'], 'val_dataloader': ['va0'], 'test_dataloader': ['te0']}
    # The recipe's model builds; against the toy vocabulary (4 classes, 5 predicates) the vocabulary check
    # that the docs promise reports both counts.
    from mmdet.registry import MODELS

    from speaq_mm.engine.hooks.vocabulary_check_hook import vocabulary_mismatches
    model = MODELS.build(cfg.model)
    assert vocabulary_mismatches(model, dataset.metainfo) == [('num_entity_classes', 601, 'classes', 4),
                                                              ('num_predicates', 30, 'predicates', 5)]


def test_an_existing_output_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / 'oi.json'
    out.write_text('keep me')
    with pytest.raises(FileExistsError, match='--overwrite'):
        oi_to_scene_graph_json(FIXTURE, str(out))
    assert out.read_text() == 'keep me'
    load_tool(TOOL).main([FIXTURE, str(out), '--overwrite'])
    assert 'relation: uses a dropped box: 4' in capsys.readouterr().out and json.loads(out.read_text())['images']


def test_bad_inputs_name_the_file(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / 'ann')
    (tmp_path / 'ann' / 'categories_dict.json').write_text('{"obj": ["a", "a"], "rel": ["on"]}')
    with pytest.raises(ValueError, match=r'categories_dict.json: field "obj"'):
        oi_to_scene_graph_json(str(tmp_path / 'ann'), str(tmp_path / 'out.json'))
    (tmp_path / 'ann' / 'categories_dict.json').write_text('{"obj": ["a"], "rel": ["on"]}')
    (tmp_path / 'ann' / 'vrd-val-anno.json').unlink()
    with pytest.raises(FileNotFoundError, match='vrd-val-anno.json'):
        oi_to_scene_graph_json(str(tmp_path / 'ann'), str(tmp_path / 'out.json'))
    assert not (tmp_path / 'out.json').exists()


def test_command_line_help():
    result = subprocess.run([sys.executable, osp.join(REPO, TOOL), '--help'], capture_output=True, text=True,
                            check=True)
    assert 'ANN_DIR' in result.stdout and '--overwrite' in result.stdout
