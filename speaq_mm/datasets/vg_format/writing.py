"""Writing scene graphs in the Visual Genome (VG150) layout (docs/dataset_format.md): the toy generator and
the JSON converter write through these functions, so every file they make is read back by ``VGH5Dataset``.
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

import h5py
import numpy as np

from ...utils.atomic_io import atomic_dump, atomic_path, atomic_write
from .reading import VG_FILE_NAMES, offsets_from_counts


def encode_boxes(boxes: np.ndarray, image_sizes: np.ndarray, box_scale: int = 1024) -> np.ndarray:
    """Encode pixel boxes (x1, y1, x2, y2) as the VG generator does: integer (cx, cy, w, h) in a frame whose
    longer side is ``box_scale``.

    x1 = floor(s * x1), w = ceil(s * (x2 - x1)) with s = box_scale / max(W, H), clamped into the square frame
    with at least 2 px, and cx = x1 + floor(w / 2) (likewise for y).

    Args:
        boxes (np.ndarray): (N, 4) pixel boxes.
        image_sizes (np.ndarray): (N, 2) (width, height) of each box's image.
        box_scale (int): side of the frame.

    Returns:
        np.ndarray: (N, 4) int32 (cx, cy, w, h).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = box_scale / np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2).max(axis=1, keepdims=True)
    corner = np.clip(np.floor(boxes[:, :2] * scale), 0, box_scale - 2)
    size = np.clip(np.ceil((boxes[:, 2:] - boxes[:, :2]) * scale), 2, box_scale - corner)
    return np.concatenate([corner + size // 2, size], axis=1).astype(np.int32)


def write_vg_h5(path: str, split: np.ndarray, box_counts: np.ndarray, boxes: Dict[int, np.ndarray],
                labels: np.ndarray, rel_counts: np.ndarray, relations: np.ndarray) -> None:
    """Write scene graphs as a VG h5 (keys, dtypes and shapes of the VG150 file; labels stored 1-based).

    Args:
        path (str): output file.
        split (np.ndarray): (I,) split code per image (0 train, 1 val, 2 test).
        box_counts (np.ndarray): (I,) number of boxes per image; boxes are stored image after image.
        boxes (dict): box_scale -> (N, 4) int (cx, cy, w, h), e.g. {1024: ..., 512: ...}.
        labels (np.ndarray): (N,) 0-based classes.
        rel_counts (np.ndarray): (I,) number of relations per image.
        relations (np.ndarray): (R, 3) (subject, object, predicate), subject/object local to the image,
            predicate 0-based.
    """
    box_counts, rel_counts = np.asarray(box_counts, np.int64), np.asarray(rel_counts, np.int64)
    relations = np.asarray(relations, np.int64).reshape(-1, 3)
    box_ptr, rel_ptr = offsets_from_counts(box_counts)[:-1], offsets_from_counts(rel_counts)[:-1]
    global_pairs = relations[:, :2] + np.repeat(box_ptr, rel_counts)[:, None]
    num_boxes = int(box_counts.sum())
    with atomic_path(path) as partial, h5py.File(partial, 'w') as h5:
        h5['split'] = np.asarray(split, np.int32)
        h5['img_to_first_box'] = np.where(box_counts > 0, box_ptr, -1).astype(np.int32)
        h5['img_to_last_box'] = np.where(box_counts > 0, box_ptr + box_counts - 1, -1).astype(np.int32)
        h5['img_to_first_rel'] = np.where(rel_counts > 0, rel_ptr, -1).astype(np.int32)
        h5['img_to_last_rel'] = np.where(rel_counts > 0, rel_ptr + rel_counts - 1, -1).astype(np.int32)
        h5['labels'] = (np.asarray(labels, np.int64) + 1).reshape(-1, 1)
        for scale, array in boxes.items():
            h5[f'boxes_{scale}'] = np.asarray(array, np.int32).reshape(-1, 4)
        h5['relationships'] = global_pairs.astype(np.int32)
        h5['predicates'] = (relations[:, 2] + 1).reshape(-1, 1)
        # Present in the distributed VG file, unused by the loaders: written for layout fidelity.
        h5['attributes'] = np.zeros((num_boxes, 10), np.int64)
        h5['active_object_mask'] = np.ones((num_boxes, 1), bool)


def write_image_data(path: str, width: np.ndarray, height: np.ndarray, image_id: Sequence,
                     extra_entries: Sequence[Tuple[int, dict]] = ()) -> None:
    """Write an image-data json, one entry per h5 row, plus ``extra_entries`` (position, entry) inserted
    at the given positions of the final list (how the standard file lists its 4 corrupted images)."""
    entries = [dict(width=int(w), height=int(h), image_id=i, url=f'file://{i}.jpg', coco_id=None,
                    flickr_id=None, anti_prop=0.0)
               for w, h, i in zip(np.asarray(width).tolist(), np.asarray(height).tolist(), image_id)]
    for position, entry in sorted(extra_entries, key=lambda item: item[0]):
        entries.insert(position, entry)
    atomic_write(json.dumps(entries), path)


def write_vg_dicts(path: str, classes: Sequence[str], predicates: Sequence[str], labels: np.ndarray,
                   predicate_labels: np.ndarray) -> None:
    """Write a dicts json: name <-> 1-based index maps (``idx`` keys as strings) and the counts."""
    object_count = np.bincount(np.asarray(labels, np.int64), minlength=len(classes))
    predicate_count = np.bincount(np.asarray(predicate_labels, np.int64), minlength=len(predicates))
    content = dict(
        label_to_idx={name: i + 1 for i, name in enumerate(classes)},
        idx_to_label={str(i + 1): name for i, name in enumerate(classes)},
        predicate_to_idx={name: i + 1 for i, name in enumerate(predicates)},
        idx_to_predicate={str(i + 1): name for i, name in enumerate(predicates)},
        object_count={name: int(c) for name, c in zip(classes, object_count)},
        predicate_count={name: int(c) for name, c in zip(predicates, predicate_count)})
    atomic_dump(content, path)


def write_vg_dataset(out_dir: str, classes: Sequence[str], predicates: Sequence[str], split: np.ndarray,
                     width: np.ndarray, height: np.ndarray, image_id: Sequence, box_counts: np.ndarray,
                     boxes: np.ndarray, labels: np.ndarray, rel_counts: np.ndarray, relations: np.ndarray,
                     extra_image_entries: Sequence[Tuple[int, dict]] = ()) -> Dict[str, str]:
    """Write a complete VG-layout dataset (h5, image-data json, dicts json) from pixel boxes.

    Each file is written atomically: it holds its old content or the new one, never a mix.

    Boxes are given as (x1, y1, x2, y2) in image pixels and encoded into ``boxes_1024`` and ``boxes_512``
    with :func:`encode_boxes`. Images go to ``<out_dir>/VG_100K/<image_id>.jpg`` (written by the caller).

    Returns:
        dict: the written paths under the config keys (``ann_file``, ``image_data_file``, ``dicts_file``,
        ``img_dir``).
    """
    os.makedirs(osp.join(out_dir, VG_FILE_NAMES['img_dir']), exist_ok=True)
    paths = {key: osp.join(out_dir, name) for key, name in VG_FILE_NAMES.items()}
    sizes = np.repeat(np.column_stack([width, height]), np.asarray(box_counts, np.int64), axis=0)
    encoded = {scale: encode_boxes(boxes, sizes, scale) for scale in (1024, 512)}
    write_vg_h5(paths['ann_file'], split, box_counts, encoded, labels, rel_counts, relations)
    write_image_data(paths['image_data_file'], width, height, image_id, extra_image_entries)
    write_vg_dicts(paths['dicts_file'], classes, predicates, labels,
                   np.asarray(relations).reshape(-1, 3)[:, 2])
    return paths
