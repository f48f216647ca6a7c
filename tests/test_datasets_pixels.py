"""The VG150 pipelines resize with PIL's bilinear filter, pixel for pixel, as the reference's mapper does.

The expected pixels are computed here without mmcv: the image read with PIL as RGB (the reference reads it so),
its size from detectron2's ``ResizeShortestEdge`` rule, resized with ``PIL.Image.resize(..., BILINEAR)``. With
mmcv's default cv2 backend shrunk images differ by up to ~100 grey levels (no antialiasing).
"""
import os.path as osp

import numpy as np
import pytest
import skimage.data
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from tests.datasets_fixtures import IMAGE_IDS, REPO_ROOT, SIZES, write_hand_dataset

VG150 = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'vg150.py'))


def reference_size(height, width, short, max_size):
    """detectron2 ``ResizeShortestEdge.get_output_shape``: (new height, new width)."""
    scale = short / min(height, width)
    new_h, new_w = (short, scale * width) if height < width else (scale * height, short)
    if max(new_h, new_w) > max_size:
        scale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def pil_resized(rgb, height, width):
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))


def textured(width, height):
    """A photo (skimage's astronaut) cut or tiled to ``width`` x ``height``, RGB uint8."""
    photo = skimage.data.astronaut()
    reps = (-(-height // photo.shape[0]), -(-width // photo.shape[1]), 1)
    return np.ascontiguousarray(np.tile(photo, reps)[:height, :width])


def resize_steps(pipeline):
    """Every resize step of a pipeline, also inside RandomChoice."""
    for step in pipeline:
        if step['type'] == 'RandomChoice':
            for branch in step['transforms']:
                yield from resize_steps(branch)
        elif 'Resize' in step['type']:
            yield step


def test_every_vg150_resize_uses_pillow():
    steps = list(resize_steps(VG150.train_pipeline)) + list(resize_steps(VG150.test_pipeline))
    assert len(steps) == 4 and all(step.get('backend') == 'pillow' for step in steps)


def test_the_test_pipeline_gives_the_reference_pixels(tmp_path):
    paths = write_hand_dataset(str(tmp_path))
    width, height = SIZES[4]  # the test image: 512 x 256, enlarged to 1333 x 667
    rgb = textured(width, height)
    image_path = osp.join(paths['img_dir'], f'{IMAGE_IDS[4]}.jpg')
    Image.fromarray(rgb).save(image_path, quality=90)
    init_default_scope('mmdet')
    dataset = DATASETS.build(dict(VG150.test_dataloader.dataset, data_root=str(tmp_path), num_val_images=1))
    packed = dataset[0]
    ours = packed['inputs'].numpy().transpose(1, 2, 0)[..., ::-1]  # CHW BGR -> HWC RGB
    new_h, new_w = reference_size(height, width, 800, 1333)
    assert ours.shape == (new_h, new_w, 3) == (667, 1333, 3)
    expected = pil_resized(np.asarray(Image.open(image_path).convert('RGB')), new_h, new_w)
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize('branch', [0, 1])
def test_the_train_resizes_give_the_reference_pixels(branch):
    """Each multi-scale resize of the train pipeline, on a 1024 x 1024 photo (shrunk) and a 300 x 200 one."""
    init_default_scope('mmdet')
    choice = next(step for step in VG150.train_pipeline if step['type'] == 'RandomChoice')
    steps = [step for step in choice['transforms'][branch] if 'Resize' in step['type']]
    for step in steps:
        transform = TRANSFORMS.build(step)
        shorts = {short for _, short in step['scales']}
        max_size = {long for long, _ in step['scales']}.pop()
        for seed, (width, height) in enumerate([(1024, 1024), (1024, 700), (300, 200)]):
            np.random.seed(seed)
            rgb = textured(width, height)
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            out = transform(dict(img=bgr, img_shape=bgr.shape[:2], ori_shape=bgr.shape[:2]))['img']
            new_h, new_w = out.shape[:2]
            assert any(reference_size(height, width, short, max_size) == (new_h, new_w) for short in shorts)
            assert np.array_equal(out[..., ::-1], pil_resized(rgb, new_h, new_w))
