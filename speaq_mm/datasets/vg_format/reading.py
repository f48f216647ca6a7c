"""Reading the Visual Genome (VG150) files: the h5 of boxes and relations, image_data.json and the dicts json.

The layout (h5 keys, the image-data json, the dicts json) is described in docs/dataset_format.md. Every step
works on whole-file numpy arrays: the reference loaders' per-image Python loop and their pickle caches are
what made them slow and stale, so nothing here loops over images and nothing is cached on disk.
"""
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple, Union

import h5py
import numpy as np

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
# An h5 dataset may declare at most this many bytes per byte it stores (gzip, the strongest filter h5py ships,
# stays near 1000:1), plus a little for small arrays: a tiny file cannot make the reader allocate gigabytes.
MAX_H5_EXPANSION = 1100
H5_EXPANSION_SLACK_BYTES = 1 << 20
# Optional h5 dataset of pseudo-labelled files: one confidence in [0, 1] per row of ``relationships``.
RELATION_SCORES_KEY = 'relationship_scores'


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
        halves exactly). ``integer_boxes`` says whether the file stores integer boxes. When the file has the
        optional ``relationship_scores`` (one float per relation row, in [0, 1]), ``arrays`` holds it as
        float32 under that key.
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
        datasets = {key: _checked_h5_dataset(path, h5, key) for key in required}
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
        if RELATION_SCORES_KEY in h5:
            arrays[RELATION_SCORES_KEY] = _read_relation_scores(
                path, _checked_h5_dataset(path, h5, RELATION_SCORES_KEY), rows['relationships'])
        return arrays, np.issubdtype(datasets[box_key].dtype, np.integer)


def _checked_h5_dataset(path: str, h5: h5py.File, key: str) -> h5py.Dataset:
    """``h5[key]`` once it is a plain dataset stored in this file, of a size the file can hold.

    Soft and external links, external storage and virtual datasets are refused: they make h5py read other
    files (outside the dataset folder, say). A dataset must not declare more bytes than
    :data:`MAX_H5_EXPANSION` times what it stores (plus :data:`H5_EXPANSION_SLACK_BYTES`), and what it stores
    must fit in the file, so that reading it never allocates memory the file does not account for.
    """
    link = h5.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise VGFormatError(f'{path}: h5 key "{key}" is a {type(link).__name__} (to '
                            f'{getattr(link, "filename", "")}{getattr(link, "path", "")}); the loader reads only '
                            'datasets stored in the file itself')
    dataset = h5[key]
    if not isinstance(dataset, h5py.Dataset):
        raise VGFormatError(f'{path}: h5 key "{key}" is a {type(dataset).__name__}, not a dataset')
    if dataset.is_virtual or dataset.external:
        kind = 'a virtual dataset' if dataset.is_virtual else 'stored in external files'
        raise VGFormatError(f'{path}: h5 key "{key}" is {kind}; the loader reads only datasets stored in the '
                            'file itself')
    declared = math.prod(dataset.shape) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    file_size = os.path.getsize(path)
    if stored > file_size or declared > stored * MAX_H5_EXPANSION + H5_EXPANSION_SLACK_BYTES:
        raise VGFormatError(
            f'{path}: h5 key "{key}" declares shape {dataset.shape} of {dataset.dtype} ({declared} bytes) but '
            f'stores {stored} bytes in a {file_size}-byte file; refusing to allocate for data the file does not hold')
    return dataset


def _read_relation_scores(path: str, dataset, num_relations: int) -> np.ndarray:
    """The optional ``relationship_scores`` dataset as float32 (R,), after checking shape and values."""
    key = RELATION_SCORES_KEY
    if dataset.dtype.kind not in 'fiu' or not (len(dataset.shape) == 1 or (len(dataset.shape) == 2
                                                                             and dataset.shape[1] == 1)):
        raise VGFormatError(f'{path}: h5 key "{key}" must hold numbers of shape (R,) or (R, 1), got dtype '
                            f'{dataset.dtype} and shape {dataset.shape}')
    scores = dataset.astype(np.float32)[()].reshape(-1)
    if len(scores) != num_relations:
        raise VGFormatError(f'{path}: h5 key "{key}" has {len(scores)} rows, "relationships" has {num_relations}; '
                            'it must hold one score per relation row')
    bad = np.flatnonzero(~((scores >= 0) & (scores <= 1)))
    if len(bad):
        raise VGFormatError(f'{path}: h5 key "{key}" row {bad[0]} = {scores[bad[0]]} is not a score in [0, 1]; '
                            f'{len(bad)} rows affected')
    return scores


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
    counts = np.where(none, 0, last - first + 1)
    # Each item belongs to one image: ranges covering more items than exist overlap, and gathering them would
    # allocate images x items.
    if counts.sum() > num_items:
        raise VGFormatError(
            f'{path}: the ranges {keys[0]}..{keys[1]} of the images cover {int(counts.sum())} {items} in total, '
            f'but the h5 holds {num_items}; the ranges of different images must not overlap')
    return counts


@dataclass
class VGGraphs:
    """Every image of a VG h5, validated, with boxes decoded to (x1, y1, x2, y2) in the ``box_scale`` frame.

    Boxes and relations are stored image after image; ``box_ptr``/``rel_ptr`` hold the offsets.
    Relations hold (subject, object) indices local to their image and a 0-based predicate;
    ``relation_scores`` (float32, one per relation row) is set when the h5 has ``relationship_scores``. ``statistics``
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
    relation_scores: Optional[np.ndarray] = None
    statistics: Dict[tuple, dict] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_boxes(self) -> np.ndarray:
        """Number of boxes of every image."""
        return np.diff(self.box_ptr)

    @property
    def num_rels(self) -> np.ndarray:
        """Number of relations of every image."""
        return np.diff(self.rel_ptr)


def offsets_from_counts(counts: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive runs of ``counts`` items, with the total appended (length ``len + 1``)."""
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def _gather_rows(first: np.ndarray, count: np.ndarray, num_items: int) -> Union[slice, np.ndarray]:
    """Rows of the item arrays, image after image; a plain slice when the file stores them that way already
    (as the VG files do), which spares a copy of every per-box array."""
    offsets = offsets_from_counts(count)
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
    scores = arrays[RELATION_SCORES_KEY][rel_rows] if RELATION_SCORES_KEY in arrays else None
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
        box_ptr_old = offsets_from_counts(box_count)
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
        scores = None if scores is None else scores[keep_rel]
        box_count = np.bincount(box_image[keep_box], minlength=n_images)
        rel_count = np.bincount(rel_image[keep_rel], minlength=n_images)
    return VGGraphs(split=arrays['split'].astype(np.int64), width=image_data['width'],
                    height=image_data['height'], image_id=image_data['image_id'],
                    box_ptr=offsets_from_counts(box_count), boxes=boxes, labels=labels,
                    rel_ptr=offsets_from_counts(rel_count), relations=local, box_scale=box_scale,
                    relation_scores=scores)
