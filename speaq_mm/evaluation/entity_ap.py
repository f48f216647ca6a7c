"""COCO-style box AP of the predicted entities, computed by pycocotools from the per-image statistics.

``compute_image_stats(..., keep_detections=True)`` keeps each image's GT boxes and its ``max_k``
highest-scoring predicted entities (COCO's AP uses at most 100 detections per image), so this adds little
memory.
"""
import contextlib
import io

import numpy as np


def _xywh(boxes):
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def entity_detection_ap(stats):
    """Return ({'bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75'}, pycocotools' summary text) over all images.

    Categories are the 0-based labels + 1; every image counts, including those without GT relations.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if any('detections' not in s for s in stats):
        raise ValueError('entity AP needs statistics computed with keep_detections=True')
    images, annotations, detections = [], [], []
    for image_id, image_stats in enumerate(stats, start=1):
        kept = image_stats['detections']
        images.append({'id': image_id})
        for box, label in zip(_xywh(kept['gt_bboxes']).tolist(), np.asarray(kept['gt_labels']).tolist()):
            annotations.append({'id': len(annotations) + 1, 'image_id': image_id, 'category_id': label + 1,
                                'bbox': box, 'area': box[2] * box[3], 'iscrowd': 0})
        boxes = _xywh(kept['pred_bboxes'])
        detections.append(np.column_stack([np.full(len(boxes), image_id), boxes, kept['pred_scores'],
                                           np.asarray(kept['pred_labels']) + 1]))
    labels = {a['category_id'] for a in annotations}
    detections = np.concatenate(detections) if detections else np.zeros((0, 7))
    labels |= set(detections[:, 6].astype(int).tolist())
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # pycocotools prints progress
        ground_truth = COCO()
        ground_truth.dataset = {'images': images, 'annotations': annotations,
                                'categories': [{'id': label} for label in sorted(labels)]}
        ground_truth.createIndex()
        if len(detections) == 0 or not annotations:
            return {'bbox_mAP': 0.0, 'bbox_mAP_50': 0.0, 'bbox_mAP_75': 0.0}, 'no detections or no GT boxes'
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(detections), 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()
    values = [max(float(v), 0.0) for v in evaluator.stats[:3]]  # pycocotools reports -1 for "no GT"
    return dict(zip(('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75'), values)), summary.getvalue()
