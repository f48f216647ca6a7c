"""Vectorised Open Images V6 scene graph evaluation: per-image statistics (``compute_oi_image_stats``) and the
metrics of the split (``summarize_oi_stats``), as the field's reference computes them (PySGG's
``oi_evaluation.py`` and ``ap_eval_rel.py``, which go back to RelDN; definitions in ``docs/open_images.md``).

Per image the reference keeps the ``max_k`` (100) best (pair, predicate) cells among each predicted pair's
``PREDICATES_PER_PAIR`` (2) best predicates, scored subject score x object score x predicate score, drops
cells scoring at most 1e-5, and then

- recall: a GT relation is hit by a cell with the same (subject class, object class, predicate) whose subject
  and object boxes both have IoU >= ``iou_thr``; R@K is micro (hits over all GT relations of the split) and
  also reported per image (the mean of per-image recalls);
- AP per predicate, VOC style over the whole split: the cells of that predicate, sorted by score, each claim
  the GT relation of the predicate in their image with matching classes and the largest overlap, a true
  positive if that overlap is > ``iou_thr`` and no earlier cell claimed it. Relation AP uses the smaller of
  the subject and object IoUs, phrase AP the IoU of the subject-object union boxes.

Boxes are float32 and pixel-inclusive (a box's width is x2 - x1 + 1), as maskrcnn-benchmark's ``BoxList``
computes them, and the ground truth is clamped to [0, width - 1] x [0, height - 1] without dropping any
box. Ties follow the reference's own sorts, all numpy's default (not stable) ``argsort``: the two best
predicates of a pair are those of its call on the image's (pair, predicate) score rows (the reference passes
a torch tensor, which numpy sorts as an array), the best cells of an image those of its call on the image's
(pair, 2) cell scores, and the order in which a predicate's cells claim GT relations that of its call on
their float64 scores, image by image and rank by rank. A rank is taken from a fast stable sort unless the
values are tied, where the reference's sort is called on exactly the array the reference sorts.

Speed: one batch of images is reduced at once; predictions meet GT relations through sorted joins on
(image, classes, predicate) and (image, predicate), so IoUs are computed only for candidate pairs. Each
image is reduced to the rank at which its GT relations are first hit and, for each kept cell, its predicate,
score and the GT relation it claims (relation and phrase), which is all the split-level AP needs; no Python
loop runs per detection.
"""
import numpy as np

from .sgg_core import (
    _concat,
    _offsets,
    _positions,
    check_options,
    check_records,
    gather_records,
    iter_in_chunks,
    predicate_count,
)
from .sgg_summary import _text_table, check_topk_and_predicates

PREDICATES_PER_PAIR = 2
# The reference keeps a cell only if its score is > 1e-5, compared in the scores' float32.
MIN_CELL_SCORE = np.float32(1e-5)
ONE = np.float32(1)


def box_iou_plus_one(boxes1, boxes2):
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` for float32 xyxy boxes whose sides count both end pixels.

    The operations and their order are maskrcnn-benchmark's ``boxlist_iou`` (what the reference calls), so
    results agree bit for bit: intersection sides (min - max) + 1 clamped at 0, areas (x2 - x1 + 1) x
    (y2 - y1 + 1), IoU = inter / ((area1 + area2) - inter). Degenerate boxes give NaN as there.
    """
    sides = np.minimum(boxes1[:, 2:], boxes2[:, 2:]) - np.maximum(boxes1[:, :2], boxes2[:, :2]) + ONE
    np.maximum(sides, 0, out=sides)
    inter = sides[:, 0] * sides[:, 1]
    area1 = (boxes1[:, 2] - boxes1[:, 0] + ONE) * (boxes1[:, 3] - boxes1[:, 1] + ONE)
    area2 = (boxes2[:, 2] - boxes2[:, 0] + ONE) * (boxes2[:, 3] - boxes2[:, 1] + ONE)
    with np.errstate(divide='ignore', invalid='ignore'):
        return inter / (area1 + area2 - inter)


def union_boxes(boxes1, boxes2):
    """The smallest box holding ``boxes1[i]`` and ``boxes2[i]`` (the phrase box)."""
    return np.concatenate([np.minimum(boxes1[:, :2], boxes2[:, :2]), np.maximum(boxes1[:, 2:], boxes2[:, 2:])],
                          axis=1)


def clip_oi_ground_truth(record):
    """Clamp a checked record's GT boxes (float32) to [0, width - 1] x [0, height - 1] in place, keeping every
    box and relation, as the reference's evaluation ground truth (``clip_to_image(remove_empty=False)``)."""
    boxes = record['gt_bboxes'].astype(np.float32)
    if record.get('image_size') is not None:
        height, width = record['image_size']
        np.clip(boxes[:, 0::2], 0, np.float32(width - 1), out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, np.float32(height - 1), out=boxes[:, 1::2])
    record['gt_bboxes'] = boxes
    return record


def top_predicates(scores, count):
    """The ``count`` best columns of each row of ``scores`` (float32) and their values, best first.

    The reference ranks the rows with numpy's default ``argsort`` (not stable), each row on its own; rows
    whose top ``count`` + 1 values hold a tie are ranked by that call, the others (whose top columns are
    unique) by repeated argmax.
    """
    rows = np.arange(len(scores))
    work = scores.copy()
    labels = np.zeros((len(scores), count), dtype=np.int64)
    values = np.zeros((len(scores), count), dtype=scores.dtype)
    for column in range(count):
        labels[:, column] = work.argmax(axis=1) if len(scores) else 0
        values[:, column] = work[rows, labels[:, column]]
        work[rows, labels[:, column]] = -np.inf
    tied = np.zeros(len(scores), dtype=bool)
    for column in range(1, count):
        tied |= values[:, column - 1] == values[:, column]
    if scores.shape[1] > count and len(scores):
        tied |= values[:, -1] == work.max(axis=1)
    if tied.any():
        order = np.argsort(-scores[tied], axis=1)[:, :count]
        labels[tied] = order
        values[tied] = np.take_along_axis(scores[tied], order, axis=1)
    return labels, values


def _sorted_join(left_keys, right_keys):
    """Every (left, right) pair of equal keys, grouped by left index (ascending) and, within a group, in the
    right rows' order. Returns (left index, right index, number of matches of each left row)."""
    by_key = np.argsort(right_keys, kind='stable')
    sorted_keys = right_keys[by_key]
    low = np.searchsorted(sorted_keys, left_keys, side='left')
    counts = np.searchsorted(sorted_keys, left_keys, side='right') - low
    left, within = _positions(counts)
    return left, by_key[low[left] + within], counts


def _top_cells(cell_values, cell_counts, max_k):
    """Each image's cells (concatenated, image by image) in the reference's descending order, first ``max_k``.

    Returns the global cell indices and their 0-based ranks. A stable sort ranks every image; an image with
    equal values among its first ``max_k`` that can be kept is ranked again by ``np.argsort`` on its own
    negated values, which is the reference's call, so tied cells come in the reference's order.
    """
    cell_image, _ = _positions(cell_counts)
    order = np.lexsort((-cell_values, cell_image))
    starts = _offsets(cell_counts)
    rank = np.arange(len(order)) - starts[cell_image]  # cell_image[order] == cell_image: images stay in place
    values = cell_values[order]
    tie = (values[:-1] == values[1:]) & (cell_image[:-1] == cell_image[1:]) & (rank[:-1] < max_k) \
        & (values[:-1] > MIN_CELL_SCORE)
    for image in np.unique(cell_image[:-1][tie]):
        begin, end = starts[image], starts[image] + cell_counts[image]
        order[begin:end] = begin + np.argsort(-cell_values[begin:end])
    keep = rank < max_k
    return order[keep], rank[keep]


def compute_oi_image_stats(records, iou_thr=0.5, max_k=100, num_predicates=None, where='record', first_index=0):
    """Reduce scene graph records (``records.py``) to per-image Open Images statistics, one dict per record.

    Each dict holds ``img_id``, ``max_k``, ``num_pred_rels``, ``num_predicates`` (C, or -1 when the record has
    no score rows to tell), ``gt_triplets`` (R, 3) (subject class, object class, predicate), ``rank`` (R,):
    the 0-based rank of the first kept cell hitting each GT relation (``max_k`` if none), and per kept cell
    (D <= ``max_k``, best first) ``det_predicates``, ``det_scores`` (float32), ``det_rel_gt`` and
    ``det_phr_gt``: the index of the GT relation the cell claims for relation / phrase AP, or -1.
    """
    check_options(max_k, iou_thr)
    checked = check_records(records, where, first_index, clip_gt=False)
    if not checked:
        return []
    num_classes_pred = predicate_count(checked, num_predicates, where)
    for entry in checked:
        clip_oi_ground_truth(entry)

    (num_gt_boxes, num_rels, num_pred_boxes, num_pred_rels, rel_image, pair_image, _, gt_boxes, gt_labels,
     relations, pred_boxes, pred_labels, pred_scores, pairs, gt_sub, gt_obj, gt_triplets, pair_sub,
     pair_obj) = gather_records(checked)
    # The reference's tensors are float32 (BoxList boxes, model scores).
    pred_boxes, pred_scores = pred_boxes.astype(np.float32), pred_scores.astype(np.float32)
    rel_scores = _concat([e['pred_rel_scores'][:, :num_classes_pred] for e in checked if len(e['pred_rel_pairs'])],
                         (0, max(num_classes_pred, 0)), np.float32).astype(np.float32)
    for field, values, image in (('pred_scores', pred_scores, _positions(num_pred_boxes)[0]),
                                 ('pred_rel_scores', rel_scores, pair_image)):
        finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(f'{checked[int(image[row])]["where"]}: field {field} holds a non-finite value')

    # Each pair's best predicates; cells (pair, j) laid out image by image, row-major like the reference.
    per_pair = min(PREDICATES_PER_PAIR, max(num_classes_pred, 1))
    labels, values = top_predicates(rel_scores, per_pair)
    cell_values = ((pred_scores[pair_sub] * pred_scores[pair_obj])[:, None] * values).ravel()
    cells, det_rank = _top_cells(cell_values, num_pred_rels * per_pair, max_k)
    kept = cell_values[cells] > MIN_CELL_SCORE
    cells, det_rank = cells[kept], det_rank[kept]
    det_pair = cells // per_pair
    det_image = pair_image[det_pair]
    det_predicate = labels.ravel()[cells]
    det_score = cell_values[cells]
    det_sub_box, det_obj_box = pred_boxes[pair_sub[det_pair]], pred_boxes[pair_obj[det_pair]]
    det_sub_label, det_obj_label = pred_labels[pair_sub[det_pair]], pred_labels[pair_obj[det_pair]]

    num_obj_classes = int(max(gt_labels.max(initial=-1), pred_labels.max(initial=-1))) + 1
    num_rel_classes = int(max(num_classes_pred, relations[:, 2].max(initial=-1) + 1, 1))
    if len(checked) * num_obj_classes ** 2 * num_rel_classes >= 2 ** 62:
        raise ValueError(f'{where}: class ids up to {num_obj_classes - 1} and predicates up to '
                         f'{num_rel_classes - 1} are too large to join in int64; use compact 0-based ids')

    # Recall: the first cell with the GT triplet's classes and predicate and both IoUs >= iou_thr.
    def triplet_key(image, subject_class, object_class, predicate):
        return ((image * num_obj_classes + subject_class) * num_obj_classes + object_class) \
            * num_rel_classes + predicate

    gt_key = triplet_key(rel_image, gt_triplets[:, 0], gt_triplets[:, 1], gt_triplets[:, 2])
    det_key = triplet_key(det_image, det_sub_label, det_obj_label, det_predicate)
    relation, det, counts = _sorted_join(gt_key, det_key)
    first_hit = np.full(len(relations), max_k, dtype=np.int64)
    if len(relation):
        hit = ((box_iou_plus_one(gt_boxes[gt_sub[relation]], det_sub_box[det]) >= iou_thr)
               & (box_iou_plus_one(gt_boxes[gt_obj[relation]], det_obj_box[det]) >= iou_thr))
        nonempty = counts > 0
        first_hit[nonempty] = np.minimum.reduceat(np.where(hit, det_rank[det], max_k), _offsets(counts)[nonempty])

    # AP: each cell's best-overlapping GT relation of its image and predicate (classes must match).
    det, relation, counts = _sorted_join(det_image * num_rel_classes + det_predicate,
                                         rel_image * num_rel_classes + relations[:, 2])
    claims = {}
    for mode in ('rel', 'phr'):
        claims[mode] = np.full(len(det_score), -1, dtype=np.int64)
        if not len(det):
            continue
        if mode == 'rel':
            overlap = np.minimum(box_iou_plus_one(det_sub_box[det], gt_boxes[gt_sub[relation]]),
                                 box_iou_plus_one(det_obj_box[det], gt_boxes[gt_obj[relation]]))
        else:
            overlap = box_iou_plus_one(union_boxes(det_sub_box[det], det_obj_box[det]),
                                       union_boxes(gt_boxes[gt_sub[relation]], gt_boxes[gt_obj[relation]]))
        overlap *= (gt_triplets[relation, 0] == det_sub_label[det]) & (gt_triplets[relation, 1] == det_obj_label[det])
        nonempty = np.flatnonzero(counts)
        segment_starts = _offsets(counts)[nonempty]
        best = np.maximum.reduceat(overlap, segment_starts)
        position = np.arange(len(det))
        first_best = np.minimum.reduceat(np.where(overlap == np.repeat(best, counts[nonempty]), position, len(det)),
                                         segment_starts)
        claimed = best > iou_thr  # NaN (a degenerate box) claims nothing, as in the reference
        claims[mode][nonempty[claimed]] = relation[first_best[claimed]] - _offsets(num_rels)[rel_image[
            relation[first_best[claimed]]]]

    rel_bounds = np.concatenate([_offsets(num_rels), [len(relations)]])
    det_bounds = np.searchsorted(det_image, np.arange(len(checked) + 1))
    gt_triplets = gt_triplets.astype(np.int32)
    stats = []
    for index, entry in enumerate(checked):
        begin, end = rel_bounds[index], rel_bounds[index + 1]
        first, last = det_bounds[index], det_bounds[index + 1]
        stats.append({
            'img_id': entry['img_id'], 'max_k': max_k, 'num_pred_rels': int(num_pred_rels[index]),
            'num_predicates': num_classes_pred, 'gt_triplets': gt_triplets[begin:end],
            'rank': first_hit[begin:end].astype(np.int32),
            'det_predicates': det_predicate[first:last].astype(np.int32), 'det_scores': det_score[first:last],
            'det_rel_gt': claims['rel'][first:last].astype(np.int32),
            'det_phr_gt': claims['phr'][first:last].astype(np.int32)})
    return stats


def iter_oi_image_stats(records, chunk_size=256, **kwargs):
    """Yield ``compute_oi_image_stats`` of an iterable of records, ``chunk_size`` records at a time."""
    return iter_in_chunks(compute_oi_image_stats, records, chunk_size, **kwargs)


def voc_average_precision(recall, precision):
    """Area under the precision envelope (all points), the reference's ``get_ap``: recall padded with 0 and
    1, precision with 0 and 0, precision made non-increasing from the right, summed over recall steps."""
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = np.concatenate(([0.0], precision, [0.0]))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _predicate_ap(claimed_gt, num_positives):
    """AP of one predicate's cells, given (in the reference's claim order) the global GT relation each claims
    or -1: a claim is a true positive the first time its GT relation is claimed."""
    true_positive = np.zeros(len(claimed_gt))
    hits = np.flatnonzero(claimed_gt >= 0)
    _, first = np.unique(claimed_gt[hits], return_index=True)
    true_positive[hits[first]] = 1.0
    tp = np.cumsum(true_positive)
    fp = np.cumsum(1.0 - true_positive)
    recall = tp / (float(num_positives) + 1e-12)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return voc_average_precision(recall, precision)


def summarize_oi_stats(stats, topk=(20, 50, 100), num_predicates=None, predicate_names=None):
    """Turn per-image Open Images statistics (``compute_oi_image_stats``) into the split's metrics.

    Images without GT relations are left out entirely, as the reference's test split leaves them out (their
    cells would otherwise count as false positives). Returns a dict of fractions: ``R@K`` (micro recall),
    ``imgR@K`` (mean per-image recall), ``mAP_rel``, ``wmAP_rel``, ``mAP_phr``, ``wmAP_phr``, and with K = 50
    in ``topk`` ``score_wtd`` (0.2 R@50 + 0.4 wmAP_rel + 0.4 wmAP_phr) and ``score_unwtd`` (with the
    unweighted mAPs); plus ``per_predicate`` (GT count, weight, AP_rel, AP_phr) and ``images`` (counts).
    """
    topk = sorted({int(k) for k in topk})
    if not stats:
        raise ValueError('no images to evaluate')
    num_predicates = check_topk_and_predicates(stats, topk, num_predicates)
    num_rels_all = np.array([len(s['gt_triplets']) for s in stats], dtype=np.int64)
    kept = [s for s in stats if len(s['gt_triplets'])]
    if not kept:
        raise ValueError('none of the images has a GT relation')
    num_rels = num_rels_all[num_rels_all > 0]
    image = np.repeat(np.arange(len(kept)), num_rels)
    ranks = np.concatenate([s['rank'] for s in kept])
    predicate = np.concatenate([s['gt_triplets'][:, 2] for s in kept]).astype(np.int64)
    if predicate.max() >= num_predicates:
        raise ValueError(f'a GT relation has predicate {predicate.max()} but there are only {num_predicates} '
                         f'predicates')

    metrics = {}
    total = int(num_rels.sum())
    for k in topk:
        hits = np.bincount(image, weights=ranks < k, minlength=len(kept))
        metrics[f'R@{k}'] = float(hits.sum()) / (float(total) + 1e-12)
        metrics[f'imgR@{k}'] = float(np.mean(hits / (num_rels + 1e-12)))

    # Cells of every kept image, image by image, best first; GT relations numbered across the split.
    rel_offsets = _offsets(num_rels)
    det_counts = np.array([len(s['det_scores']) for s in kept], dtype=np.int64)
    det_image, _ = _positions(det_counts)
    det_predicate = _concat([s['det_predicates'] for s in kept], (0,), np.int32).astype(np.int64)
    det_score = _concat([s['det_scores'] for s in kept], (0,), np.float32).astype(np.float64)
    claimed = {}
    for mode in ('rel', 'phr'):
        local = _concat([s[f'det_{mode}_gt'] for s in kept], (0,), np.int32).astype(np.int64)
        claimed[mode] = np.where(local >= 0, local + rel_offsets[det_image], -1)
    by_predicate = np.argsort(det_predicate, kind='stable')  # keeps (image, rank) order within a predicate
    bounds = np.searchsorted(det_predicate[by_predicate], np.arange(num_predicates + 1))
    positives = np.bincount(predicate, minlength=num_predicates)
    all_positives = int(positives.sum())

    per_predicate = []
    sums = {'mAP_rel': 0.0, 'wmAP_rel': 0.0, 'mAP_phr': 0.0, 'wmAP_phr': 0.0}
    for c in range(num_predicates):
        cells = by_predicate[bounds[c]:bounds[c + 1]]
        order = cells[np.argsort(-det_score[cells])]  # the reference's sort, ties included
        row = {'predicate': c, 'name': str(predicate_names[c]) if predicate_names is not None else str(c),
               'test_count': int(positives[c]), 'weight': float(positives[c]) / float(all_positives)}
        for mode in ('rel', 'phr'):
            ap = _predicate_ap(claimed[mode][order], positives[c])
            row[f'AP_{mode}'] = ap
            sums[f'wmAP_{mode}'] += ap * float(positives[c]) / float(all_positives)
            sums[f'mAP_{mode}'] += ap
        per_predicate.append(row)
    metrics['mAP_rel'] = sums['mAP_rel'] / num_predicates
    metrics['wmAP_rel'] = sums['wmAP_rel']
    metrics['mAP_phr'] = sums['mAP_phr'] / num_predicates
    metrics['wmAP_phr'] = sums['wmAP_phr']
    if 50 in topk:
        metrics['score_wtd'] = 0.4 * metrics['wmAP_rel'] + 0.2 * metrics['R@50'] + 0.4 * metrics['wmAP_phr']
        metrics['score_unwtd'] = 0.4 * metrics['mAP_rel'] + 0.2 * metrics['R@50'] + 0.4 * metrics['mAP_phr']
    metrics['per_predicate'] = per_predicate
    metrics['images'] = {
        'total': len(stats),
        'evaluated': len(kept),
        'without_gt_relation': int((num_rels_all == 0).sum()),
        'without_prediction': int(sum(1 for s in kept if s['num_pred_rels'] == 0)),
        'repeated_img_ids': len(stats) - len({str(s['img_id']) for s in stats}),
    }
    return metrics


def format_oi_summary(summary, topk=None, per_predicate=True):
    """Return the recall table (micro and per image, in %), the AP table, optionally the per-predicate AP
    table, and the image counts, as plain text."""
    if topk is None:
        topk = sorted(int(key.split('@')[1]) for key in summary if key.startswith('R@'))
    rows = [[name] + [f'{100 * summary[f"{key}@{k}"]:.2f}' for k in topk]
            for name, key in (('R (micro)', 'R'), ('R (per image)', 'imgR'))]
    parts = [_text_table(['recall (%)'] + [f'@{k}' for k in topk], rows)]
    keys = [key for key in ('mAP_rel', 'wmAP_rel', 'mAP_phr', 'wmAP_phr', 'score_wtd', 'score_unwtd')
            if key in summary]
    parts.append(_text_table(keys, [[f'{100 * summary[key]:.2f}' for key in keys]]))
    if per_predicate:
        table_rows = [[str(p['predicate']), p['name'], str(p['test_count']), f'{100 * p["weight"]:.2f}',
                       f'{100 * p["AP_rel"]:.2f}', f'{100 * p["AP_phr"]:.2f}']
                      for p in summary.get('per_predicate', [])]
        parts.append(_text_table(['id', 'predicate', 'test GT', 'weight %', 'AP_rel %', 'AP_phr %'], table_rows))
    images = summary.get('images', {})
    parts.append('images: ' + ', '.join(f'{key.replace("_", " ")} {value}' for key, value in images.items()))
    return '\n'.join(parts)
