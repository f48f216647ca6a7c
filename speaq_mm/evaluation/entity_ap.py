"""COCO-style box AP of the predicted entities, by mmdet's ``CocoMetric`` on the per-image statistics.

``compute_image_stats(..., keep_detections=True)`` keeps each image's GT boxes and its ``max_k``
highest-scoring predicted entities (COCO's AP uses at most 100 detections per image), so this adds little
memory. They are handed to ``CocoMetric(ann_file=None)``, which builds the COCO ground truth itself, so the
numbers are those of mmdet's detectors.
"""
import contextlib
import io

import numpy as np
from mmdet.evaluation import CocoMetric

AP_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75')


def entity_detection_ap(stats):
    """Return ({'bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75'}, the AP table pycocotools printed) over all images.

    Every image counts, including those without GT relations.
    """
    if any('detections' not in s for s in stats):
        raise ValueError('entity AP needs statistics computed with keep_detections=True')
    detections = [s['detections'] for s in stats]
    labels = np.concatenate([np.asarray(d[key], np.int64).reshape(-1) for d in detections
                             for key in ('gt_labels', 'pred_labels')] + [np.zeros(0, np.int64)])
    if not any(len(d['gt_labels']) for d in detections) or not any(len(d['pred_labels']) for d in detections):
        return dict.fromkeys(AP_KEYS, 0.0), 'no detections or no GT boxes'
    metric = CocoMetric(ann_file=None, metric='bbox')
    # Category names only identify the labels; the metric looks its categories up by name.
    metric.dataset_meta = dict(classes=[str(label) for label in range(int(labels.max()) + 1)])
    for image_id, kept in enumerate(detections):
        ground_truth = [dict(bbox=box, bbox_label=int(label)) for box, label in
                        zip(np.asarray(kept['gt_bboxes'], np.float64).reshape(-1, 4).tolist(), kept['gt_labels'])]
        prediction = dict(img_id=image_id, bboxes=np.asarray(kept['pred_bboxes'], np.float64).reshape(-1, 4),
                          scores=np.asarray(kept['pred_scores'], np.float64).reshape(-1),
                          labels=np.asarray(kept['pred_labels'], np.int64).reshape(-1))
        metric.results.append((dict(img_id=image_id, width=1, height=1, anns=ground_truth), prediction))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # pycocotools prints its progress and the AP table
        values = metric.compute_metrics(metric.results)
    # pycocotools reports -1 where nothing could be measured.
    return {key: max(float(values[key]), 0.0) for key in AP_KEYS}, printed.getvalue()
