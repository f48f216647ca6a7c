"""Scene graphs stored in the Visual Genome (VG150) h5 layout: reading, statistics, writing.

The layout (h5 keys, the image-data json, the dicts json) is described in docs/dataset_format.md. Every step
works on whole-file numpy arrays: the reference loaders' per-image Python loop and their pickle caches are
what made them slow and stale, so nothing here loops over images and nothing is cached on disk. Records are
kept as flat arrays plus per-image offsets and materialised only when ``get_data_info`` asks for one.
"""
import copy
import json
import os
import os.path as osp
import re
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.dataset import force_full_init

from ..utils import reject_unknown_kwargs
from .seeded_draws import fetch_seeded

# Four Visual Genome images are corrupted; image_data.json lists them but the h5 has no rows for them.
VG_CORRUPTED_IMAGE_IDS = (1592, 1722, 4616, 4617)
# Metainfo keys that legitimately differ between two datasets with the same vocabulary. mmengine's
# ConcatDataset must be told to ignore them (``ignore_keys``), see docs/dataset_format.md.
STATISTICS_KEYS = ('fg_rel_count', 'obj_count', 'triplets', 'split_counts')
SPLITS = ('train', 'val', 'test')
BOX_DECODES = ('truncate', 'float')
# The standard file names of the VG150 release; the toy generator writes the same names.
VG_FILE_NAMES = dict(
    ann_file='VG-SGG-with-attri.h5',
    image_data_file='image_data.json',
    dicts_file='VG-SGG-dicts-with-attri.json',
    img_dir='VG_100K')
# An image id becomes the file name <image_id><img_suffix> inside the image folder: ids are integers or plain
# names (letters, digits, '_', '-', '.'; not starting with '.'), so that no id can reach outside the folder.
PLAIN_IMAGE_ID = re.compile(r'[A-Za-z0-9_-][A-Za-z0-9_.-]*')
_PER_IMAGE_KEYS = ('split', 'img_to_first_box', 'img_to_last_box', 'img_to_first_rel', 'img_to_last_rel')


class VGFormatError(ValueError):
    """A scene-graph file does not follow the VG layout; the message names the file and the field."""


def concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + c)`` for every pair (s, c), without a Python loop.

    Args:
        starts (np.ndarray): first value of each range.
        counts (np.ndarray): length of each range (>= 0).

    Returns:
        np.ndarray: int64 array of length ``counts.sum()``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(counts)
    shifts = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - counts), counts)
    return shifts + np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------
def read_vg_dicts(path: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Read the class and predicate names of a VG dicts json.

    Args:
        path (str): the ``VG-SGG-dicts-with-attri.json``-style file.

    Returns:
        tuple: (classes, predicates), names ordered by their 1-based index, so position = 0-based label.
    """
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise VGFormatError(f'{path}: cannot read the dicts json ({err})') from err
    names = []
    for key in ('label_to_idx', 'predicate_to_idx'):
        if not isinstance(content, dict) or not isinstance(content.get(key), dict) or not content[key]:
            raise VGFormatError(f'{path}: field "{key}" (name -> 1-based index) is missing or empty')
        mapping = content[key]
        indices = sorted(mapping.values())
        if indices != list(range(1, len(mapping) + 1)):
            raise VGFormatError(
                f'{path}: field "{key}" must map its {len(mapping)} names to the indices 1..{len(mapping)} '
                f'exactly once each, got {indices[:5]}...')
        names.append(tuple(sorted(mapping, key=mapping.__getitem__)))
    return names[0], names[1]


def read_vg_h5(path: str, box_scale: int = 1024) -> Tuple[Dict[str, np.ndarray], bool]:
    """Read the arrays of a VG h5 that the loader needs, after checking their dtypes and shapes.

    Args:
        path (str): the h5 file.
        box_scale (int): which ``boxes_<box_scale>`` array to read.

    Returns:
        tuple: ``arrays`` and ``integer_boxes``. ``arrays`` holds the per-image keys and ``relationships``
        (R, 2) with their stored integer dtypes, ``labels`` and ``predicates`` (1-D, 1-based) as int32, and
        ``boxes`` (N, 4) as float32 (float64 when stored so; float32 holds integer coordinates and their
        halves exactly). ``integer_boxes`` says whether the file stores integer boxes.
    """
    box_key = f'boxes_{box_scale}'
    required = _PER_IMAGE_KEYS + ('labels', box_key, 'relationships', 'predicates')
    try:
        h5 = h5py.File(path, 'r')
    except OSError as err:
        raise VGFormatError(f'{path}: cannot open the h5 file ({err})') from err
    with h5:
        missing = [key for key in required if key not in h5]
        if missing:
            raise VGFormatError(f'{path}: missing h5 keys {missing} (the loader needs {list(required)})')
        datasets = {key: h5[key] for key in required}
        for key, dataset in datasets.items():
            if not (np.issubdtype(dataset.dtype, np.integer) or (key == box_key and dataset.dtype.kind == 'f')):
                raise VGFormatError(f'{path}: h5 key "{key}" must hold integers, got dtype {dataset.dtype}')
        for key, width in ((box_key, 4), ('relationships', 2)):
            if len(datasets[key].shape) != 2 or datasets[key].shape[1] != width:
                raise VGFormatError(
                    f'{path}: h5 key "{key}" must have shape (N, {width}), got {datasets[key].shape}')
        for key in _PER_IMAGE_KEYS + ('labels', 'predicates'):
            # The VG files store labels/predicates as (N, 1) columns; flat arrays are accepted too.
            shape = datasets[key].shape
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise VGFormatError(f'{path}: h5 key "{key}" must have shape (N,) or (N, 1), got {shape}')
        rows = {key: datasets[key].shape[0] for key in required}
        for key in _PER_IMAGE_KEYS:
            if rows[key] != rows['split']:
                raise VGFormatError(f'{path}: h5 key "{key}" has {rows[key]} rows, "split" has {rows["split"]}')
        if rows['labels'] != rows[box_key]:
            raise VGFormatError(f'{path}: h5 keys "labels" ({rows["labels"]} rows) and "{box_key}" '
                                f'({rows[box_key]} rows) must have one row per box')
        if rows['predicates'] != rows['relationships']:
            raise VGFormatError(
                f'{path}: h5 keys "predicates" ({rows["predicates"]} rows) and "relationships" '
                f'({rows["relationships"]} rows) must have one row per relation')
        box_dtype = np.float64 if datasets[box_key].dtype == np.float64 else np.float32
        arrays = {'boxes': datasets[box_key].astype(box_dtype)[()],
                  'relationships': datasets['relationships'][()]}
        for key in _PER_IMAGE_KEYS:
            arrays[key] = datasets[key][()].reshape(-1)
        # Class indices fit int32 whatever the stored width; half the memory of VG's int64 columns.
        for key in ('labels', 'predicates'):
            arrays[key] = datasets[key].astype(np.int32)[()].reshape(-1)
        return arrays, np.issubdtype(datasets[box_key].dtype, np.integer)


def read_image_data(path: str) -> Dict[str, np.ndarray]:
    """Read width, height and image id of every entry of an image-data json.

    Args:
        path (str): the json file (a list of dicts with ``width``, ``height``, ``image_id``).

    Returns:
        dict: ``width`` and ``height`` (int64 arrays) and ``image_id`` (int64 array, or object array when
        some ids are strings), one value per json entry.
    """
    try:
        with open(path) as f:
            entries = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise VGFormatError(f'{path}: cannot read the image-data json ({err})') from err
    if not isinstance(entries, list):
        raise VGFormatError(f'{path}: the image-data json must be a list of image entries')
    columns = {}
    for column in ('width', 'height', 'image_id'):
        try:
            columns[column] = [entry[column] for entry in entries]
        except (KeyError, TypeError):
            bad = next(i for i, e in enumerate(entries) if not isinstance(e, dict) or column not in e)
            raise VGFormatError(f'{path}: entry {bad} has no field "{column}"') from None
    del entries
    image_ids = columns.pop('image_id')
    check_image_ids(image_ids, path)
    # Integer ids go into an int64 array: holding the parsed int objects instead would pin the memory of the
    # whole parsed json (they sit between the freed entry dicts).
    if all(type(image_id) is int for image_id in image_ids):
        image_data = {'image_id': np.array(image_ids, dtype=np.int64)}
    else:
        image_data = {'image_id': np.array(image_ids, dtype=object)}
    del image_ids
    for column in ('width', 'height'):
        try:
            values = np.array(columns[column], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise VGFormatError(f'{path}: field "{column}" must be a number in every entry ({err})') from None
        bad = np.flatnonzero(~(values > 0) | (values != np.round(values)))
        if len(bad):
            raise VGFormatError(f'{path}: entry {bad[0]} has {column}={columns[column][bad[0]]}; '
                                f'image sizes must be positive integers ({len(bad)} entries affected)')
        image_data[column] = values.astype(np.int64)
    return image_data


def check_image_ids(image_ids: Sequence, where: str) -> None:
    """Raise :class:`VGFormatError` naming ``where`` and the id for an id that is not a plain image id.

    Ids are joined into image paths, so ``'../../etc/hostname'`` or ``'/abs/path'`` would read files outside
    the image folder; integers and names matching :data:`PLAIN_IMAGE_ID` are accepted.
    """
    for index, image_id in enumerate(image_ids):
        if type(image_id) is int or (isinstance(image_id, str) and PLAIN_IMAGE_ID.fullmatch(image_id)):
            continue
        raise VGFormatError(f'{where}: entry {index} has image_id={image_id!r}; image ids must be integers or plain '
                            "names (letters, digits, '_', '-', '.', not starting with '.'), since they name "
                            'files inside the image folder')


def align_image_data(
        path: str, image_data: Dict[str, np.ndarray], num_rows: int,
        skip_image_ids: Sequence[Union[int, str]] = VG_CORRUPTED_IMAGE_IDS) -> Dict[str, np.ndarray]:
    """Align image-data entries with the h5 image rows.

    The json is aligned with the h5 by position. When it has more entries than the h5 has rows, the entries
    whose ``image_id`` is in ``skip_image_ids`` (compared as strings, like the reference loaders) are removed
    first: the standard file lists the 4 corrupted VG images the h5 skips. The rest must then match the h5
    row for row.

    Args:
        path (str): the json file, for error messages.
        image_data (dict): the output of :func:`read_image_data`.
        num_rows (int): number of image rows of the h5.
        skip_image_ids (Sequence): ids to drop when the json is longer than the h5.

    Returns:
        dict: the same columns, one value per h5 row.
    """
    total = len(image_data['image_id'])
    if total == num_rows:
        return image_data
    skip = {str(image_id) for image_id in skip_image_ids}
    # Ids compare as strings; listing both spellings avoids a str() per entry.
    skip_any = skip | {int(image_id) for image_id in skip if image_id.lstrip('-').isdigit()}
    keep = np.array([image_id not in skip_any for image_id in image_data['image_id'].tolist()], dtype=bool)
    if int(keep.sum()) != num_rows:
        raise VGFormatError(
            f'{path}: the image-data json has {total} entries ({int(keep.sum())} after skipping the image '
            f'ids {sorted(skip)}), but the h5 has {num_rows} image rows; entry i must describe h5 row i')
    return {field: values[keep] for field, values in image_data.items()}


def _check_ranges(path: str, first: np.ndarray, last: np.ndarray, num_items: int, keys: Tuple[str, str],
                  items: str) -> np.ndarray:
    """Validate inclusive per-image index ranges and return the per-image item counts."""
    none = first == -1
    bad = (none != (last == -1)) | (~none & ((first < 0) | (first > last) | (last >= num_items)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise VGFormatError(
            f'{path}: {keys[0]}/{keys[1]} of image row {row} = ({first[row]}, {last[row]}) is not an '
            f'inclusive range into the {num_items} {items} (-1/-1 means none); {int(bad.sum())} image rows '
            'affected')
    return np.where(none, 0, last - first + 1)


@dataclass
class VGGraphs:
    """Every image of a VG h5, validated, with boxes decoded to (x1, y1, x2, y2) in the ``box_scale`` frame.

    Boxes and relations are stored image after image; ``box_ptr``/``rel_ptr`` hold the offsets.
    Relations hold (subject, object) indices local to their image and a 0-based predicate. ``statistics``
    keeps the train statistics already computed, per split options, for the datasets sharing these arrays.
    """

    split: np.ndarray
    width: np.ndarray
    height: np.ndarray
    image_id: np.ndarray
    box_ptr: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    rel_ptr: np.ndarray
    relations: np.ndarray
    box_scale: int
    statistics: Dict[tuple, dict] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_boxes(self) -> np.ndarray:
        """Number of boxes of every image."""
        return np.diff(self.box_ptr)

    @property
    def num_rels(self) -> np.ndarray:
        """Number of relations of every image."""
        return np.diff(self.rel_ptr)


def _offsets(counts: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def _gather_rows(first: np.ndarray, count: np.ndarray, num_items: int) -> Union[slice, np.ndarray]:
    """Rows of the item arrays, image after image; a plain slice when the file stores them that way already
    (as the VG files do), which spares a copy of every per-box array."""
    offsets = _offsets(count)
    if offsets[-1] == num_items and np.array_equal(first[count > 0], offsets[:-1][count > 0]):
        return slice(None)
    return concat_ranges(first, count)


def load_vg_graphs(h5_path: str, image_data_path: str, num_classes: int, num_predicates: int,
                   box_scale: int = 1024, box_decode: str = 'truncate',
                   skip_image_ids: Sequence[Union[int, str]] = VG_CORRUPTED_IMAGE_IDS) -> VGGraphs:
    """Load and validate a whole VG h5 and its image-data json.

    Boxes with zero or negative width or height are dropped together with their relations (one warning
    gives the counts); every other inconsistency raises :class:`VGFormatError`.

    Args:
        h5_path (str): the h5 file.
        image_data_path (str): the image-data json.
        num_classes (int): number of object classes (h5 labels must be 1..num_classes).
        num_predicates (int): number of predicates (h5 predicates must be 1..num_predicates).
        box_scale (int): the frame of the boxes to read (``boxes_<box_scale>``).
        box_decode (str): ``'truncate'`` (as the reference loaders: the corner x1 = cx - w / 2 is stored back
            into the h5's integer array, i.e. truncated toward zero) or ``'float'`` (exact corner).
        skip_image_ids (Sequence): image ids of the json to skip when it is longer than the h5.

    Returns:
        VGGraphs: the whole file.
    """
    if box_decode not in BOX_DECODES:
        raise ValueError(f'box_decode must be one of {BOX_DECODES}, got {box_decode!r}')
    # The json first: its parse is the largest transient allocation, so it should not overlap the h5 arrays.
    image_data = read_image_data(image_data_path)
    arrays, integer_boxes = read_vg_h5(h5_path, box_scale)
    n_images, n_boxes, n_rels = len(arrays['split']), len(arrays['boxes']), len(arrays['relationships'])
    image_data = align_image_data(image_data_path, image_data, n_images, skip_image_ids)

    first_box = arrays['img_to_first_box'].astype(np.int64)
    first_rel = arrays['img_to_first_rel'].astype(np.int64)
    box_count = _check_ranges(h5_path, first_box, arrays['img_to_last_box'].astype(np.int64), n_boxes,
                              ('img_to_first_box', 'img_to_last_box'), 'boxes')
    rel_count = _check_ranges(h5_path, first_rel, arrays['img_to_last_rel'].astype(np.int64), n_rels,
                              ('img_to_first_rel', 'img_to_last_rel'), 'relations')
    box_rows = _gather_rows(first_box, box_count, n_boxes)
    rel_rows = _gather_rows(first_rel, rel_count, n_rels)
    labels = arrays['labels'][box_rows]
    predicates = arrays['predicates'][rel_rows]
    for key, values, rows, limit in (('labels', labels, box_rows, num_classes),
                                     ('predicates', predicates, rel_rows, num_predicates)):
        bad = np.flatnonzero((values < 1) | (values > limit))
        if len(bad):
            row = bad[0] if isinstance(rows, slice) else rows[bad[0]]
            raise VGFormatError(f'{h5_path}: h5 key "{key}" row {row} = {values[bad[0]]} is outside '
                                f'1..{limit} (1-based, from the dicts json); {len(bad)} rows affected')
    labels -= 1

    # Relations: global box rows -> indices local to the image that lists them.
    rel_image = np.repeat(np.arange(n_images, dtype=np.int32), rel_count)
    local = np.empty((len(rel_image), 3), np.int32)
    np.subtract(arrays['relationships'][rel_rows], first_box.astype(np.int32)[rel_image, None], out=local[:, :2],
                casting='unsafe')
    np.subtract(predicates, 1, out=local[:, 2], casting='unsafe')
    outside = ((local[:, :2] < 0) | (local[:, :2] >= box_count.astype(np.int32)[rel_image, None])).any(axis=1)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        image = rel_image[bad]
        row = bad if isinstance(rel_rows, slice) else rel_rows[bad]
        raise VGFormatError(
            f'{h5_path}: h5 key "relationships" row {row} = {arrays["relationships"][row].tolist()} (of '
            f'image row {image}) points outside that image\'s boxes {first_box[image]}..'
            f'{first_box[image] + box_count[image] - 1} (img_to_first_box..img_to_last_box); '
            f'{int(outside.sum())} relations affected')

    # Decode (cx, cy, w, h) -> (x1, y1, x2, y2) in the box_scale frame, in place.
    boxes = arrays.pop('boxes')[box_rows]
    boxes[:, :2] -= boxes[:, 2:] / 2
    if box_decode == 'truncate' and integer_boxes:
        np.trunc(boxes[:, :2], out=boxes[:, :2])
    boxes[:, 2:] += boxes[:, :2]

    keep_box = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not keep_box.all():
        # Local indices shift down by the number of dropped boxes before them in the same image.
        box_ptr_old = _offsets(box_count)
        dropped_before = np.concatenate([[0], np.cumsum(~keep_box)])
        flat = box_ptr_old[rel_image, None] + local[:, :2]
        keep_rel = keep_box[flat].all(axis=1)
        local[:, :2] -= dropped_before[flat] - dropped_before[box_ptr_old[rel_image], None]
        box_image = np.repeat(np.arange(n_images), box_count)
        warnings.warn(
            f'{h5_path}: dropped {int((~keep_box).sum())} boxes with zero or negative width/height '
            f'(in {len(np.unique(box_image[~keep_box]))} images) and the {int((~keep_rel).sum())} '
            'relations that use them', stacklevel=2)
        boxes, labels, local = boxes[keep_box], labels[keep_box], local[keep_rel]
        box_count = np.bincount(box_image[keep_box], minlength=n_images)
        rel_count = np.bincount(rel_image[keep_rel], minlength=n_images)
    return VGGraphs(split=arrays['split'].astype(np.int64), width=image_data['width'],
                    height=image_data['height'], image_id=image_data['image_id'], box_ptr=_offsets(box_count),
                    boxes=boxes, labels=labels, rel_ptr=_offsets(rel_count), relations=local,
                    box_scale=box_scale)


# ----------------------------------------------------------------------------------------------------------
# Splits and statistics
# ----------------------------------------------------------------------------------------------------------
@dataclass
class SplitSelection:
    """Images of one split: h5 rows, plus a keep mask over their relations when some were filtered."""

    rows: np.ndarray
    rel_keep: Optional[np.ndarray] = None


def select_split(graphs: VGGraphs, split: str, num_val_images: int = 5000, filter_empty_rels: bool = True,
                 filter_non_overlap: bool = False, use_h5_val_split: bool = False) -> SplitSelection:
    """Pick the images of a split with the reference protocol (docs/dataset_format.md, section 2).

    Train/val: images with ``split == 0`` that have boxes (and relations when ``filter_empty_rels``);
    val is the first ``num_val_images`` of them and train the rest, unless ``use_h5_val_split`` reads
    val from the rows with ``split == 1``. Test: ``split == 2``. ``filter_non_overlap`` (train only) keeps
    relations whose two boxes intersect with a positive area and drops images left without one.

    Returns:
        SplitSelection: the selected h5 rows in file order.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    code = {'train': 0, 'val': 1 if use_h5_val_split else 0, 'test': 2}[split]
    mask = (graphs.split == code) & (graphs.num_boxes > 0)
    if filter_empty_rels:
        mask &= graphs.num_rels > 0
    rows = np.flatnonzero(mask)
    if not use_h5_val_split and split != 'test':
        rows = rows[:num_val_images] if split == 'val' else rows[num_val_images:]
    if not (filter_non_overlap and split == 'train'):
        return SplitSelection(rows)
    rel_index = concat_ranges(graphs.rel_ptr[rows], graphs.num_rels[rows])
    rel_image = np.repeat(rows, graphs.num_rels[rows])
    subject = graphs.boxes[graphs.box_ptr[rel_image] + graphs.relations[rel_index, 0]]
    obj = graphs.boxes[graphs.box_ptr[rel_image] + graphs.relations[rel_index, 1]]
    overlap = np.minimum(subject[:, 2:], obj[:, 2:]) - np.maximum(subject[:, :2], obj[:, :2])
    rel_keep = (overlap > 0).all(axis=1)
    image_keep = np.bincount(np.searchsorted(rows, rel_image[rel_keep]), minlength=len(rows)) > 0
    rel_keep = rel_keep[np.repeat(image_keep, graphs.num_rels[rows])]
    return SplitSelection(rows[image_keep], rel_keep)


def _selected_relations(graphs: VGGraphs, selection: SplitSelection) -> Tuple[np.ndarray, np.ndarray]:
    """Relation rows (into ``graphs.relations``) of a selection and the selected image of each."""
    counts = graphs.num_rels[selection.rows]
    index = concat_ranges(graphs.rel_ptr[selection.rows], counts)
    position = np.repeat(np.arange(len(selection.rows)), counts)
    if selection.rel_keep is not None:
        index, position = index[selection.rel_keep], position[selection.rel_keep]
    return index, position


def split_counts(graphs: VGGraphs, selection: SplitSelection) -> Dict[str, int]:
    """Images, objects and relations of a split selection."""
    return dict(images=len(selection.rows), objects=int(graphs.num_boxes[selection.rows].sum()),
                relations=len(_selected_relations(graphs, selection)[0]))


def compute_statistics(graphs: VGGraphs, selection: SplitSelection, num_classes: int, num_predicates: int,
                       source: str = '') -> Dict[str, np.ndarray]:
    """Per-predicate and per-class counts and the triplet set of a split (the train split in practice).

    Returns:
        dict: ``fg_rel_count`` int64 (num_predicates,), ``obj_count`` int64 (num_classes,), ``triplets``
        int64 (T, 3) unique (subject class, object class, predicate) rows, sorted.
    """
    rel_index, position = _selected_relations(graphs, selection)
    if len(rel_index) == 0:
        raise ValueError(f'{source}: the split has no relations, so the predicate statistics (fg_rel_count, '
                         'triplets) cannot be computed; check the split and the filters or set '
                         'with_statistics=False')
    box_first = graphs.box_ptr[selection.rows][position]
    relations = graphs.relations[rel_index]
    box_index = concat_ranges(graphs.box_ptr[selection.rows], graphs.num_boxes[selection.rows])
    obj_count = np.bincount(graphs.labels[box_index], minlength=num_classes).astype(np.int64)
    fg_rel_count = np.bincount(relations[:, 2], minlength=num_predicates).astype(np.int64)
    subject = graphs.labels[box_first + relations[:, 0]]
    obj = graphs.labels[box_first + relations[:, 1]]
    keys = np.sort((subject.astype(np.int64) * num_classes + obj) * num_predicates + relations[:, 2])
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    triplets = np.column_stack([keys // num_predicates // num_classes, keys // num_predicates % num_classes,
                                keys % num_predicates]).astype(np.int64)
    return dict(fg_rel_count=fg_rel_count, obj_count=obj_count, triplets=triplets)


@dataclass
class SplitView:
    """The images of one split inside a :class:`VGGraphs`; what ``VGH5Dataset`` holds.

    Only indices are stored: the boxes stay in the shared whole-file arrays and are rescaled to pixels when a
    record is built, so the train, val and test datasets of one file hold a single copy of the data.
    """

    graphs: VGGraphs
    rows: np.ndarray
    rel_ptr: np.ndarray
    rel_index: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_selection(cls, graphs: VGGraphs, selection: SplitSelection) -> 'SplitView':
        """The view of a split selection."""
        rel_index, position = _selected_relations(graphs, selection)
        return cls(graphs, selection.rows, _offsets(np.bincount(position, minlength=len(selection.rows))),
                   rel_index)

    def take(self, positions: np.ndarray) -> 'SplitView':
        """A view holding the given images (positions into this view) in the given order."""
        counts = np.diff(self.rel_ptr)[positions]
        return SplitView(self.graphs, self.rows[positions], _offsets(counts),
                         self.rel_index[concat_ranges(self.rel_ptr[positions], counts)])

    def image(self, position: int) -> Tuple[Union[int, str], int, int, List[List[float]], List[int], np.ndarray]:
        """Image id, width, height, pixel boxes (x1, y1, x2, y2 lists), labels and relations (R, 3) int64."""
        graphs, row = self.graphs, self.rows[position]
        image_id = graphs.image_id[row]
        image_id = image_id.item() if isinstance(image_id, np.generic) else image_id
        width, height = int(graphs.width[row]), int(graphs.height[row])
        first, last = graphs.box_ptr[row], graphs.box_ptr[row + 1]
        # The same double-precision operations in the same order as the reference (box / scale * longer side),
        # so the records match it bit for bit; plain floats are faster than numpy for a dozen boxes.
        scale, longer = graphs.box_scale, max(width, height)
        boxes = [[value / scale * longer for value in box] for box in graphs.boxes[first:last].tolist()]
        relations = graphs.relations[self.rel_index[self.rel_ptr[position]:self.rel_ptr[position + 1]]]
        return image_id, width, height, boxes, graphs.labels[first:last].tolist(), relations.astype(np.int64)


_SHARED_GRAPHS: 'weakref.WeakValueDictionary' = weakref.WeakValueDictionary()


def _file_identity(path: str) -> Tuple[str, int, int]:
    stat = os.stat(path)
    return osp.realpath(path), stat.st_size, stat.st_mtime_ns


def shared_vg_graphs(h5_path: str, image_data_path: str, num_classes: int, num_predicates: int,
                     box_scale: int = 1024, box_decode: str = 'truncate',
                     skip_image_ids: Sequence[Union[int, str]] = VG_CORRUPTED_IMAGE_IDS) -> VGGraphs:
    """:func:`load_vg_graphs`, loaded once for every dataset of this process that reads the same files.

    Train, val and test of one file then share the arrays (and the file is read once). The entry is keyed by
    path, size and modification time of both files and by the options, so an edited file is read again, and
    it disappears with the last dataset that holds it (nothing is written to disk).
    """
    key = (_file_identity(h5_path), _file_identity(image_data_path), num_classes, num_predicates, box_scale,
           box_decode, tuple(str(image_id) for image_id in skip_image_ids))
    graphs = _SHARED_GRAPHS.get(key)
    if graphs is None:
        graphs = load_vg_graphs(h5_path, image_data_path, num_classes, num_predicates, box_scale, box_decode,
                                skip_image_ids)
        _SHARED_GRAPHS[key] = graphs
    return graphs


# ----------------------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------------------
@DATASETS.register_module()
class VGH5Dataset(BaseDetDataset):
    """Scene graphs in the Visual Genome h5 layout (VG150, or synthetic/custom data in the same format).

    Records follow docs/structures.md: ``img_path``, ``img_id``, ``height``, ``width``, ``instances``
    (``bbox`` x1y1x2y2 in original pixels, ``bbox_label`` 0-based, ``ignore_flag`` 0), ``relations``
    (R, 3) int64 (subject, object, predicate), ``source`` and ``sample_weight``. Metainfo holds ``classes``
    and ``predicates`` (from the dicts json) and the train-split statistics (see :data:`STATISTICS_KEYS`).

    Args:
        ann_file (str): the h5 file (``VG-SGG-with-attri.h5``), relative to ``data_root``.
        image_data_file (str): the image-data json, relative to ``data_root``.
        dicts_file (str): the dicts json with ``label_to_idx``/``predicate_to_idx``, relative to
            ``data_root``.
        data_prefix (dict, optional): ``img``: the image folder, relative to ``data_root``
            (default ``VG_100K``).
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        num_val_images (int): val = the first N filtered train images, train = the rest.
        use_h5_val_split (bool): take val from the h5 rows with ``split == 1`` instead (custom files).
        filter_empty_rels (bool): drop images without relations.
        filter_non_overlap (bool): train only: keep relations whose boxes intersect, drop images left
            without relations.
        box_scale (int): frame of the stored boxes (reads ``boxes_<box_scale>``).
        box_decode (str): ``'truncate'`` (reference behaviour, default) or ``'float'``.
        img_suffix (str): image file = ``<image_id><img_suffix>`` inside the image folder.
        skip_image_ids (Sequence): json image ids dropped when the json is longer than the h5.
        with_statistics (bool): compute the train-split statistics into the metainfo.
        source (str): name of the data source copied into every record (e.g. ``'real'``, ``'synthetic'``).
        sample_weight (float): per-sample loss weight copied into every record.
    """

    METAINFO = dict(classes=(), predicates=())

    def __init__(self,
                 ann_file: str = VG_FILE_NAMES['ann_file'],
                 image_data_file: str = VG_FILE_NAMES['image_data_file'],
                 dicts_file: str = VG_FILE_NAMES['dicts_file'],
                 data_prefix: Optional[dict] = None,
                 split: str = 'train',
                 num_val_images: int = 5000,
                 use_h5_val_split: bool = False,
                 filter_empty_rels: bool = True,
                 filter_non_overlap: bool = False,
                 box_scale: int = 1024,
                 box_decode: str = 'truncate',
                 img_suffix: str = '.jpg',
                 skip_image_ids: Sequence[Union[int, str]] = VG_CORRUPTED_IMAGE_IDS,
                 with_statistics: bool = True,
                 source: str = 'real',
                 sample_weight: float = 1.0,
                 lazy_init: bool = False,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'VGH5Dataset: split must be one of {SPLITS}, got {split!r}')
        if box_decode not in BOX_DECODES:
            raise ValueError(f'VGH5Dataset: box_decode must be one of {BOX_DECODES}, got {box_decode!r}')
        if not isinstance(num_val_images, int) or num_val_images < 0:
            raise ValueError(f'VGH5Dataset: num_val_images must be an int >= 0, got {num_val_images!r}')
        reject_unknown_kwargs(type(self).__name__, BaseDetDataset, kwargs)
        if kwargs.get('filter_cfg'):
            raise ValueError('VGH5Dataset: filter_cfg is not supported; use filter_empty_rels / '
                             'filter_non_overlap')
        data_prefix = dict(img=VG_FILE_NAMES['img_dir']) if data_prefix is None else data_prefix
        if 'img' not in data_prefix:
            raise ValueError(
                f'VGH5Dataset: data_prefix must name the image folder as "img", got {data_prefix}')
        self.split = split
        self.num_val_images = num_val_images
        self.use_h5_val_split = use_h5_val_split
        self.filter_empty_rels = filter_empty_rels
        self.filter_non_overlap = filter_non_overlap
        self.box_scale = box_scale
        self.box_decode = box_decode
        self.img_suffix = img_suffix
        self.skip_image_ids = tuple(skip_image_ids)
        self.with_statistics = with_statistics
        self.source = str(source)
        self.sample_weight = float(sample_weight)
        self._view: Optional[SplitView] = None
        # mmengine joins data_root with ann_file and data_prefix; the two json files follow the same rule.
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, lazy_init=True, **kwargs)
        self.image_data_file = self._under_root(image_data_file)
        self.dicts_file = self._under_root(dicts_file)
        for key, path in (('ann_file', self.ann_file), ('image_data_file', self.image_data_file),
                          ('dicts_file', self.dicts_file)):
            if not osp.isfile(path):
                raise FileNotFoundError(f'VGH5Dataset: {key} "{path}" does not exist (data_root='
                                        f'"{self.data_root}")')
        if not osp.isdir(self.data_prefix['img']):
            raise FileNotFoundError(f'VGH5Dataset: data_prefix.img folder "{self.data_prefix["img"]}" does '
                                    f'not exist (data_root="{self.data_root}")')
        classes, predicates = read_vg_dicts(self.dicts_file)
        for key, names in (('classes', classes), ('predicates', predicates)):
            given = self._metainfo.get(key)
            if given and tuple(given) != names:
                raise ValueError(f'VGH5Dataset: metainfo.{key} differs from the names in {self.dicts_file}; '
                                 f'the dicts json defines the vocabulary, leave metainfo.{key} unset')
        self._metainfo.update(classes=classes, predicates=predicates)
        if not lazy_init:
            self.full_init()

    def _under_root(self, path: str) -> str:
        return osp.join(self.data_root, path) if self.data_root and not osp.isabs(path) else path

    def full_init(self) -> None:
        """Load the h5 and json files, select the split, compute the statistics (once)."""
        if self._fully_initialized:
            return
        num_classes, num_predicates = len(self._metainfo['classes']), len(self._metainfo['predicates'])
        graphs = shared_vg_graphs(self.ann_file, self.image_data_file, num_classes, num_predicates,
                                  box_scale=self.box_scale, box_decode=self.box_decode,
                                  skip_image_ids=self.skip_image_ids)
        selections = {split: select_split(graphs, split, self.num_val_images, self.filter_empty_rels,
                                          self.filter_non_overlap, self.use_h5_val_split) for split in SPLITS}
        train_needed = self.split == 'train' or self.with_statistics
        if train_needed and len(selections['train'].rows) == 0 and not self.use_h5_val_split and len(
                selections['val'].rows) > 0:
            raise ValueError(
                f'VGH5Dataset: num_val_images={self.num_val_images} takes all {len(selections["val"].rows)} usable '
                f'split-0 images of {self.ann_file} for val and leaves none to train on (or to compute the train '
                'statistics from). Set num_val_images below that (0: no val carve-out), or give the file split-1 '
                'rows and use_h5_val_split=True.')
        if len(selections[self.split].rows) == 0:
            raise ValueError(
                f'VGH5Dataset: split "{self.split}" of {self.ann_file} is empty (h5 split codes present: '
                f'{np.unique(graphs.split).tolist()}, num_val_images={self.num_val_images}, '
                f'use_h5_val_split={self.use_h5_val_split}, filter_empty_rels={self.filter_empty_rels}, '
                f'filter_non_overlap={self.filter_non_overlap})')
        if self.with_statistics:
            # Train, val and test datasets of one file share the arrays, so the statistics are computed once.
            options = (self.num_val_images, self.filter_empty_rels, self.filter_non_overlap, self.use_h5_val_split)
            if options not in graphs.statistics:
                statistics = compute_statistics(graphs, selections['train'], num_classes, num_predicates,
                                                source=f'VGH5Dataset: train split of {self.ann_file}')
                statistics['split_counts'] = {split: split_counts(graphs, selection)
                                              for split, selection in selections.items()}
                graphs.statistics[options] = statistics
            self._metainfo.update(copy.deepcopy(graphs.statistics[options]))
        self._view = SplitView.from_selection(graphs, selections[self.split])
        if self._indices is not None:
            self._view = self._view.take(self._positions(self._indices))
        self._fully_initialized = True

    def load_data_list(self) -> List[dict]:
        """Every record of the split as a list (handy for small data; the dataset itself stays compact)."""
        return [self.get_data_info(i) for i in range(len(self))]

    def _positions(self, indices: Union[int, Sequence[int]]) -> np.ndarray:
        count = len(self._view)
        if isinstance(indices, int):
            return np.arange(count)[:indices] if indices >= 0 else np.arange(count)[indices:]
        positions = np.asarray(indices, dtype=np.int64)
        if positions.size and (positions.max() >= count or positions.min() < -count):
            raise IndexError(f'VGH5Dataset: indices must lie in [-{count}, {count}), got {indices}')
        return positions % max(count, 1)

    @force_full_init
    def __len__(self) -> int:
        return len(self._view)

    def __getitem__(self, idx):
        """The sample after the pipeline, under the seed of a ``SeededIndex`` (``seeded_draws``)."""
        return fetch_seeded(idx, super().__getitem__)

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The record of image ``idx`` (see the class docstring), built from the compact arrays."""
        if not -len(self._view) <= idx < len(self._view):
            raise IndexError(f'VGH5Dataset: index {idx} out of range for {len(self._view)} images')
        idx = int(idx) % len(self._view)
        image_id, width, height, boxes, labels, relations = self._view.image(idx)
        instances = [dict(bbox=bbox, bbox_label=label, ignore_flag=0) for bbox, label in zip(boxes, labels)]
        return dict(img_path=osp.join(self.data_prefix['img'], f'{image_id}{self.img_suffix}'),
                    img_id=image_id, height=height, width=width, instances=instances, relations=relations,
                    source=self.source, sample_weight=self.sample_weight, sample_idx=idx)

    @force_full_init
    def get_subset_(self, indices: Union[int, Sequence[int]]) -> None:
        """Keep only the given images (same semantics as mmengine's ``BaseDataset.get_subset_``)."""
        self._view = self._view.take(self._positions(indices))

    @force_full_init
    def get_subset(self, indices: Union[int, Sequence[int]]) -> 'VGH5Dataset':
        """A copy holding only the given images (same semantics as mmengine's ``BaseDataset.get_subset``)."""
        subset = copy.copy(self)
        subset._metainfo = copy.deepcopy(self._metainfo)
        subset._view = self._view.take(self._positions(indices))
        return subset


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------
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
    box_ptr, rel_ptr = _offsets(box_counts)[:-1], _offsets(rel_counts)[:-1]
    global_pairs = relations[:, :2] + np.repeat(box_ptr, rel_counts)[:, None]
    num_boxes = int(box_counts.sum())
    from ..engine.atomic_io import atomic_path  # imported here: the engine imports the datasets package
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
    from ..engine.atomic_io import atomic_write
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
    from ..engine.atomic_io import atomic_dump
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
