"""Inputs of the scene graph inference tests: the shared toy run's checkpoint (the ``toy_run`` fixture of
tests/conftest.py) and a folder of its test images at mixed sizes and aspect ratios."""
import glob
import os.path as osp

import numpy as np
from PIL import Image

from tests.tools_fixtures import TOY_MIX_CONFIG  # noqa: F401  (re-exported for the test modules)

# (width, height) of the mixed folder: landscape, portrait, square, tiny and wide, several sharing a size so
# that a batch of 8 holds real multi-image forward passes next to single ones.
MIXED_SIZES = [(128, 128), (160, 96), (96, 160), (128, 128), (200, 90), (160, 96), (37, 23), (128, 128),
               (90, 200), (160, 96), (300, 120), (64, 64)]


def toy_test_images(run):
    """The toy real dataset's images, sorted."""
    return sorted(glob.glob(osp.join(run.real_root, 'VG_100K', '*.jpg')))


def make_mixed_folder(run, folder, count=len(MIXED_SIZES), fmt='png'):
    """``count`` toy scenes resized to :data:`MIXED_SIZES` (cycled) as ``img_XX.<fmt>`` in ``folder``."""
    sources = toy_test_images(run)
    paths = []
    for k in range(count):
        size = MIXED_SIZES[k % len(MIXED_SIZES)]
        with Image.open(sources[k % len(sources)]) as image:
            path = osp.join(str(folder), f'img_{k:02d}.{fmt}')
            image.convert('RGB').resize(size, Image.BILINEAR).save(path)
        paths.append(path)
    return paths


def assert_same_graphs(expected, actual, box_tol=1e-3, score_tol=1e-5):
    """Same images, same objects and relations in the same order; boxes and scores within the tolerances."""
    assert [g['file_name'] for g in actual] == [g['file_name'] for g in expected]
    for want, got in zip(expected, actual):
        where = want['file_name']
        assert (got['id'], got['width'], got['height']) == (want['id'], want['width'], want['height']), where
        assert [(r['subject'], r['object'], r['predicate']) for r in got['relations']] == [
            (r['subject'], r['object'], r['predicate']) for r in want['relations']], where
        assert [o['name'] for o in got['objects']] == [o['name'] for o in want['objects']], where
        if want['objects']:
            np.testing.assert_allclose([o['bbox'] for o in got['objects']], [o['bbox'] for o in want['objects']],
                                       atol=box_tol, rtol=0, err_msg=where)
            np.testing.assert_allclose([o['score'] for o in got['objects']], [o['score'] for o in want['objects']],
                                       atol=score_tol, rtol=0, err_msg=where)
        if want['relations']:
            for key in ('score', 'predicate_score'):
                np.testing.assert_allclose([r[key] for r in got['relations']], [r[key] for r in want['relations']],
                                           atol=score_tol, rtol=0, err_msg=where)
