"""tools/demo/image_demo.py on ordinary photos of any size and mode, with the shared toy run's checkpoint."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from speaq_mm.visualization import GUTTER_COLOUR
from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import (
    TOY_MIX_CONFIG,
    assert_drawing,
    one_torch_thread,
    panel_grid,
    read_png,
    snapshot,
    without_relation_branch,
)

image_demo = load_tool('tools/demo/image_demo.py')
# Photos shipped inside scikit-image (requirements/tests.txt; no download), with their size and mode: RGB, grey,
# RGBA, JPEG, and different sizes.
PHOTOS = {'astronaut.png': ((512, 512), 'RGB'), 'camera.png': ((512, 512), 'L'),
          'chelsea.png': ((451, 300), 'RGB'), 'logo.png': ((500, 500), 'RGBA'), 'rocket.jpg': ((640, 427), 'RGB')}


def copy_photos(folder):
    """scikit-image's sample photos, or Pillow-made stand-ins of the same sizes and modes without it."""
    try:
        import skimage
    except ImportError:
        skimage = None
    rng = np.random.default_rng(0)
    for name, (size, mode) in PHOTOS.items():
        if skimage is not None:
            shutil.copy(osp.join(osp.dirname(skimage.__file__), 'data', name), folder / name)
            continue
        ramp = np.linspace(0, 255, size[0])[None, :, None] * np.ones((size[1], 1, 4))
        pixels = np.clip(ramp + rng.normal(0, 30, ramp.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, 'RGBA').convert(mode).save(folder / name)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    copy_photos(folder)
    # A phone photo stored sideways: 160 x 90 pixels with EXIF orientation 6 (shown upright as 90 x 160).
    sideways = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(folder / 'phone.jpg', exif=exif)
    Image.new('RGB', (37, 23), (20, 180, 90)).save(folder / 'tiny.png')
    (folder / 'broken.jpg').write_bytes(b'not a jpeg')
    (folder / 'notes.txt').write_text('not an image')
    return folder


@pytest.fixture(scope='module')
def demo(photos, tmp_path_factory, toy_run):
    out_dir = tmp_path_factory.mktemp('demo_out')
    with one_torch_thread():
        summary = image_demo.main([str(photos), TOY_MIX_CONFIG, toy_run.checkpoint, '--out-dir', str(out_dir),
                                   '--device', 'cpu'])
    return summary, out_dir, toy_run


def expected_size(width, height):
    """The drawing size SGGLocalVisualizer's defaults give an image (row 400-720 px high)."""
    scale = min(max(height, 400), 720) / height
    scale = min(scale, 1200 / width)
    row = max(round(height * scale), 400)
    return row, round(width * scale) + 6 + max(row, 400)


def test_every_photo_gets_a_drawing_and_a_triplet_file(demo, photos):
    summary, out_dir, run = demo
    assert summary['names_from'] == f'checkpoint {run.checkpoint}'
    drawn = {osp.basename(item['image']) for item in summary['images']}
    assert drawn == set(PHOTOS) | {'phone.jpg', 'tiny.png'}
    assert [osp.basename(item['image']) for item in summary['skipped']] == ['broken.jpg']
    checkpoint_meta = torch.load(run.checkpoint, map_location='cpu', weights_only=False)['meta']['dataset_meta']
    for item in summary['images']:
        with open(item['json']) as file:
            record = json.load(file)
        with Image.open(item['image']) as image:
            upright = image.size if 'phone' not in item['image'] else image.size[::-1]
        assert (record['width'], record['height']) == upright
        drawing = read_png(item['drawing'])
        assert_drawing(drawing)
        assert drawing.shape[:2] == expected_size(*upright), item['image']
        assert panel_grid(drawing, GUTTER_COLOUR) == (1, 2)
        relations, objects = record['relations'], record['objects']
        assert 0 < len(relations) <= 20 and item['triplets'] == len(relations)
        assert record['file_name'] == osp.basename(item['image'])
        scores = [r['score'] for r in relations]
        assert scores == sorted(scores, reverse=True)
        used = []
        for relation in relations:
            used += [u for u in (relation['subject'], relation['object']) if u not in used]
        assert used == [o['id'] for o in objects] == list(range(len(objects)))
        for obj in objects:
            assert obj['name'] == checkpoint_meta['classes'][obj['label']]
            x1, y1, x2, y2 = obj['bbox']
            assert 0 <= x1 <= x2 <= record['width'] and 0 <= y1 <= y2 <= record['height']
        for relation in relations:
            assert relation['predicate'] == checkpoint_meta['predicates'][relation['predicate_label']]
            assert relation['subject'] != relation['object']
            assert 0 <= relation['query_id'] < 32 and 0 <= relation['predicate_score'] <= 1


def test_one_image_and_topk(demo, photos, tmp_path):
    _, _, run = demo
    with one_torch_thread():
        summary = image_demo.main([str(photos / 'rocket.jpg'), TOY_MIX_CONFIG, run.checkpoint, '--out-dir',
                                   str(tmp_path), '--topk', '3', '--device', 'cpu'])
    assert len(summary['images']) == 1 and summary['images'][0]['triplets'] <= 3
    assert sorted(os.listdir(tmp_path)) == ['rocket.json', 'rocket.png', 'summary.json']


def test_names_come_from_the_config_when_the_checkpoint_has_none(demo, photos, tmp_path):
    _, _, run = demo
    checkpoint = torch.load(run.checkpoint, map_location='cpu', weights_only=False)
    meta = checkpoint['meta'].pop('dataset_meta')
    bare = tmp_path / 'bare.pth'
    torch.save(checkpoint, bare)
    config = tmp_path / 'named.py'
    config.write_text(f"_base_ = ['{TOY_MIX_CONFIG}']\n"
                      f"test_dataloader = dict(dataset=dict(data_root='{tmp_path}/none/', "
                      f"metainfo=dict(classes={list(meta['classes'])}, predicates={list(meta['predicates'])})))\n")
    with one_torch_thread():
        summary = image_demo.main([str(photos / 'tiny.png'), str(config), str(bare), '--out-dir',
                                   str(tmp_path / 'out'), '--device', 'cpu'])
    assert summary['names_from'].endswith('(metainfo)')
    unnamed = tmp_path / 'unnamed.py'
    unnamed.write_text(f"_base_ = ['{TOY_MIX_CONFIG}']\n"
                       f"test_dataloader = dict(dataset=dict(data_root='{tmp_path}/none/'))\n")
    with pytest.raises(KeyError, match='class and predicate names'), one_torch_thread():
        image_demo.main([str(photos / 'tiny.png'), str(unnamed), str(bare), '--out-dir', str(tmp_path / 'x'),
                         '--device', 'cpu'])


def test_bad_inputs_name_the_problem(demo, photos, tmp_path):
    _, _, run = demo
    with pytest.raises(FileNotFoundError, match='no such image, folder or list file'):
        image_demo.main([str(tmp_path / 'nowhere'), TOY_MIX_CONFIG, run.checkpoint, '--out-dir', str(tmp_path)])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no images'):
        image_demo.main([str(tmp_path / 'empty'), TOY_MIX_CONFIG, run.checkpoint, '--out-dir', str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        image_demo.main([str(photos), TOY_MIX_CONFIG, str(tmp_path / 'none.pth'), '--out-dir', str(tmp_path)])
    with pytest.raises(ValueError, match='broken.jpg: not an image'), one_torch_thread():
        image_demo.main([str(photos / 'broken.jpg'), TOY_MIX_CONFIG, run.checkpoint, '--out-dir', str(tmp_path),
                         '--device', 'cpu'])


def test_outputs_never_land_on_the_photos(demo, photos, tmp_path):
    """--out-dir the photos' folder, or a folder holding it, would put astronaut.png's drawing over it."""
    _, _, run = demo
    folder = tmp_path / 'photos'
    shutil.copytree(photos, folder)
    before = snapshot(tmp_path)
    for inputs, out_dir in ((folder, folder), (folder, tmp_path), (folder / 'astronaut.png', folder)):
        with pytest.raises(ValueError, match=f'--out-dir {out_dir} holds the input image'), one_torch_thread():
            image_demo.main([str(inputs), TOY_MIX_CONFIG, run.checkpoint, '--out-dir', str(out_dir), '--device',
                             'cpu'])
    assert snapshot(tmp_path) == before


def test_a_checkpoint_without_the_relation_branch_is_refused(demo, photos, tmp_path):
    """The demo draws with every tensor from the checkpoint, or with none: the missing keys are named."""
    from speaq_mm.engine import CheckpointMismatchError
    _, _, run = demo
    path, dropped = without_relation_branch(run, tmp_path)
    with pytest.raises(CheckpointMismatchError, match=f'lacks {len(dropped)} of the model.*predicate_classifier'), \
            one_torch_thread():
        image_demo.main([str(photos / 'tiny.png'), TOY_MIX_CONFIG, path, '--out-dir', str(tmp_path / 'out'),
                         '--device', 'cpu'])
    assert not (tmp_path / 'out').exists()

