"""The dataset tools: predicate-distribution figures and numbers, and the dataset browser."""
import csv
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from tests.datasets_fixtures import PREDICATES, REPO_ROOT, load_tool, make_images, write_hand_dataset

predicates_tool = load_tool('tools/analysis/visualize_predicate_distribution.py')
browse_tool = load_tool('tools/analysis/browse_dataset.py')

FIGURES = ('top_predicates_comparison.png', 'predicate_distribution_comparison.png',
           'cumulative_predicate_distribution.png', 'predicate_statistics_summary.png')


def assert_figures(out_dir):
    for name in FIGURES:
        with Image.open(osp.join(out_dir, name)) as image:
            pixels = np.asarray(image.convert('L'))
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300
        assert pixels.std() > 10  # something is drawn


def test_counts_from_manual_paths(tmp_path):
    paths = write_hand_dataset(str(tmp_path / 'hand'))
    out = str(tmp_path / 'out')
    summaries = predicates_tool.main(['--real-h5', paths['ann_file'], '--real-mapping', paths['dicts_file'],
                                      '--output-dir', out])
    # Relations of every image: has x3 (rows 0 and 4), near x3 (rows 0, 3, 6), on x1 (row 0).
    with open(osp.join(out, 'predicate_statistics.json')) as f:
        stats = json.load(f)
    assert stats['real']['counts'] == {'has': 3, 'near': 3, 'on': 1}
    assert stats['real']['relations'] == 7 and stats['real']['images'] == 4
    assert summaries['real']['top1_share'] == pytest.approx(3 / 7)
    with open(osp.join(out, 'predicate_counts.csv')) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['predicate', 'real_count', 'real_share']
    assert [row[:2] for row in rows[1:]] == [[p, str(c)] for p, c in zip(PREDICATES, (3, 3, 1))]
    assert_figures(out)
    predicates_tool.main([
        '--real-h5', paths['ann_file'], '--real-mapping', paths['dicts_file'], '--split', 'test',
        '--output-dir', out
    ])
    with open(osp.join(out, 'predicate_statistics.json')) as f:
        assert json.load(f)['real']['counts'] == {'has': 2, 'near': 0, 'on': 0}


def test_two_datasets_from_paths_and_from_a_config(toy_roots, tmp_path):
    files = {style: (osp.join(root, 'VG-SGG-with-attri.h5'), osp.join(root, 'VG-SGG-dicts-with-attri.json'))
             for style, root in toy_roots.items()}
    out = str(tmp_path / 'paths')
    from_paths = predicates_tool.main(['--real-h5', files['real'][0], '--real-mapping', files['real'][1],
                                       '--synthetic-h5', files['synthetic'][0], '--output-dir', out])
    assert set(from_paths) == {'real', 'synthetic'}
    assert_figures(out)
    with open(osp.join(out, 'predicate_counts.csv')) as f:
        header = next(csv.reader(f))
    assert header == ['predicate', 'real_count', 'real_share', 'synthetic_count', 'synthetic_share']

    config = tmp_path / 'mix.py'
    config.write_text(
        f"_base_ = ['{REPO_ROOT}/configs/_base_/datasets/toy_real.py']\n"
        "train_dataloader = dict(dataset=dict(_delete_=True, type='ConcatDataset', datasets=[\n"
        f"    dict(type='VGH5Dataset', data_root='{toy_roots['real']}', source='real'),\n"
        f"    dict(type='VGH5Dataset', data_root='{toy_roots['synthetic']}', source='synthetic')]))\n")
    out_config = str(tmp_path / 'config')
    from_config = predicates_tool.main(['--config-file', str(config), '--output-dir', out_config])
    assert from_config == from_paths
    assert_figures(out_config)


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        predicates_tool.main(['--output-dir', str(tmp_path)])
    assert 'give either --config-file or --real-h5' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predicates_tool.main(['--real-h5', 'a.h5', '--output-dir', str(tmp_path)])
    assert '--real-h5 needs --real-mapping' in capsys.readouterr().err


def test_vocabularies_must_match(toy_roots, tmp_path):
    paths = write_hand_dataset(str(tmp_path / 'hand'))
    toy_h5 = osp.join(toy_roots['real'], 'VG-SGG-with-attri.h5')
    toy_dicts = osp.join(toy_roots['real'], 'VG-SGG-dicts-with-attri.json')
    with pytest.raises(ValueError, match='predicates differ'):
        predicates_tool.main(['--real-h5', toy_h5, '--real-mapping', toy_dicts, '--synthetic-h5',
                              paths['ann_file'], '--synthetic-mapping', paths['dicts_file'],
                              '--output-dir', str(tmp_path / 'out')])


def test_browse_train_and_test(toy_roots, tmp_path):
    config = tmp_path / 'toy.py'
    config.write_text(f"_base_ = ['{REPO_ROOT}/configs/_base_/datasets/toy_real.py']\n"
                      f"data_root = '{toy_roots['real']}'\n"
                      "train_dataloader = dict(dataset=dict(data_root=data_root, num_val_images=1))\n"
                      "test_dataloader = dict(dataset=dict(data_root=data_root, num_val_images=1))\n")
    train_pngs = browse_tool.main([str(config), '--num', '3', '--output-dir', str(tmp_path / 'train')])
    test_pngs = browse_tool.main([str(config), '--split', 'test', '--num', '5', '--shuffle', '--output-dir',
                                  str(tmp_path / 'test')])
    assert len(train_pngs) == 3 and len(test_pngs) == 2
    for path in train_pngs + test_pngs:  # the image beside its graph, drawn by SGGLocalVisualizer
        with Image.open(path) as image:
            assert image.size[0] > image.size[1] >= 400
            assert np.asarray(image.convert('L')).std() > 10


def test_boxes_frame_of_a_pipeline():
    assert browse_tool.annotations_in_original_frame(
        [dict(type='LoadImageFromFile'), dict(type='Resize'), dict(type='SGGLoadAnnotations')])
    assert not browse_tool.annotations_in_original_frame(
        [dict(type='LoadImageFromFile'), dict(type='SGGLoadAnnotations'), dict(type='RandomChoiceResize')])
    assert not browse_tool.annotations_in_original_frame([dict(type='LoadImageFromFile')])


def test_browse_draws_on_the_hand_images(tmp_path):
    paths = write_hand_dataset(str(tmp_path / 'hand'))
    make_images(paths)
    config = tmp_path / 'vg.py'
    config.write_text(
        f"_base_ = ['{REPO_ROOT}/configs/_base_/datasets/vg150.py']\n"
        f"test_dataloader = dict(dataset=dict(data_root='{tmp_path / 'hand'}', num_val_images=1))\n")
    (png, ) = browse_tool.main(
        [str(config), '--split', 'test', '--num', '1', '--output-dir',
         str(tmp_path / 'out')])
    assert osp.basename(png) == '00000_14.png'
