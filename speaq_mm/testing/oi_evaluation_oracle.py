"""The slow, obviously correct side of the Open Images evaluation: synthetic OI-like test images and the
metrics computed from the definitions (docs/open_images.md) one image, GT relation and detection at a time.

The tests and ``tools/benchmarks/bench_eval.py --protocol open_images`` check the vectorised core
(``oi_core``) against :func:`oi_loop_metrics`. The images: 60 classes, 30 predicates (OI V6 has 30),
integer GT boxes (some reaching past the image border, a few duplicated relations), noisy detections,
predicted pairs with a few true ones, predicate scores and entity scores drawn from a few levels so that
(pair, predicate) cells tie often, some images without predictions or without GT relations.
"""
import math

import numpy as np

NUM_CLASSES = 60
NUM_PREDICATES = 30
TOPK = (20, 50, 100)


def synthetic_oi_image(rng, img_id, num_triplets, ties=True):
    """One record with ``image_size``; ``ties`` quantises the scores so that many cells tie."""
    width, height = (int(v) for v in rng.integers(300, 900, size=2))
    num_boxes = int(rng.integers(2, 12))
    x1 = rng.integers(-5, width - 20, num_boxes)
    y1 = rng.integers(-5, height - 20, num_boxes)
    x2 = x1 + rng.integers(15, 300, num_boxes)
    y2 = y1 + rng.integers(15, 300, num_boxes)
    gt_bboxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    gt_labels = rng.integers(0, NUM_CLASSES // 4, num_boxes)  # few classes per image: label matches happen
    num_rels = 0 if rng.random() < 0.03 else int(rng.integers(1, 8))
    subject = rng.integers(0, num_boxes, num_rels)
    obj = (subject + rng.integers(1, num_boxes, num_rels)) % num_boxes
    predicates = rng.integers(0, NUM_PREDICATES - 3, num_rels)  # the last 3 predicates never occur
    relations = np.stack([subject, obj, predicates], axis=1).reshape(-1, 3)
    if num_rels and rng.random() < 0.2:
        relations = np.concatenate([relations, relations[:1]])

    jitter = rng.normal(0, 6, (num_boxes, 4)) * (rng.random((num_boxes, 1)) < 0.7)
    copies = (gt_bboxes + jitter).astype(np.float32)
    copy_labels = np.where(rng.random(num_boxes) < 0.85, gt_labels, rng.integers(0, NUM_CLASSES, num_boxes))
    clutter = int(rng.integers(2, 8))
    corner = rng.uniform(0, [width * 0.8, height * 0.8], (clutter, 2))
    clutter_boxes = np.concatenate([corner, corner + rng.uniform(10, 200, (clutter, 2))], axis=1)
    pred_bboxes = np.concatenate([copies, clutter_boxes.astype(np.float32)])
    pred_labels = np.concatenate([copy_labels, rng.integers(0, NUM_CLASSES // 4, clutter)])
    levels = np.float32([0.25, 0.5, 0.75, 1.0]) if ties else None
    pred_scores = (levels[rng.integers(0, 4, len(pred_bboxes))] if ties
                   else rng.uniform(0.05, 1, len(pred_bboxes))).astype(np.float32)

    count = 0 if rng.random() < 0.03 else num_triplets
    pairs = rng.integers(0, len(pred_bboxes), (count, 2))
    if count and num_rels:
        true_rows = rng.choice(count, min(count, len(relations)), replace=False)
        pairs[true_rows] = relations[:len(true_rows), :2]
    rel_scores = rng.random((count, NUM_PREDICATES + 1)).astype(np.float32)
    if ties:
        rel_scores = np.round(rel_scores * 4).astype(np.float32) / 8
    if count and num_rels:
        rel_scores[true_rows, relations[:len(true_rows), 2]] += np.float32(0.5)
    rel_scores[:, -1] = 0.9
    rel_labels = rel_scores[:, :-1].argmax(axis=1)
    triplet_scores = pred_scores[pairs[:, 0]] * pred_scores[pairs[:, 1]] * rel_scores[np.arange(count), rel_labels]
    order = np.argsort(-triplet_scores, kind='stable')
    return {'img_id': img_id, 'image_size': (height, width), 'gt_bboxes': gt_bboxes, 'gt_labels': gt_labels,
            'gt_relations': relations, 'pred_bboxes': pred_bboxes, 'pred_labels': pred_labels,
            'pred_scores': pred_scores, 'pred_rel_pairs': pairs[order], 'pred_rel_scores': rel_scores[order],
            'pred_rel_labels': rel_labels[order]}


def synthetic_oi_records(num_images, num_triplets=100, seed=0, ties=True):
    """``num_images`` records, a function of the arguments only."""
    rng = np.random.default_rng(seed)
    return [synthetic_oi_image(rng, index, num_triplets, ties) for index in range(num_images)]


def _iou(box1, box2):
    """IoU with pixel-inclusive sides, one float32 operation at a time (maskrcnn-benchmark's convention)."""
    one = np.float32(1)
    width = max(min(box1[2], box2[2]) - max(box1[0], box2[0]) + one, np.float32(0))
    height = max(min(box1[3], box2[3]) - max(box1[1], box2[1]) + one, np.float32(0))
    inter = width * height
    area1 = (box1[2] - box1[0] + one) * (box1[3] - box1[1] + one)
    area2 = (box2[2] - box2[0] + one) * (box2[3] - box2[1] + one)
    return inter / (area1 + area2 - inter)


def _union(box1, box2):
    return np.float32([min(box1[0], box2[0]), min(box1[1], box2[1]), max(box1[2], box2[2]),
                       max(box1[3], box2[3])])


def _image_detections(record, max_k):
    """The image's kept cells, best first: (subject box, object box, subject class, object class, predicate,
    score)."""
    pairs = record['pred_rel_pairs']
    if len(pairs) == 0:
        return []
    scores = np.asarray(record['pred_rel_scores'], dtype=np.float32)
    num_predicates = scores.shape[1] - 1
    per_pair = min(2, num_predicates)
    ranked = np.argsort(-scores[:, :num_predicates], axis=1)[:, :per_pair]
    entity = np.asarray(record['pred_scores'], dtype=np.float32)
    cells = np.zeros((len(pairs), per_pair), dtype=np.float32)
    for i, (s, o) in enumerate(pairs):
        for j in range(per_pair):
            cells[i, j] = entity[s] * entity[o] * scores[i, ranked[i, j]]
    best = np.argsort(-cells.ravel())[:max_k]
    boxes = np.asarray(record['pred_bboxes'], dtype=np.float32)
    labels = record['pred_labels']
    detections = []
    for cell in best:
        i, j = divmod(int(cell), per_pair)
        if cells[i, j] > np.float32(1e-5):
            s, o = pairs[i]
            detections.append((boxes[s], boxes[o], labels[s], labels[o], ranked[i, j], cells[i, j]))
    return detections


def _ground_truth(record):
    boxes = np.asarray(record['gt_bboxes'], dtype=np.float32).copy()
    if record.get('image_size') is not None:
        height, width = record['image_size']
        for box in boxes:
            box[0], box[2] = (min(max(v, 0), width - 1) for v in (box[0], box[2]))
            box[1], box[3] = (min(max(v, 0), height - 1) for v in (box[1], box[3]))
    labels = record['gt_labels']
    return [(boxes[s], boxes[o], labels[s], labels[o], p) for s, o, p in record['gt_relations']]


def _average_precision(detections, ground_truth, num_positives, relation):
    """VOC AP of one predicate: ``detections`` (image, score, subject box, object box, classes) in split order,
    ``ground_truth`` image -> list of (subject box, object box, classes)."""
    order = np.argsort(-np.array([d[1] for d in detections], dtype=np.float64))
    claimed = set()
    true_positive = []
    for index in order:
        image, _, sub_box, obj_box, sub_class, obj_class = detections[index]
        best, best_gt = -math.inf, None
        for g, (gt_sub, gt_obj, gt_sub_class, gt_obj_class) in enumerate(ground_truth.get(image, [])):
            if relation:
                overlap = min(_iou(sub_box, gt_sub), _iou(obj_box, gt_obj))
            else:
                overlap = _iou(_union(sub_box, obj_box), _union(gt_sub, gt_obj))
            if not (gt_sub_class == sub_class and gt_obj_class == obj_class):
                overlap = 0.0
            if overlap > best:
                best, best_gt = overlap, g
        hit = best > 0.5 and (image, best_gt) not in claimed
        if best > 0.5:
            claimed.add((image, best_gt))
        true_positive.append(1.0 if hit else 0.0)
    recall, precision = [], []
    tp = fp = 0.0
    for value in true_positive:
        tp, fp = tp + value, fp + 1.0 - value
        recall.append(tp / (num_positives + 1e-12))
        precision.append(tp / max(tp + fp, np.finfo(np.float64).eps))
    recall = [0.0] + recall + [1.0]
    precision = [0.0] + precision + [0.0]
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    return math.fsum((recall[i + 1] - recall[i]) * precision[i + 1] for i in range(len(recall) - 1)
                     if recall[i + 1] != recall[i])


def oi_loop_metrics(records, topk=TOPK, iou_thr=0.5, num_predicates=NUM_PREDICATES):
    """The Open Images metrics straight from their definitions, one image, GT relation and cell at a time."""
    max_k = max(topk)
    hits = {k: 0 for k in topk}
    image_recalls = {k: [] for k in topk}
    total = 0
    class_detections = {c: [] for c in range(num_predicates)}
    class_ground_truth = {c: {} for c in range(num_predicates)}
    positives = [0] * num_predicates
    for image, record in enumerate(records):
        ground_truth = _ground_truth(record)
        if not ground_truth:
            continue
        detections = _image_detections(record, max_k)
        first_hit = []
        for gt_sub, gt_obj, sub_class, obj_class, predicate in ground_truth:
            rank = math.inf
            for i, (sub_box, obj_box, det_sub, det_obj, det_predicate, _) in enumerate(detections):
                if ((det_sub, det_obj, det_predicate) == (sub_class, obj_class, predicate)
                        and _iou(gt_sub, sub_box) >= iou_thr and _iou(gt_obj, obj_box) >= iou_thr):
                    rank = i
                    break
            first_hit.append(rank)
            class_ground_truth[int(predicate)].setdefault(image, []).append((gt_sub, gt_obj, sub_class, obj_class))
            positives[int(predicate)] += 1
        total += len(ground_truth)
        for k in topk:
            count = sum(rank < k for rank in first_hit)
            hits[k] += count
            image_recalls[k].append(count / (len(ground_truth) + 1e-12))
        for sub_box, obj_box, sub_class, obj_class, predicate, score in detections:
            class_detections[int(predicate)].append((image, score, sub_box, obj_box, sub_class, obj_class))

    metrics = {}
    for k in topk:
        metrics[f'R@{k}'] = hits[k] / (total + 1e-12)
        metrics[f'imgR@{k}'] = math.fsum(image_recalls[k]) / len(image_recalls[k])
    all_positives = sum(positives)
    for mode, relation in (('rel', True), ('phr', False)):
        aps = [_average_precision(class_detections[c], class_ground_truth[c], positives[c], relation)
               for c in range(num_predicates)]
        metrics[f'mAP_{mode}'] = math.fsum(aps) / num_predicates
        metrics[f'wmAP_{mode}'] = math.fsum(ap * positives[c] / all_positives for c, ap in enumerate(aps))
        for c, ap in enumerate(aps):
            metrics[f'predicate{c}/AP_{mode}'] = ap
    if 50 in topk:
        metrics['score_wtd'] = 0.2 * metrics['R@50'] + 0.4 * metrics['wmAP_rel'] + 0.4 * metrics['wmAP_phr']
        metrics['score_unwtd'] = 0.2 * metrics['R@50'] + 0.4 * metrics['mAP_rel'] + 0.4 * metrics['mAP_phr']
    return metrics


def flatten_oi(summary):
    """The summary's metrics plus its per-predicate APs as ``predicate<c>/AP_<mode>``, for comparison."""
    flat = {key: value for key, value in summary.items() if key not in ('per_predicate', 'images')}
    for row in summary['per_predicate']:
        flat.update({f'predicate{row["predicate"]}/{key}': row[key] for key in ('AP_rel', 'AP_phr')})
    return flat
