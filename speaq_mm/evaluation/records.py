"""The per-image scene graph record: the prediction dump format that the metric and the offline tool read.

A record is a dict of numpy arrays (see ``docs/evaluation.md``)::

    img_id            any hashable id (int or str)
    gt_bboxes         (N, 4) float xyxy, original-image pixels
    gt_labels         (N,) int 0-based object classes
    gt_relations      (R, 3) int (subject index, object index, predicate 0-based), indices into gt_*
    pred_bboxes       (M, 4) float xyxy, original-image pixels
    pred_labels       (M,) int 0-based
    pred_scores       (M,) float, non-negative
    pred_rel_pairs    (P, 2) int (subject, object) indices into pred_*, sorted by triplet score (best first)
    pred_rel_scores   (P, C + 1) float, the full predicate score rows, no-relation column last
    pred_rel_labels   (P,) int 0-based predicate of each triplet
    image_size        (optional) (height, width) of the original image: the ground truth is clipped to it
    pred_rel_query_ids  (optional) (P,) int, the relation query that proposed each triplet (SpeaQ models)

Ground truth is evaluated as the reference protocol does: boxes clipped to the image, and boxes left empty
(a side of at most ``EMPTY_BOX_SIZE`` pixels) dropped with their relations (:func:`clip_ground_truth`). A
record without ``image_size`` (written by an older version) is evaluated unclipped.

This module converts mmengine data samples (``DetDataSample.to_dict()`` output, the field layout of
``docs/structures.md``) into records, loads dumps, zero-shot triplet files and dataset metainfo files. It
needs no mmdet, so the offline tool and the benchmark share it with the metric.
"""
import json
import os.path as osp

import mmengine
import numpy as np

from ..utils.safe_loading import load_pickle_file, load_torch_file

RECORD_KEYS = ('img_id', 'gt_bboxes', 'gt_labels', 'gt_relations', 'pred_bboxes', 'pred_labels',
               'pred_scores', 'pred_rel_pairs', 'pred_rel_scores', 'pred_rel_labels')

# Boxes with a side of at most this many pixels after clipping are empty (detectron2's nonempty threshold).
EMPTY_BOX_SIZE = 1e-5

# (field, number of dimensions, size of the last dimension or None, accepted dtype kinds)
_FIELD_SPECS = (
    ('gt_bboxes', 2, 4, 'f'),
    ('gt_labels', 1, None, 'iu'),
    ('gt_relations', 2, 3, 'iu'),
    ('pred_bboxes', 2, 4, 'f'),
    ('pred_labels', 1, None, 'iu'),
    ('pred_scores', 1, None, 'f'),
    ('pred_rel_pairs', 2, 2, 'iu'),
    ('pred_rel_scores', 2, None, 'f'),
    ('pred_rel_labels', 1, None, 'iu'),
)
# field -> the field it must have as many rows as
_SAME_LENGTH = {'gt_labels': 'gt_bboxes', 'pred_labels': 'pred_bboxes', 'pred_scores': 'pred_bboxes',
                'pred_rel_scores': 'pred_rel_pairs', 'pred_rel_labels': 'pred_rel_pairs'}


def to_numpy(value):
    """Return ``value`` as a numpy array: torch tensors (any device), mmdet box objects, lists and arrays."""
    if hasattr(value, 'tensor') and not hasattr(value, 'numpy'):  # mmdet BaseBoxes wraps its tensor
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _conform(array, key, ndim, width, kinds, where):
    """The slow path of ``check_record`` for one field: empty arrays, dtype casts, or a clear error."""
    if array.size == 0:
        # Empty fields come in many shapes ((0,), (0, 4), []); only the score-row width means something.
        kept_width = array.shape[1] if key == 'pred_rel_scores' and array.ndim == 2 else 0
        array = np.zeros((0, width or kept_width) if ndim == 2 else (0,),
                         dtype=np.float32 if kinds == 'f' else np.int64)
    if array.ndim != ndim or (width is not None and array.shape[-1] != width):
        expected = f'(n, {width})' if width else ('(n, C + 1)' if ndim == 2 else '(n,)')
        raise ValueError(f'{where}: field {key} must have shape {expected}, got {array.shape}')
    if array.dtype.kind in kinds:
        return array
    if kinds == 'f':
        if array.dtype.kind not in 'iub':
            raise ValueError(f'{where}: field {key} must be numeric, got {array.dtype}')
        return array.astype(np.float64)
    if array.dtype.kind != 'f' or np.any(array != np.round(array)):
        raise ValueError(f'{where}: field {key} must hold integers, got {array.dtype} values')
    return array.astype(np.int64)


def check_record(record, where, clip_gt=True):
    """Return a copy of ``record`` whose fields are numpy arrays of the documented shapes.

    With ``clip_gt`` (the VG protocol) a record holding ``image_size`` has its ground truth clipped by
    :func:`clip_ground_truth`; the Open Images protocol clips its own way (``oi_core``) and passes False.

    Empty arrays of any shape are accepted for empty fields (e.g. ``np.zeros(0)`` for no relations);
    ``pred_rel_scores`` keeps its width when it has one. Index ranges and values are checked later, on the
    whole batch at once (``sgg_core.compute_image_stats``). ``where`` names the record in error messages.
    """
    if not isinstance(record, dict):
        raise TypeError(f'{where}: expected a dict with keys {", ".join(RECORD_KEYS)}, '
                        f'got {type(record).__name__}')
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise KeyError(f'{where}: missing field(s) {", ".join(missing)}')
    out = {'img_id': record['img_id']}
    for key, ndim, width, kinds in _FIELD_SPECS:
        array = record[key]
        if type(array) is not np.ndarray:
            array = to_numpy(array)
        shape = array.shape
        if (len(shape) != ndim or not shape[0] or (width is not None and shape[-1] != width)
                or array.dtype.kind not in kinds):
            array = _conform(array, key, ndim, width, kinds, where)
        out[key] = array
    for key, reference in _SAME_LENGTH.items():
        if len(out[key]) != len(out[reference]):
            raise ValueError(f'{where}: field {key} has {len(out[key])} rows but {reference} has '
                             f'{len(out[reference])}')
    if len(out['pred_rel_scores']) and out['pred_rel_scores'].shape[1] < 2:
        raise ValueError(f'{where}: field pred_rel_scores needs C + 1 >= 2 columns (no-relation last), '
                         f'got {out["pred_rel_scores"].shape[1]}')
    if record.get('pred_rel_query_ids') is not None:
        query_ids = to_numpy(record['pred_rel_query_ids']).reshape(-1)
        if len(query_ids) != len(out['pred_rel_labels']) or query_ids.dtype.kind not in 'iu':
            raise ValueError(f'{where}: field pred_rel_query_ids needs one integer per predicted triplet, got '
                             f'{len(query_ids)} values of {query_ids.dtype} for {len(out["pred_rel_labels"])}')
        out['pred_rel_query_ids'] = query_ids.astype(np.int64)
    if record.get('image_size') is not None:
        out['image_size'] = _image_size(record['image_size'], where)
        if clip_gt:
            clip_ground_truth(out)
    return out


def _image_size(value, where):
    size = to_numpy(value).reshape(-1)
    if size.shape != (2,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f'{where}: field image_size must be (height, width) > 0, got {value!r}')
    return size.astype(np.float64)


def clip_ground_truth(record):
    """Clip a checked record's GT boxes to its ``image_size`` and drop the empty ones with their relations.

    The reference protocol: detectron2's test mapper clips every box to the image, and its
    ``filter_empty_instances`` removes boxes with a side of at most ``EMPTY_BOX_SIZE`` together with the
    relations that use them (relation indices are renumbered). Works in place on ``record``; idempotent.
    """
    height, width = record['image_size']
    boxes, relations = record['gt_bboxes'], record['gt_relations']
    if len(relations) and (relations[:, :2].min() < 0 or relations[:, :2].max() >= len(boxes)):
        return record  # compute_image_stats reports the bad index with the record's name
    clipped = np.stack([boxes[:, 0].clip(0, width), boxes[:, 1].clip(0, height),
                        boxes[:, 2].clip(0, width), boxes[:, 3].clip(0, height)], axis=1).astype(boxes.dtype)
    keep = ((clipped[:, 2] - clipped[:, 0]) > EMPTY_BOX_SIZE) & ((clipped[:, 3] - clipped[:, 1]) > EMPTY_BOX_SIZE)
    if not keep.all():
        new_index = np.cumsum(keep) - 1
        kept_relations = keep[relations[:, 0]] & keep[relations[:, 1]] if len(relations) else np.zeros(0, bool)
        relations = relations[kept_relations]
        relations = np.column_stack([new_index[relations[:, 0]], new_index[relations[:, 1]], relations[:, 2]])
        record['gt_labels'] = record['gt_labels'][keep]
    record['gt_bboxes'] = clipped[keep]
    record['gt_relations'] = relations.astype(np.int64).reshape(-1, 3)
    return record


def _field(container, key, where):
    if key not in container:
        raise KeyError(f'{where}: no field {key!r} (see docs/structures.md)')
    return container[key]


def record_from_data_sample(sample, clip_gt=True):
    """Convert one data sample in dict form (``DetDataSample.to_dict()``) into a scene graph record.

    Ground truth comes from ``gt_instances`` and ``gt_relations``, predictions from ``pred_instances`` and
    ``pred_relations``; at test time both are in original-image pixels (``docs/structures.md``). ``clip_gt``:
    see :func:`check_record` (False keeps the ground truth as annotated, with ``image_size`` to clip it by).
    """
    img_id = sample.get('img_id')
    where = f'data sample (img_id={img_id!r})'
    gt_instances = _field(sample, 'gt_instances', where)
    gt_relations = _field(sample, 'gt_relations', where)
    pred_instances = _field(sample, 'pred_instances', where)
    pred_relations = _field(sample, 'pred_relations', where)
    relation_pairs = to_numpy(_field(gt_relations, 'pairs', f'{where} gt_relations'))
    relation_labels = to_numpy(_field(gt_relations, 'labels', f'{where} gt_relations'))
    if relation_pairs.size == 0 and relation_labels.size == 0:
        relations = np.zeros((0, 3), dtype=np.int64)
    elif (relation_pairs.ndim != 2 or relation_pairs.shape[1] != 2
          or relation_labels.shape != (len(relation_pairs),)):
        raise ValueError(f'{where}: gt_relations needs pairs (R, 2) and labels (R,), got shapes '
                         f'{relation_pairs.shape} and {relation_labels.shape}')
    else:
        relations = np.column_stack([relation_pairs, relation_labels])
    record = {
        'img_id': img_id,
        'image_size': sample.get('ori_shape'),
        'gt_bboxes': to_numpy(_field(gt_instances, 'bboxes', f'{where} gt_instances')),
        'gt_labels': to_numpy(_field(gt_instances, 'labels', f'{where} gt_instances')),
        'gt_relations': relations,
        'pred_bboxes': to_numpy(_field(pred_instances, 'bboxes', f'{where} pred_instances')),
        'pred_labels': to_numpy(_field(pred_instances, 'labels', f'{where} pred_instances')),
        'pred_scores': to_numpy(_field(pred_instances, 'scores', f'{where} pred_instances')),
        'pred_rel_pairs': to_numpy(_field(pred_relations, 'pairs', f'{where} pred_relations')),
        'pred_rel_scores': to_numpy(_field(pred_relations, 'scores', f'{where} pred_relations')),
        'pred_rel_labels': to_numpy(_field(pred_relations, 'labels', f'{where} pred_relations')),
    }
    # Which relation query proposed each triplet (SpeaQ models): tools/analysis/query_specialisation.py.
    query_ids = pred_relations.get('query_ids') if isinstance(pred_relations, dict) else None
    if query_ids is not None:
        record['pred_rel_query_ids'] = to_numpy(query_ids)
    return check_record(record, where, clip_gt=clip_gt)


def load_prediction_dump(path):
    """Load a prediction dump: a pickled list of records, or of data-sample dicts as mmengine's
    ``DumpResults`` writes them, which are converted to records.

    The file is unpickled with :func:`speaq_mm.utils.load_pickle_file`: arrays, tensors and containers only
    (not ``mmengine.load``, whose ``pickle.load`` lets a shared dump run code; docs/safety.md).
    """
    entries = load_pickle_file(path, what='prediction dump')
    if not isinstance(entries, (list, tuple)):
        raise ValueError(f'{path}: expected a list with one dict per image, got {type(entries).__name__}')
    records = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and 'pred_rel_pairs' in entry:
            records.append(entry)  # checked where it is evaluated (sgg_core.compute_image_stats)
        elif isinstance(entry, dict) and 'pred_relations' in entry:
            try:
                records.append(record_from_data_sample(entry))
            except (KeyError, ValueError) as error:
                raise ValueError(f'{path} entry {index}: {error.args[0] if error.args else error}') from error
        else:
            raise ValueError(f'{path} entry {index}: neither a scene graph record (keys '
                             f'{", ".join(RECORD_KEYS)}) nor a data sample dict with pred_relations')
    return records


def load_zeroshot_triplets(path):
    """Load zero-shot triplets as an int64 (T, 3) array of 0-based (subject class, object class, predicate).

    ``.npy`` and ``.json`` (a list of 3-element rows) files are 0-based. ``.pytorch`` is the
    ``zeroshot_triplet.pytorch`` tensor the reference codebases ship, which is 1-based (0 is their background
    class), so 1 is subtracted.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'zero-shot triplet file {path} does not exist')
    extension = osp.splitext(path)[1].lower()
    if extension == '.npy':
        triplets = np.load(path, allow_pickle=False)
    elif extension == '.json':
        try:
            triplets = np.asarray(mmengine.load(path, file_format='json'))
        except json.JSONDecodeError as error:
            raise ValueError(f'{path}: not valid JSON ({error})') from error
    elif extension == '.pytorch':
        triplets = to_numpy(load_torch_file(path, map_location='cpu', what='zero-shot triplet file')) - 1
    else:
        raise ValueError(f'{path}: zero-shot triplets must be a .npy or .json file (0-based) or the '
                         f'reference zeroshot_triplet.pytorch (1-based), got extension {extension!r}')
    return check_triplets(triplets, path)


def check_triplets(triplets, where):
    """Return ``triplets`` as an int64 (T, 3) array, raising a clear error naming ``where`` otherwise."""
    triplets = np.asarray(triplets)
    if triplets.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if triplets.ndim != 2 or triplets.shape[1] != 3 or triplets.dtype.kind not in 'iu':
        raise ValueError(f'{where}: triplets must be integer rows (subject class, object class, predicate), '
                         f'got shape {triplets.shape} of {triplets.dtype}')
    if triplets.min() < 0:
        raise ValueError(f'{where}: triplets hold negative class ids (min {triplets.min()}); .npy/.json '
                         f'files are 0-based, only .pytorch files are 1-based')
    return triplets.astype(np.int64)


def load_dataset_meta(path):
    """Load dataset metainfo (``classes``, ``predicates``, ``fg_rel_count``, ``triplets``; all optional) from
    a ``.json`` or ``.pkl`` file, e.g. the one ``SGGDumpResults`` writes beside a dump."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'dataset metainfo file {path} does not exist')
    if path.endswith('.json'):
        meta = mmengine.load(path, file_format='json')
    elif path.endswith(('.pkl', '.pickle')):
        # Not mmengine.load: it unpickles with pickle.load, which lets the file run code (docs/safety.md).
        meta = load_pickle_file(path, what='dataset metainfo file')
    else:
        raise ValueError(f'{path}: dataset metainfo must be a .json or .pkl file')
    if not isinstance(meta, dict):
        raise ValueError(f'{path}: dataset metainfo must be a dict, got {type(meta).__name__}')
    return meta


def dataset_meta_to_json(meta):
    """Return the evaluation-relevant part of a dataset metainfo as JSON-serialisable lists."""
    out = {}
    for key in ('classes', 'predicates', 'fg_rel_count', 'triplets'):
        if meta.get(key) is not None:
            out[key] = to_numpy(meta[key]).tolist()
    return out
