"""The slow, obviously correct side of the evaluation: synthetic VG150-like test images and the metrics computed
from the definitions (docs/evaluation.md) by a plain Python loop over images, GT relations and predictions.

``tools/benchmarks/bench_eval.py`` and the tests check the vectorised core (``sgg_core`` + ``sgg_summary``)
against :func:`loop_metrics` on these images: every metric and per-predicate value must be identical (``==``
on floats). The images: 150 classes, 50 predicates, long-tailed labels, integer GT boxes, noisy detections,
predicted triplets with a few true ones at random ranks, uniform random predicate scores with a large
no-relation column, some images without GT relations or without predictions, duplicated GT triplets; they are
generated deterministically chunk by chunk, so memory stays flat and every run sees the same data.
"""
import math

import numpy as np

NUM_CLASSES = 150
NUM_PREDICATES = 50
TOPK = (20, 50, 100)


def _long_tail(size, exponent):
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    return weights / weights.sum()


CLASS_PROB = _long_tail(NUM_CLASSES, 1.0)
PREDICATE_PROB = _long_tail(NUM_PREDICATES, 1.5)


def train_statistics(num_relations=400_000, seed=12345):
    """Synthetic training-split statistics: the predicate counts and unique (subject class, object class,
    predicate) triplets of ``num_relations`` relations drawn like the test ones, so frequent test triplets are
    seen in training and rare ones are zero-shot."""
    rng = np.random.default_rng(seed)
    predicates = rng.choice(NUM_PREDICATES, num_relations, p=PREDICATE_PROB)
    keys = np.unique((rng.choice(NUM_CLASSES, num_relations, p=CLASS_PROB) * NUM_CLASSES
                      + rng.choice(NUM_CLASSES, num_relations, p=CLASS_PROB)) * NUM_PREDICATES + predicates)
    seen = np.stack([keys // (NUM_CLASSES * NUM_PREDICATES), keys // NUM_PREDICATES % NUM_CLASSES,
                     keys % NUM_PREDICATES], axis=1)
    return np.bincount(predicates, minlength=NUM_PREDICATES), seen


def synthetic_image(rng, img_id, rel_scores):
    """One image record; ``rel_scores`` (P, C + 1) are uniform random rows that this function edits."""
    width, height = rng.integers(400, 1000, size=2)
    num_boxes = int(rng.integers(2, 26))
    x1 = rng.integers(0, width - 16, num_boxes)
    y1 = rng.integers(0, height - 16, num_boxes)
    x2 = x1 + rng.integers(16, width - x1 + 1)
    y2 = y1 + rng.integers(16, height - y1 + 1)
    gt_bboxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    gt_labels = rng.choice(NUM_CLASSES, num_boxes, p=CLASS_PROB)
    num_rels = 0 if rng.random() < 0.03 else int(min(rng.integers(1, 2 * num_boxes + 1), 30))
    subject = rng.integers(0, num_boxes, num_rels)
    obj = (subject + rng.integers(1, num_boxes, num_rels)) % num_boxes
    relations = np.stack([subject, obj, rng.choice(NUM_PREDICATES, num_rels, p=PREDICATE_PROB)], axis=1)
    if num_rels and rng.random() < 0.1:  # a duplicated GT triplet
        relations = np.concatenate([relations, relations[rng.integers(0, num_rels, 1)]])

    # Detections: noisy copies of most GT boxes (some exact), then clutter.
    detected = np.flatnonzero(rng.random(num_boxes) < 0.85)
    size = (gt_bboxes[detected, 2:] - gt_bboxes[detected, :2]).repeat(2, axis=0).reshape(-1, 4)
    noise = rng.normal(0, 0.12, (len(detected), 4)) * size * (rng.random((len(detected), 1)) > 0.2)
    copies = (gt_bboxes[detected] + noise).astype(np.float32)
    copy_labels = np.where(rng.random(len(detected)) < 0.85, gt_labels[detected],
                           rng.integers(0, NUM_CLASSES, len(detected)))
    num_clutter = int(rng.integers(5, 30))
    clutter_xy = rng.uniform(0, [width * 0.8, height * 0.8], (num_clutter, 2))
    clutter = np.concatenate([clutter_xy, clutter_xy + rng.uniform(10, 200, (num_clutter, 2))], axis=1)
    pred_bboxes = np.concatenate([copies, clutter.astype(np.float32)])
    pred_labels = np.concatenate([copy_labels, rng.integers(0, NUM_CLASSES, num_clutter)])
    pred_scores = np.concatenate([rng.uniform(0.3, 1.0, len(copies)),
                                  rng.uniform(0.05, 0.6, num_clutter)]).astype(np.float32)
    copy_of = np.full(num_boxes, -1)
    copy_of[detected] = np.arange(len(detected))

    num_triplets = 0 if rng.random() < 0.02 else len(rel_scores)
    rel_scores = rel_scores[:num_triplets]
    pairs = rng.integers(0, len(pred_bboxes), (num_triplets, 2))
    findable = np.flatnonzero((copy_of[relations[:, 0]] >= 0) & (copy_of[relations[:, 1]] >= 0)
                              & (rng.random(len(relations)) < 0.7))[:num_triplets]
    rows = rng.choice(num_triplets, len(findable), replace=False) if len(findable) else findable
    pairs[rows] = copy_of[relations[findable, :2]]
    boost = rng.random(len(rows)) < 0.6
    rel_scores[rows[boost], relations[findable[boost], 2]] += rng.uniform(0, 4, int(boost.sum()))
    rel_scores[:, -1] *= 3  # the no-relation column often wins; the metrics must ignore it
    rel_labels = rel_scores[:, :-1].argmax(axis=1)
    triplet_scores = (pred_scores[pairs[:, 0]] * pred_scores[pairs[:, 1]]
                      * rel_scores[np.arange(num_triplets), rel_labels])
    order = np.argsort(-triplet_scores, kind='stable')
    return {'img_id': img_id, 'gt_bboxes': gt_bboxes, 'gt_labels': gt_labels, 'gt_relations': relations,
            'pred_bboxes': pred_bboxes, 'pred_labels': pred_labels, 'pred_scores': pred_scores,
            'pred_rel_pairs': pairs[order], 'pred_rel_scores': rel_scores[order],
            'pred_rel_labels': rel_labels[order]}


def synthetic_chunk(seed, chunk_index, first_image, count, num_triplets):
    """``count`` records starting at image ``first_image``; a function of (seed, chunk_index) only."""
    rng = np.random.default_rng([seed, chunk_index])
    rel_scores = rng.random((count, num_triplets, NUM_PREDICATES + 1), dtype=np.float32)
    return [synthetic_image(rng, first_image + i, rel_scores[i]) for i in range(count)]


def synthetic_chunks(num_images, num_triplets, chunk_size, seed):
    """Yield (index of the first image, records) chunk by chunk."""
    for chunk_index, first in enumerate(range(0, num_images, chunk_size)):
        count = min(chunk_size, num_images - first)
        yield first, synthetic_chunk(seed, chunk_index, first, count, num_triplets)


def _iou(box1, box2):
    """IoU of two xyxy boxes, one operation at a time in the boxes' precision (continuous coordinates)."""
    width = min(box1[2], box2[2]) - max(box1[0], box2[0])
    height = min(box1[3], box2[3]) - max(box1[1], box2[1])
    inter = max(width, 0) * max(height, 0)
    if not inter > 0:
        return 0
    area1 = (box1[2] - box1[0]) * (box1[3] - box1[1])
    area2 = (box2[2] - box2[0]) * (box2[3] - box2[1])
    return inter / (area1 + area2 - inter)


def loop_metrics(records, topk=TOPK, iou_thr=0.5, seen_triplets=None, predicate_groups=None,
                 reference_compat=False):
    """The metrics straight from their definitions, one image, GT relation and prediction at a time."""
    max_k = max(topk)
    seen = set(map(tuple, np.asarray(seen_triplets).tolist())) if seen_triplets is not None else None
    recalls = {mode: {k: [] for k in topk} for mode in ('R', 'ngR')}
    predicate_recalls = {mode: {k: {c: [] for c in range(NUM_PREDICATES)} for k in topk} for mode in ('R', 'ngR')}
    zeroshot_recalls = {k: [] for k in topk}
    for record in records:
        gt_relations = record['gt_relations']
        pairs = record['pred_rel_pairs']
        if len(gt_relations) == 0 or (reference_compat and len(pairs) == 0):
            continue
        gt_labels, gt_boxes = record['gt_labels'], record['gt_bboxes']
        pred_labels, pred_boxes = record['pred_labels'], record['pred_bboxes']
        pred_scores = record['pred_scores']
        gt = [(gt_labels[s], gt_labels[o], p, gt_boxes[s], gt_boxes[o]) for s, o, p in gt_relations]

        graph = [(pairs[i][0], pairs[i][1], record['pred_rel_labels'][i])
                 for i in range(min(len(pairs), max_k))]
        rel_scores = record['pred_rel_scores'][:, :NUM_PREDICATES]
        cells = (pred_scores[pairs[:, 0]] * pred_scores[pairs[:, 1]])[:, None] * rel_scores
        best = np.argsort(-cells.ravel(), kind='stable')[:max_k]
        no_graph = [(pairs[i // NUM_PREDICATES][0], pairs[i // NUM_PREDICATES][1], i % NUM_PREDICATES)
                    for i in best]

        first_hit = {}
        for mode, predictions in (('R', graph), ('ngR', no_graph)):
            first_hit[mode] = []
            for sub_class, obj_class, predicate, sub_box, obj_box in gt:
                rank = math.inf
                for i, (s, o, p) in enumerate(predictions):
                    if (pred_labels[s] == sub_class and pred_labels[o] == obj_class and p == predicate
                            and _iou(sub_box, pred_boxes[s]) >= iou_thr
                            and _iou(obj_box, pred_boxes[o]) >= iou_thr):
                        rank = i
                        break
                first_hit[mode].append(rank)
        for k in topk:
            for mode in ('R', 'ngR'):
                recalls[mode][k].append(sum(rank < k for rank in first_hit[mode]) / len(gt))
            for c in {int(p) for _, _, p, _, _ in gt}:
                members = [i for i, triplet in enumerate(gt) if triplet[2] == c]
                for mode in ('R', 'ngR'):
                    predicate_recalls[mode][k][c].append(sum(first_hit[mode][i] < k for i in members)
                                                         / len(members))
            if seen is not None:
                zeroshot = [i for i, (s, o, p, _, _) in enumerate(gt) if (int(s), int(o), int(p)) not in seen]
                if zeroshot:
                    zeroshot_recalls[k].append(sum(first_hit['R'][i] < k for i in zeroshot) / len(zeroshot))

    def mean(values):
        return math.fsum(values) / len(values) if values else 0.0

    metrics = {}
    for k in topk:
        metrics[f'R@{k}'] = mean(recalls['R'][k])
        metrics[f'ngR@{k}'] = mean(recalls['ngR'][k])
        per_predicate = [mean(predicate_recalls['R'][k][c]) for c in range(NUM_PREDICATES)]
        no_graph = [mean(predicate_recalls['ngR'][k][c]) for c in range(NUM_PREDICATES)]
        metrics[f'mR@{k}'] = mean(per_predicate)
        metrics[f'ngmR@{k}'] = mean(no_graph)
        recall, mean_recall = metrics[f'R@{k}'], metrics[f'mR@{k}']
        metrics[f'F@{k}'] = 2 * recall * mean_recall / (recall + mean_recall) if recall + mean_recall else 0.0
        if zeroshot_recalls[k]:
            metrics[f'zR@{k}'] = mean(zeroshot_recalls[k])
        for group, members in (predicate_groups or {}).items():
            metrics[f'{group}_mR@{k}'] = mean([per_predicate[c] for c in members])
        for c in range(NUM_PREDICATES):
            metrics[f'predicate{c}/R@{k}'] = per_predicate[c]
            metrics[f'predicate{c}/ngR@{k}'] = no_graph[c]
    return metrics


def flatten(summary):
    """The summary's metrics plus its per-predicate recalls as ``predicate<c>/R@K``, for comparison."""
    flat = {key: value for key, value in summary.items() if key not in ('per_predicate', 'images')}
    for row in summary['per_predicate']:
        flat.update({f'predicate{row["predicate"]}/{key}': value for key, value in row.items() if '@' in key})
    return flat
