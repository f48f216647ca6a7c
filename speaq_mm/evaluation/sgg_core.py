"""Vectorised SGDet evaluation: per-image hit statistics, from which ``sgg_summary`` computes R@K, mR@K,
ng-R@K, zR@K, F@K and per-predicate recall.

One implementation serves ``SGGMetric`` (per test batch) and ``tools/analysis/eval_scene_graphs.py``
(per chunk of a dump). The definitions follow the reference protocol (Scene-Graph-Benchmark's ``sgg_eval.py``
as adapted by IterativeSG/SpeaQ; ``docs/evaluation.md``):

- a predicted triplet hits a GT relation when subject class, object class and predicate are equal and both
  the subject and the object box have IoU >= ``iou_thr`` (continuous coordinates, no +1);
- R@K: per image, the fraction of GT relations hit by the first K predicted triplets (the dump's order),
  averaged over images; ng-R@K ranks every (triplet, predicate) cell of subject score x object score x
  predicate score (the no-relation column excluded) instead;
- mR@K: per image and predicate, hits / GT count, averaged over the images holding the predicate, then over
  all predicates (a predicate absent from the test set counts 0); zR@K: recall over zero-shot GT triplets,
  averaged over the images that hold one.

Speed comes from three exact shortcuts. Only the first ``max_k`` triplets can affect R@K, so the rest are
never matched. A (triplet, predicate) cell can only be among an image's top ``max_k`` cells if its row's best
cell reaches the ``max_k``-th best row maximum (a row's best cell is its entity score product times its
largest predicate score, since multiplying by a non-negative number preserves order), so only those rows'
cells are ranked. And a batch of images is matched at once through one sorted join on (image, mode, subject
class, object class, predicate), computing IoUs only for label-matching pairs. Each image is then reduced to
the rank at which each of its GT relations is first hit, which is all the metrics need, so memory does not
grow with the number of predictions.
"""

from typing import NamedTuple

import numpy as np

from .records import check_record

MODES = ('graph', 'no_graph')


def box_iou_aligned(boxes1, boxes2):
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` for xyxy boxes in continuous coordinates (width = x2 - x1).

    The operations and their order are those of detectron2's ``pairwise_iou``, which the reference evaluator
    uses, in the boxes' own precision, so results agree bit for bit at the 0.5 boundary.
    """
    width_height = np.minimum(boxes1[:, 2:], boxes2[:, 2:]) - np.maximum(boxes1[:, :2], boxes2[:, :2])
    np.maximum(width_height, 0, out=width_height)
    inter = width_height[:, 0] * width_height[:, 1]
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    iou = np.zeros_like(inter)
    np.divide(inter, area1 + area2 - inter, out=iou, where=inter > 0)
    return iou


def _offsets(counts):
    """Exclusive cumulative sum: where each image's rows start in the concatenated arrays."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _positions(counts):
    """For per-image blocks of sizes ``counts``, concatenated: each row's image and index within the image."""
    image = np.repeat(np.arange(len(counts)), counts)
    return image, np.arange(len(image)) - _offsets(counts)[image]


def _concat(arrays, shape, dtype):
    return np.concatenate(arrays) if arrays else np.zeros(shape, dtype=dtype)


def _pad(values, counts, fill):
    """Lay per-image blocks of ``values`` (concatenated rows) out as (images, widest block, ...), padded."""
    widest = int(counts.max()) if len(counts) else 0
    if (counts == widest).all():
        return values.reshape((len(counts), widest) + values.shape[1:])
    padded = np.full((len(counts), widest) + values.shape[1:], fill, dtype=values.dtype)
    padded[_positions(counts)] = values
    return padded


def _check_range(values, bound, records, image, field, what):
    """Raise naming the first record whose ``field`` holds a value outside [0, bound); ``values`` has one row
    (of any width) per entry of ``image``."""
    bad = (values < 0) | (values >= bound)
    if bad.any():
        flat = int(np.flatnonzero(bad)[0])
        limit = int(np.broadcast_to(bound, values.shape).flat[flat])
        row = flat // (values.shape[1] if values.ndim == 2 else 1)
        raise ValueError(f'{records[int(image[row])]["where"]}: field {field} holds '
                         f'{int(values.flat[flat])}, outside the {what} (0..{limit - 1})')


def _row_max(scores, num_predicates, segment_cache):
    """Each row's maximum over its first ``num_predicates`` columns (NaN propagates).

    ``np.maximum.reduceat`` over the flattened rows is about twice as fast as ``max(axis=1)`` on rows this
    short, and this is the one pass that reads every predicted score.
    """
    rows, width = scores.shape
    if (rows, width) not in segment_cache:
        starts = np.arange(rows) * width
        segment_cache[rows, width] = np.stack([starts, starts + num_predicates], axis=1).ravel()
    return np.maximum.reduceat(np.ascontiguousarray(scores).ravel(), segment_cache[rows, width])[::2]


def _top_cells(pair_score, rel_scores, num_pred_rels, num_predicates, max_k, records):
    """Each image's ``max_k`` best (triplet, predicate) cells of pair_score x rel_scores[:, :C] (every image
    has a triplet).

    Returns (image, rank, triplet row (global), predicate). Ties keep the row-major order of the image's score
    matrix (the result of a stable sort), so the ranking is deterministic.
    """
    num_images = len(num_pred_rels)
    row_image, _ = _positions(num_pred_rels)
    row_starts = _offsets(num_pred_rels)
    segments = {}
    row_max = np.concatenate([_row_max(scores, num_predicates, segments) for scores in rel_scores])
    if not np.isfinite(row_max).all():
        row = int(np.flatnonzero(~np.isfinite(row_max))[0])
        image = int(row_image[row])
        raise ValueError(f'{records[image]["where"]}: field pred_rel_scores holds a non-finite value in row '
                         f'{row - row_starts[image]}')
    row_best = pair_score * row_max
    widest = int(num_pred_rels.max())
    if widest > max_k:
        # Cells of the top max_k cells lie in rows whose maximum reaches the max_k-th best row maximum.
        padded = _pad(row_best, num_pred_rels, -np.inf)
        threshold = np.partition(padded, widest - max_k, axis=1)[:, widest - max_k]
        candidates = np.flatnonzero(row_best >= threshold[row_image])
    else:
        candidates = np.arange(len(row_best))
    cand_image = row_image[candidates]
    cand_counts = np.bincount(cand_image, minlength=num_images)
    cand_starts = _offsets(cand_counts)
    local_rows = candidates - row_starts[cand_image]
    width = rel_scores[0].shape[1]
    cells = np.empty((len(candidates), width), dtype=row_best.dtype)  # the precision of the products
    for image in np.flatnonzero(cand_counts):
        begin, end = cand_starts[image], cand_starts[image] + cand_counts[image]
        np.take(rel_scores[image], local_rows[begin:end], axis=0, out=cells[begin:end])
    cells *= pair_score[candidates, None]
    cells[:, num_predicates] = 0  # the no-relation column never ranks; -inf below, once the check is done
    if not np.isfinite(cells).all():
        row = int(candidates[np.flatnonzero(~np.isfinite(cells).all(axis=1))[0]])
        image = int(row_image[row])
        raise ValueError(f'{records[image]["where"]}: field pred_rel_scores holds a non-finite value in row '
                         f'{row - row_starts[image]}')
    cells[:, num_predicates] = -np.inf
    # One row per image holding its candidate rows' cells in (row, predicate) order, padded with -inf.
    values = _pad(cells, cand_counts, -np.inf).reshape(num_images, -1)
    if values.shape[1] > max_k:
        kth = np.partition(values, values.shape[1] - max_k, axis=1)[:, values.shape[1] - max_k]
        selected = (values >= kth[:, None]) & (values > -np.inf)
    else:
        selected = values > -np.inf
    flat = np.flatnonzero(selected)  # row-major: each image's cells in (row, predicate) order
    kept_counts = np.bincount(flat // values.shape[1], minlength=num_images)
    # A stable sort by score keeps ties in that order; padding (+inf keys) sorts last.
    order = np.argsort(_pad(-values.ravel()[flat], kept_counts, np.inf), axis=1, kind='stable')[:, :max_k]
    chosen = np.take_along_axis(_pad(np.arange(len(flat)), kept_counts, -1), order, axis=1)
    image, rank = np.nonzero(chosen >= 0)
    position = flat[chosen[image, rank]] - image * values.shape[1]
    return image, rank, candidates[cand_starts[image] + position // width], position % width


def check_options(max_k, iou_thr):
    """Raise on a ``max_k`` below 1 or an ``iou_thr`` outside (0, 1]."""
    if max_k < 1:
        raise ValueError(f'max_k must be >= 1, got {max_k}')
    if not 0 < iou_thr <= 1:
        raise ValueError(f'iou_thr must be in (0, 1], got {iou_thr}')


def check_records(records, where, first_index, clip_gt=True):
    """``check_record`` every record, naming record ``i`` as ``f'{where} {first_index + i} (img_id=...)'``
    (kept under ``'where'`` for later messages)."""
    checked = []
    for index, record in enumerate(records):
        name = f'{where} {first_index + index}'
        if isinstance(record, dict):
            name += f' (img_id={record.get("img_id")!r})'
        entry = check_record(record, name, clip_gt=clip_gt)
        entry['where'] = name
        checked.append(entry)
    return checked


def predicate_count(checked, num_predicates, where):
    """C, from the score rows' widths (C + 1) and the dataset's ``num_predicates``; -1 if nothing tells."""
    widths = {e['pred_rel_scores'].shape[1] - 1 for e in checked if e['pred_rel_scores'].shape[1]}
    if num_predicates is not None:
        widths.add(num_predicates)
    if len(widths) > 1:
        raise ValueError(f'{where}: pred_rel_scores widths imply different predicate counts {sorted(widths)} '
                         f'(rows are C predicates + no-relation; the dataset has {num_predicates} '
                         f'predicates)')
    return widths.pop() if widths else -1


class RecordBatch(NamedTuple):
    """Checked records of one batch, concatenated image by image (box indices made global in ``gt_sub``,
    ``gt_obj``, ``pair_sub`` and ``pair_obj``); ``*_image`` and ``pair_rank`` say each row's image and rank."""
    num_gt_boxes: np.ndarray
    num_rels: np.ndarray
    num_pred_boxes: np.ndarray
    num_pred_rels: np.ndarray
    rel_image: np.ndarray
    pair_image: np.ndarray
    pair_rank: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    relations: np.ndarray
    pred_boxes: np.ndarray
    pred_labels: np.ndarray
    pred_scores: np.ndarray
    pairs: np.ndarray
    gt_sub: np.ndarray
    gt_obj: np.ndarray
    gt_triplets: np.ndarray
    pair_sub: np.ndarray
    pair_obj: np.ndarray


def gather_records(checked):
    """Concatenate ``check_records`` output into a ``RecordBatch``, after checking that every box index and
    label fits (both evaluators need the same checks before they join predictions with GT relations)."""
    def sizes(key):
        return np.array([len(entry[key]) for entry in checked], dtype=np.int64)

    num_gt_boxes, num_rels = sizes('gt_bboxes'), sizes('gt_relations')
    num_pred_boxes, num_pred_rels = sizes('pred_bboxes'), sizes('pred_rel_pairs')
    rel_image, _ = _positions(num_rels)
    pair_image, pair_rank = _positions(num_pred_rels)

    gt_boxes = _concat([e['gt_bboxes'] for e in checked], (0, 4), np.float32)
    gt_labels = _concat([e['gt_labels'] for e in checked], (0,), np.int64)
    relations = _concat([e['gt_relations'] for e in checked], (0, 3), np.int64)
    pred_boxes = _concat([e['pred_bboxes'] for e in checked], (0, 4), np.float32)
    pred_labels = _concat([e['pred_labels'] for e in checked], (0,), np.int64)
    pred_scores = _concat([e['pred_scores'] for e in checked], (0,), np.float32)
    pairs = _concat([e['pred_rel_pairs'] for e in checked], (0, 2), np.int64)

    label_limit = np.iinfo(np.int32).max  # statistics hold int32 labels
    _check_range(relations[:, :2], num_gt_boxes[rel_image, None], checked, rel_image, 'gt_relations',
                 'GT boxes')
    _check_range(relations[:, 2], label_limit, checked, rel_image, 'gt_relations', 'predicate ids')
    _check_range(gt_labels, label_limit, checked, _positions(num_gt_boxes)[0], 'gt_labels', 'class ids')
    _check_range(pred_labels, label_limit, checked, _positions(num_pred_boxes)[0], 'pred_labels', 'class ids')
    _check_range(pairs, num_pred_boxes[pair_image, None], checked, pair_image, 'pred_rel_pairs',
                 'predicted boxes')

    gt_sub = relations[:, 0] + _offsets(num_gt_boxes)[rel_image]
    gt_obj = relations[:, 1] + _offsets(num_gt_boxes)[rel_image]
    gt_triplets = np.stack([gt_labels[gt_sub], gt_labels[gt_obj], relations[:, 2]], axis=1)
    pair_sub = pairs[:, 0] + _offsets(num_pred_boxes)[pair_image]
    pair_obj = pairs[:, 1] + _offsets(num_pred_boxes)[pair_image]
    return RecordBatch(num_gt_boxes, num_rels, num_pred_boxes, num_pred_rels, rel_image, pair_image, pair_rank,
                       gt_boxes, gt_labels, relations, pred_boxes, pred_labels, pred_scores, pairs, gt_sub, gt_obj,
                       gt_triplets, pair_sub, pair_obj)


def iter_in_chunks(compute, records, chunk_size, **kwargs):
    """Yield ``compute(chunk, first_index=..., **kwargs)`` over an iterable of records, ``chunk_size`` records
    at a time, so memory is bounded by one chunk's predictions."""
    chunk = []
    first_index = 0
    for record in records:
        chunk.append(record)
        if len(chunk) == chunk_size:
            yield from compute(chunk, first_index=first_index, **kwargs)
            first_index += len(chunk)
            chunk = []
    if chunk:
        yield from compute(chunk, first_index=first_index, **kwargs)


def compute_image_stats(records, iou_thr=0.5, max_k=100, num_predicates=None, keep_detections=False,
                        where='record', first_index=0):
    """Reduce scene graph records (``records.py``) to per-image hit statistics, one dict per record, in order.

    Each dict holds ``img_id``, ``max_k``, ``num_pred_rels`` (P), ``num_predicates`` (C, or -1 when the
    record has no score rows to tell), ``gt_triplets`` (R, 3) (subject class, object class, predicate) and,
    per mode in ``MODES``, ``rank_<mode>`` (R,): the 0-based rank of the first predicted triplet hitting each
    GT relation, or ``max_k`` if none of the first ``max_k`` does. With ``keep_detections`` it also holds
    ``detections`` (GT and the ``max_k`` best predicted entities) for the entity AP. Error messages name
    record ``i`` as ``f'{where} {first_index + i} (img_id=...)'``.
    """
    check_options(max_k, iou_thr)
    checked = check_records(records, where, first_index)
    if not checked:
        return []
    num_classes_pred = predicate_count(checked, num_predicates, where)
    (num_gt_boxes, num_rels, num_pred_boxes, num_pred_rels, rel_image, pair_image, pair_rank, gt_boxes, gt_labels,
     relations, pred_boxes, pred_labels, pred_scores, pairs, gt_sub, gt_obj, gt_triplets, pair_sub,
     pair_obj) = gather_records(checked)
    graph = pair_rank < max_k  # graph constraint: the first max_k triplets with their own predicate labels
    graph_labels = _concat([e['pred_rel_labels'][:max_k] for e in checked], (0,), np.int64)
    _check_range(graph_labels, max(num_classes_pred, 0), checked, pair_image[graph], 'pred_rel_labels',
                 'predicates')
    if not (pred_scores >= 0).all():  # the no-graph ranking relies on it; also rejects NaN
        row = int(np.flatnonzero(~(pred_scores >= 0))[0])
        image = int(_positions(num_pred_boxes)[0][row])
        raise ValueError(f'{checked[image]["where"]}: field pred_scores must be non-negative numbers, '
                         f'got {pred_scores[row]}')

    # No graph constraint: the top max_k cells of the (triplet x predicate) score matrix.
    if len(pairs):
        # Only images with predictions take part, so equal-sized images need no padding.
        active = np.flatnonzero(num_pred_rels)
        ng_image, ng_rank, ng_rows, ng_labels = _top_cells(
            pred_scores[pair_sub] * pred_scores[pair_obj], [checked[i]['pred_rel_scores'] for i in active],
            num_pred_rels[active], num_classes_pred, max_k, [checked[i] for i in active])
        ng_image = active[ng_image]
    else:
        ng_image = ng_rank = ng_rows = ng_labels = np.zeros(0, dtype=np.int64)

    # One sorted join of predictions and GT relations on (image, mode, subject, object, predicate classes).
    num_obj_classes = int(max(gt_labels.max(initial=-1), pred_labels.max(initial=-1))) + 1
    num_rel_classes = int(max(num_classes_pred, relations[:, 2].max(initial=-1) + 1, 1))
    if 2 * len(checked) * num_obj_classes ** 2 * num_rel_classes >= 2 ** 62:
        raise ValueError(f'{where}: class ids up to {num_obj_classes - 1} and predicates up to '
                         f'{num_rel_classes - 1} are too large to join in int64; use compact 0-based ids')

    def join_key(image, mode, subject_class, object_class, predicate):
        return (((image * 2 + mode) * num_obj_classes + subject_class) * num_obj_classes
                + object_class) * num_rel_classes + predicate

    pred_rank = np.concatenate([pair_rank[graph], ng_rank])
    pred_sub = np.concatenate([pair_sub[graph], pair_sub[ng_rows]])
    pred_obj = np.concatenate([pair_obj[graph], pair_obj[ng_rows]])
    pred_key = join_key(np.concatenate([pair_image[graph], ng_image]),
                        np.repeat([0, 1], [len(graph_labels), len(ng_rows)]),
                        pred_labels[pred_sub], pred_labels[pred_obj],
                        np.concatenate([graph_labels, ng_labels]))
    by_key = np.argsort(pred_key, kind='stable')  # within one image and mode, predictions stay in rank order
    sorted_key = pred_key[by_key]

    num_gt = len(relations)
    gt_key = join_key(np.tile(rel_image, 2), np.repeat([0, 1], num_gt), np.tile(gt_triplets[:, 0], 2),
                      np.tile(gt_triplets[:, 1], 2), np.tile(gt_triplets[:, 2], 2))
    low = np.searchsorted(sorted_key, gt_key, side='left')
    counts = np.searchsorted(sorted_key, gt_key, side='right') - low
    first_hit = np.full(2 * num_gt, max_k, dtype=np.int64)
    if counts.any():
        gt_index, within = _positions(counts)
        candidate = by_key[low[gt_index] + within]
        relation = gt_index % num_gt
        hit = ((box_iou_aligned(gt_boxes[gt_sub[relation]], pred_boxes[pred_sub[candidate]]) >= iou_thr)
               & (box_iou_aligned(gt_boxes[gt_obj[relation]], pred_boxes[pred_obj[candidate]]) >= iou_thr))
        nonempty = counts > 0
        first_hit[nonempty] = np.minimum.reduceat(np.where(hit, pred_rank[candidate], max_k),
                                                  _offsets(counts)[nonempty])

    rel_bounds = np.concatenate([_offsets(num_rels), [num_gt]])
    rank_graph = first_hit[:num_gt].astype(np.int32)
    rank_no_graph = first_hit[num_gt:].astype(np.int32)
    gt_triplets = gt_triplets.astype(np.int32)
    stats = []
    for index, entry in enumerate(checked):
        begin, end = rel_bounds[index], rel_bounds[index + 1]
        image_stats = {'img_id': entry['img_id'], 'max_k': max_k, 'num_pred_rels': int(num_pred_rels[index]),
                       'num_predicates': num_classes_pred, 'gt_triplets': gt_triplets[begin:end],
                       'rank_graph': rank_graph[begin:end], 'rank_no_graph': rank_no_graph[begin:end]}
        if keep_detections:
            best = np.argsort(-entry['pred_scores'], kind='stable')[:max_k]
            image_stats['detections'] = {
                'gt_bboxes': entry['gt_bboxes'], 'gt_labels': entry['gt_labels'],
                'pred_bboxes': entry['pred_bboxes'][best], 'pred_labels': entry['pred_labels'][best],
                'pred_scores': entry['pred_scores'][best]}
        stats.append(image_stats)
    return stats


def iter_image_stats(records, chunk_size=256, **kwargs):
    """Yield ``compute_image_stats`` of an iterable of records, ``chunk_size`` records at a time, so memory is
    bounded by one chunk's predictions."""
    return iter_in_chunks(compute_image_stats, records, chunk_size, **kwargs)
