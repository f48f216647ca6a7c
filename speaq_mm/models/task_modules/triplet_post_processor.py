"""Turn the final layer's relation queries into scene graphs (docs/model.md, "Inference"), for any test batch size.

Each query proposes a subject and an object entity; the 2·Q entities of an image are merged by class-aware
NMS, every entity is mapped to the kept box of its class it overlaps most, and the queries become triplets
ranked by subject·object·predicate score with later duplicates of the same (subject, object, predicate)
removed. The reference hard-codes batch 1, CUDA and 51 classes; here all scoring, merging and ranking is
batched, and only the NMS call runs per image, so that an image's result does not depend on what else is
in its batch (the class-offset trick of batched NMS loses float precision as offsets grow).

NMS keeps a data-dependent number of boxes, which the host must read; rather than one such read per image
(and more for every later data-dependent size), the probabilities, scores and boxes of the whole batch come
to the host in one transfer after the batched softmaxes, and NMS, merging and ranking run there. A batch
costs one host round trip, and the results are host (CPU) tensors, where the evaluator reads them.
"""
import torch
from mmcv.ops import batched_nms
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmengine.structures import InstanceData


@TASK_UTILS.register_module()
class SpeaQTripletPostProcessor:
    """Scene graph post-processing.

    Args:
        nms_iou_threshold (float): IoU above which a same-class entity is merged into a better one
            (``MODEL.ROI_HEADS.NMS_THRESH_TEST``).
        predicates_per_query (int): triplets per query, with its best predicates (``TEST.NUM_REL``).
    """

    def __init__(self, nms_iou_threshold=0.5, predicates_per_query=1):
        if predicates_per_query < 1:
            raise ValueError(f'predicates_per_query must be >= 1, got {predicates_per_query}')
        self.nms_iou_threshold = nms_iou_threshold
        self.predicates_per_query = predicates_per_query

    @torch.no_grad()
    def __call__(self, predictions, img_metas, rescale=True):
        """Post-process a batch.

        Args:
            predictions (RelationPredictions): the final layer, fields (B, Q, ...).
            img_metas (list[dict]): with ``img_shape`` and, when ``rescale``, ``ori_shape``.
            rescale (bool): boxes in original-image pixels; otherwise in the input (``img_shape``) frame.

        Returns:
            list[tuple[InstanceData, InstanceData]]: per image ``pred_instances`` (``bboxes``, ``labels``,
            ``scores``) and ``pred_relations`` (``pairs``, ``scores``, ``labels``, ``triplet_scores``,
            ``query_ids``) sorted by triplet score, as described in docs/structures.md; CPU tensors.
        """
        batch, num_queries = predictions.predicate_logits.shape[:2]
        predicate_probs = predictions.predicate_logits.float().softmax(-1)
        entity_logits = torch.cat([predictions.subject_logits, predictions.object_logits], dim=1)
        entity_scores, entity_labels = entity_logits.float().softmax(-1)[..., :-1].max(-1)
        entity_boxes = bbox_cxcywh_to_xyxy(
            torch.cat([predictions.subject_boxes, predictions.object_boxes], dim=1).float())
        top_scores, top_labels = predicate_probs[..., :-1].topk(self.predicates_per_query, dim=-1)
        # The one transfer to the host (labels ride as float32, exact below 2**24).
        on_device = (predicate_probs, top_scores, top_labels.float(), entity_scores, entity_labels.float(),
                     entity_boxes)
        on_host = torch.cat([field.flatten(1) for field in on_device], dim=1).cpu()
        fields = on_host.split([field[0].numel() for field in on_device], dim=1)
        predicate_probs, top_scores, top_labels, entity_scores, entity_labels, entity_boxes = (
            field.reshape(device_field.shape) for field, device_field in zip(fields, on_device))
        top_labels, entity_labels = top_labels.long(), entity_labels.long()

        kept, entity_to_kept = self._merge_entities(entity_boxes, entity_scores, entity_labels)

        subject_kept = entity_to_kept[:, :num_queries, None].expand_as(top_labels)
        object_kept = entity_to_kept[:, num_queries:, None].expand_as(top_labels)
        triplet_scores = (top_scores * entity_scores[:, :num_queries, None]
                          * entity_scores[:, num_queries:, None]).flatten(1)
        query_ids = torch.arange(num_queries)[:, None].expand_as(top_labels)
        order = triplet_scores.argsort(dim=1, descending=True, stable=True)
        fields = [t.flatten(1).gather(1, order) for t in (subject_kept, object_kept, top_labels, query_ids)]
        subject_kept, object_kept, top_labels, query_ids = fields
        triplet_scores = triplet_scores.gather(1, order)
        first = self._first_occurrences(subject_kept, object_kept, top_labels, kept.shape[1])

        results = []
        for b, meta in enumerate(img_metas):
            img_h, img_w = (meta['ori_shape'] if rescale else meta['img_shape'])[:2]
            count = int((kept[b] >= 0).sum())
            boxes = entity_boxes[b, kept[b, :count]] * entity_boxes.new_tensor([img_w, img_h, img_w, img_h])
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, img_w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, img_h)
            instances = InstanceData(bboxes=boxes, labels=entity_labels[b, kept[b, :count]],
                                     scores=entity_scores[b, kept[b, :count]])
            keep = first[b]
            queries = query_ids[b, keep]
            relations = InstanceData(
                pairs=torch.stack([subject_kept[b, keep], object_kept[b, keep]], dim=1),
                scores=predicate_probs[b, queries],
                labels=top_labels[b, keep],
                triplet_scores=triplet_scores[b, keep],
                query_ids=queries)
            results.append((instances, relations))
        return results

    def _merge_entities(self, boxes, scores, labels):
        """Class-aware NMS per image, then every entity -> the same-class kept box it overlaps most.

        Returns:
            tuple[Tensor, Tensor]: kept entity indices (B, K) sorted by score, padded with -1, and for every
            entity (B, 2Q) its position in the kept list.
        """
        batch, num_entities = scores.shape
        keeps = [batched_nms(boxes[b], scores[b], labels[b], dict(iou_threshold=self.nms_iou_threshold))[1]
                 for b in range(batch)]
        width = max(len(k) for k in keeps)
        kept = labels.new_full((batch, width), -1)
        for b, keep in enumerate(keeps):
            kept[b, :len(keep)] = keep
        valid = kept >= 0
        kept_safe = kept.clamp(min=0)
        kept_boxes = boxes.gather(1, kept_safe[..., None].expand(-1, -1, 4))
        kept_labels = labels.gather(1, kept_safe)
        ious = bbox_overlaps(boxes, kept_boxes)
        same_class = (labels[:, :, None] == kept_labels[:, None, :]) & valid[:, None, :]
        # An entity always has a same-class kept box (itself or the one that suppressed it); among
        # equal IoUs argmax takes the first, i.e. the best-scoring one, like the reference.
        entity_to_kept = ious.masked_fill(~same_class, -1.0).argmax(dim=2)
        return kept, entity_to_kept

    @staticmethod
    def _first_occurrences(subjects, objects, predicates, num_kept):
        """(B, N) bool: True at the first (best-ranked) triplet of each (subject, object, predicate)."""
        num_predicates = int(predicates.max()) + 1 if predicates.numel() else 1
        keys = (subjects * max(num_kept, 1) + objects) * num_predicates + predicates
        sorted_keys, positions = keys.sort(dim=1, stable=True)
        starts = torch.ones_like(sorted_keys, dtype=torch.bool)
        starts[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
        return torch.zeros_like(starts).scatter(1, positions, starts)
