"""Tiny hand-written VG-layout datasets for the dataset tests, with every value known in advance.

Vocabulary: classes cat, dog, hat (labels 0, 1, 2); predicates has, near, on (0, 1, 2).

| h5 row | split | size (W x H) | boxes_1024 (cx, cy, w, h) and class | relations (subject, object, pred.) |
|---|---|---|---|---|
| 0 | 0 | 200 x 100 | (100, 50, 41, 30) cat; (300, 200, 100, 51) hat | (1, 0, on), (1, 0, near), (0, 1, has) |
| 1 | 0 | 50 x 50 | none | none |
| 2 | 0 | 64 x 64 | (512, 512, 64, 64) dog | none |
| 3 | 0 | 100 x 300 | (10, 20, 8, 8) dog; (12, 22, 8, 8) hat; (900, 900, 50, 50) cat | (0, 1, near) |
| 4 | 2 | 512 x 256 | (100, 100, 20, 20) cat; (140, 100, 20, 20) dog | (0, 1, has), (0, 1, has) |
| 5 | 2 | 300 x 400 | (600, 600, 10, 10) hat | none |
| 6 | 0 | 1024 x 1024 | (100, 100, 20, 20) dog; (600, 600, 20, 20) cat | (1, 0, near) |

Image ids are 10 + row. The image-data json has one extra entry, id 1722 (a corrupted VG id), between rows
1 and 2. The dicts json lists the names in a shuffled order with the indices above.
"""
import importlib.util
import json
import os
import os.path as osp

import h5py
import numpy as np

from speaq_mm.datasets.vg_format import write_image_data, write_vg_h5

CLASSES = ('cat', 'dog', 'hat')
PREDICATES = ('has', 'near', 'on')
SPLIT = [0, 0, 0, 0, 2, 2, 0]
SIZES = [(200, 100), (50, 50), (64, 64), (100, 300), (512, 256), (300, 400), (1024, 1024)]
BOXES_1024 = [
    [(100, 50, 41, 30), (300, 200, 100, 51)],
    [],
    [(512, 512, 64, 64)],
    [(10, 20, 8, 8), (12, 22, 8, 8), (900, 900, 50, 50)],
    [(100, 100, 20, 20), (140, 100, 20, 20)],
    [(600, 600, 10, 10)],
    [(100, 100, 20, 20), (600, 600, 20, 20)],
]
LABELS = [[0, 2], [], [1], [1, 2, 0], [0, 1], [2], [1, 0]]
RELATIONS = [[(1, 0, 2), (1, 0, 1), (0, 1, 0)], [], [], [(0, 1, 1)], [(0, 1, 0), (0, 1, 0)], [], [(1, 0, 1)]]
IMAGE_IDS = [10 + row for row in range(len(SPLIT))]
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(relative_path: str):
    """Import a script of tools/ (not a package) as a module."""
    name = osp.splitext(osp.basename(relative_path))[0]
    spec = importlib.util.spec_from_file_location(f'tools_{name}', osp.join(REPO_ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_hand_dataset(root: str, boxes_1024=None, relations=None) -> dict:
    """Write the table of the module docstring under ``root`` (``VG_100K`` created empty).

    Args:
        root (str): output folder.
        boxes_1024 (list, optional): replaces ``BOXES_1024`` (same nesting).
        relations (list, optional): replaces ``RELATIONS``.

    Returns:
        dict: paths under the dataset config keys.
    """
    boxes_1024 = BOXES_1024 if boxes_1024 is None else boxes_1024
    relations = RELATIONS if relations is None else relations
    os.makedirs(osp.join(root, 'VG_100K'), exist_ok=True)
    paths = dict(ann_file=osp.join(root,
                                   'VG-SGG-with-attri.h5'), image_data_file=osp.join(root, 'image_data.json'),
                 dicts_file=osp.join(root, 'VG-SGG-dicts-with-attri.json'), img_dir=osp.join(root, 'VG_100K'))
    flat_boxes = np.array([box for image in boxes_1024 for box in image], np.int32).reshape(-1, 4)
    write_vg_h5(paths['ann_file'], np.array(SPLIT), [len(b) for b in boxes_1024], {
        1024: flat_boxes,
        512: flat_boxes // 2
    }, np.array([label for image in LABELS for label in image]), [len(r) for r in relations],
                np.array([rel for image in relations for rel in image]).reshape(-1, 3))
    width, height = np.array(SIZES).T
    corrupted = dict(width=800, height=600, image_id=1722, url='', coco_id=None, flickr_id=None,
                     anti_prop=0.0)
    write_image_data(paths['image_data_file'], width, height, IMAGE_IDS, extra_entries=[(2, corrupted)])
    shuffled = [2, 0, 1]
    with open(paths['dicts_file'], 'w') as f:
        json.dump(dict(label_to_idx={CLASSES[i]: i + 1 for i in shuffled},
                       idx_to_label={str(i + 1): CLASSES[i] for i in shuffled},
                       predicate_to_idx={PREDICATES[i]: i + 1 for i in shuffled},
                       idx_to_predicate={str(i + 1): PREDICATES[i] for i in shuffled}), f)
    return paths


def edit_h5(path: str, **arrays) -> None:
    """Replace (or, with value None, delete) keys of an h5 file."""
    with h5py.File(path, 'a') as h5:
        for key, value in arrays.items():
            del h5[key]
            if value is not None:
                h5[key] = value


def make_images(paths: dict, rows=None) -> None:
    """Write solid JPEG images of the json sizes for the given h5 rows (default: all)."""
    from PIL import Image
    for row in range(len(SPLIT)) if rows is None else rows:
        Image.new('RGB', SIZES[row],
                  (row * 30, 100, 200)).save(osp.join(paths['img_dir'], f'{IMAGE_IDS[row]}.jpg'))
