"""The set criterion of IterativeSG/SpeaQ with predicate reweighting and per-sample loss weights.

Box terms reuse mmdet's ``L1Loss`` and ``GIoULoss`` (configurable) for the element-wise values; the
reductions are written out because they must keep the reference's unweighted denominators while every
element carries its image's loss weight. The classification terms are cross-entropies written here with
``F.cross_entropy``: their class weights come from the train split's statistics at the start of training
(mmdet's ``CrossEntropyLoss`` fixes them at build time) and their denominator is the reference's
class-weighted query count.
"""
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmdet.models.losses import accuracy
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule

from ..utils.relation_structures import device_vector

MATCH_NORMALISERS = ('mean_over_processes', 'per_micro_batch')


def predicate_class_weights(counts, oversample_param, undersample_param, no_relation_weight,
                            weight_range):
    """Reference reweighting (docs/model.md, "Criterion"), then clamped.

    w_c = max(sqrt(alpha / (f_c + 1e-5)), 1) ** U with f_c = count_c / sum(count), clamped to
    ``weight_range``; the no-relation weight is appended last. With alpha = 0.07 and U = 1.5 the formula
    gives weights in [1, 768.4], so the default range (0.01, 1000) leaves the recipe untouched and only
    stops pathological parameters (e.g. alpha = 1, U = 4 gives 1e10) from overflowing fp16 logits' grads.

    Args:
        counts (np.ndarray): validated per-predicate counts.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    frequency = counts / counts.sum()
    weights = torch.clamp((oversample_param / (frequency + 1e-5)).sqrt(), min=1.0) ** undersample_param
    weights = weights.clamp(*weight_range)
    return torch.cat([weights, weights.new_tensor([no_relation_weight])]).float()


@MODELS.register_module()
class SpeaQRelationCriterion(BaseModule):
    """Losses of one decoder layer given a matching (docs/model.md, "Criterion"; sample weights:
    docs/multi_dataset.md).

    Every loss term of an image's queries, matched or background, is multiplied by the image's
    ``sample_weight`` while the denominators stay the reference's unweighted ones: the class-weighted number
    of queries for the cross-entropies and the number of matched pairs (averaged over ranks, at least 1)
    for the box terms. A batch of weights 1.0 therefore gives exactly the unweighted loss and a batch of
    weights 0.5 exactly half of it. A GT relation's own weight (``RelationTargets.relation_weights``, from
    pseudo-label scores; docs/synthetic_data.md) multiplies, on top, every term of the queries matched to it:
    at weight 0 those queries contribute no loss and receive no gradient (they still take the relation in
    the matching, so they are not trained as background either).

    Args:
        num_entity_classes (int): C object classes (no-object is index C).
        num_predicates (int): P predicates (no-relation is index P).
        entity_cls_weight (float): weight of the subject and object cross-entropies.
        predicate_cls_weight (float): weight of the predicate cross-entropy.
        no_object_weight (float): class weight of no-object in the entity cross-entropies.
        reweight_predicates (bool): use the frequency-based predicate weights of docs/model.md, "Criterion" (set
            by `set_predicate_counts`, which the head calls with the train split's counts); otherwise every
            predicate weighs 1.
        oversample_param (float): alpha of the reweighting, >= 0.
        undersample_param (float): U (twice beta) of the reweighting, >= 0.
        no_relation_weight (float): class weight of no-relation, > 0.
        class_weight_range (tuple[float, float]): clamp of the predicate class weights.
        loss_bbox (dict, optional): element-wise box loss on normalised cxcywh; default mmdet ``L1Loss`` with
            loss_weight 5.
        loss_iou (dict, optional): element-wise box loss on xyxy; default ``SGGGIoULoss`` (mmdet's
            ``GIoULoss`` without its host round trips) with loss_weight 2.
        match_normaliser (str): the denominator of the box terms. ``'mean_over_processes'`` (the reference):
            the matched pairs of this batch averaged over the processes, at least 1. ``'per_micro_batch'``:
            the matched pairs of this process's batch, at least 1; with it, N processes x 1 batch and
            1 process x N accumulated batches give the same gradients on the same images (the reference's
            mean would need the matches of micro-batches not yet run). docs/distributed.md, "Gradient
            accumulation".
    """

    def __init__(self,
                 num_entity_classes,
                 num_predicates,
                 entity_cls_weight=1.0,
                 predicate_cls_weight=1.0,
                 no_object_weight=0.1,
                 reweight_predicates=True,
                 oversample_param=0.07,
                 undersample_param=1.5,
                 no_relation_weight=0.1,
                 class_weight_range=(0.01, 1000.0),
                 loss_bbox=None,
                 loss_iou=None,
                 match_normaliser='mean_over_processes',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        for name, value in (('oversample_param', oversample_param), ('undersample_param', undersample_param)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0, got {value}')
        class_weights = (('no_object_weight', no_object_weight), ('no_relation_weight', no_relation_weight))
        for name, value in class_weights:
            # A zero weight makes the weighted mean 0/0 for a batch without matches.
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a finite number > 0, got {value}')
        if match_normaliser not in MATCH_NORMALISERS:
            raise ValueError(f'match_normaliser must be one of {MATCH_NORMALISERS}, got {match_normaliser!r}')
        self.match_normaliser = match_normaliser
        low, high = class_weight_range
        if not (0 < low <= high < math.inf):
            raise ValueError(f'class_weight_range must satisfy 0 < low <= high < inf, got '
                             f'{class_weight_range}')
        self.num_entity_classes = num_entity_classes
        self.num_predicates = num_predicates
        self.entity_cls_weight = entity_cls_weight
        self.predicate_cls_weight = predicate_cls_weight
        self.reweight_predicates = reweight_predicates
        self.oversample_param = oversample_param
        self.undersample_param = undersample_param
        self.no_relation_weight = no_relation_weight
        self.class_weight_range = (low, high)
        self.loss_bbox = MODELS.build(loss_bbox or dict(type='L1Loss', loss_weight=5.0))
        self.loss_iou = MODELS.build(loss_iou or dict(type='SGGGIoULoss', loss_weight=2.0))
        entity_weights = torch.ones(num_entity_classes + 1)
        entity_weights[-1] = no_object_weight
        predicate_weights = torch.ones(num_predicates + 1)
        predicate_weights[-1] = no_relation_weight
        # Not persistent: they follow the dataset statistics of each run rather than a checkpoint.
        self.register_buffer('entity_class_weights', entity_weights, persistent=False)
        self.register_buffer('predicate_class_weights', predicate_weights, persistent=False)

    @property
    def uses_predicate_counts(self):
        """Whether the losses depend on the train split's predicate counts (`set_predicate_counts`)."""
        return self.reweight_predicates

    def set_predicate_counts(self, counts):
        """Compute the predicate class weights from the train split's per-predicate counts, already checked
        by ``validate_predicate_counts`` (the head does both, `SpeaQRelationHead.set_train_statistics`)."""
        if self.reweight_predicates:
            weights = predicate_class_weights(counts, self.oversample_param, self.undersample_param,
                                              self.no_relation_weight, self.class_weight_range)
            self.predicate_class_weights.copy_(weights)

    def forward(self, predictions, targets, matches, with_logs=False):
        """Loss terms of one layer.

        Args:
            predictions (RelationPredictions): one layer, fields (B, Q, ...).
            targets (list[RelationTargets]): one per image.
            matches (list[tuple[Tensor, Tensor]]): per image (query indices, GT relation indices).
            with_logs (bool): also return detached logging values: the class errors, and the relation losses
                split per source.

        Returns:
            tuple[dict, dict, dict]: weighted loss terms (``loss_*``); class errors (``class_error_*``); the
            unweighted relation terms of each source's images (``'<source>.relation_ce'``, ``_l1``,
            ``_giou``). The last are keyed by user-chosen source names, so they must never enter the loss
            dict, whose keys containing ``loss`` mmengine sums into the objective: the head logs them
            through the message hub.
        """
        device = predictions.predicate_logits.device
        batch, num_queries = predictions.predicate_logits.shape[:2]
        image_index = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(matches)])
        query_index = torch.cat([q for q, _ in matches])
        gt_index = [g for _, g in matches]
        sample_weights = device_vector([t.sample_weight for t in targets], predictions.predicate_logits, torch.float32)
        query_weights = sample_weights.repeat_interleave(num_queries)
        matched_weights = sample_weights[image_index]
        if any(t.relation_weights is not None for t in targets):
            matched_weights = matched_weights * torch.cat([
                t.relation_weights[g] if t.relation_weights is not None else t.entity_boxes.new_ones(len(g))
                for t, g in zip(targets, gt_index)])
            query_weights = query_weights.index_put((image_index * num_queries + query_index, ), matched_weights)
        num_matched = self._num_matched(len(query_index), predictions.predicate_logits)

        def gather_entities(field, column):
            return torch.cat([getattr(t, field)[t.pairs[g, column]] for t, g in zip(targets, gt_index)])

        branches = {
            'subject': (predictions.subject_logits, predictions.subject_boxes,
                        gather_entities('entity_labels', 0), gather_entities('entity_boxes', 0),
                        self.entity_class_weights, self.entity_cls_weight, 'loss_ce_subject'),
            'object': (predictions.object_logits, predictions.object_boxes,
                       gather_entities('entity_labels', 1), gather_entities('entity_boxes', 1),
                       self.entity_class_weights, self.entity_cls_weight, 'loss_ce_object'),
            'relation': (predictions.predicate_logits, predictions.relation_boxes,
                         torch.cat([t.predicate_labels[g] for t, g in zip(targets, gt_index)]),
                         torch.cat([t.relation_boxes[g] for t, g in zip(targets, gt_index)]),
                         self.predicate_class_weights, self.predicate_cls_weight, 'loss_relation'),
        }
        losses, logs, source_logs = {}, {}, {}
        for branch, branch_inputs in branches.items():
            logits, boxes, labels, target_boxes, class_weights, cls_weight, ce_name = branch_inputs
            background = logits.shape[-1] - 1
            query_labels = torch.full((batch, num_queries), background, dtype=torch.long, device=device)
            query_labels[image_index, query_index] = labels
            query_labels = query_labels.reshape(-1)
            class_weighted_nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), query_labels,
                                                 weight=class_weights, reduction='none')
            denominator = class_weights[query_labels].sum()
            losses[ce_name] = cls_weight * (class_weighted_nll * query_weights).sum() / denominator
            matched_boxes = boxes[image_index, query_index].float()
            l1 = self.loss_bbox(matched_boxes, target_boxes, reduction_override='none')
            if l1.dim() == 0:  # mmdet's L1Loss returns a scalar 0 when there is no target
                l1 = matched_boxes * 0
            giou = self.loss_iou(bbox_cxcywh_to_xyxy(matched_boxes), bbox_cxcywh_to_xyxy(target_boxes),
                                 reduction_override='none')
            losses[f'loss_bbox_{branch}'] = (l1 * matched_weights[:, None]).sum() / num_matched
            losses[f'loss_giou_{branch}'] = (giou * matched_weights).sum() / num_matched
            if not with_logs:
                continue
            if branch != 'relation':
                matched_logits = logits[image_index, query_index].detach()
                logs[f'class_error_{branch}'] = (100 - accuracy(matched_logits, labels) if len(labels)
                                                 else logits.new_full((), 100.0))
                continue
            source_logs.update(self._split_by_source(targets, num_queries, image_index,
                                                     class_weighted_nll.detach(), class_weights[query_labels],
                                                     l1.detach(), giou.detach()))
        return losses, logs, source_logs

    def _num_matched(self, count, like):
        """The box terms' denominator: ``count`` matched pairs, averaged over the processes with
        ``'mean_over_processes'`` (a tensor; no read back to the host), at least 1."""
        if self.match_normaliser == 'per_micro_batch' or not (dist.is_available() and dist.is_initialized()):
            return float(max(count, 1))
        return reduce_mean(like.new_full((), float(count), dtype=torch.float32)).clamp(min=1)

    @staticmethod
    def _split_by_source(targets, num_queries, image_index, class_weighted_nll, label_weights, l1, giou):
        """Unweighted relation losses of each source's images (detached, for the log only; sums over masks
        rather than boolean indexing, which would read the mask back to the host)."""
        logs = {}
        sources = [t.source for t in targets]
        for source in sorted({s for s in sources if s is not None}):
            images = device_vector([s == source for s in sources], class_weighted_nll, torch.bool)
            queries = images.repeat_interleave(num_queries)
            matched = images[image_index]
            logs[f'{source}.relation_ce'] = (torch.where(queries, class_weighted_nll, 0).sum()
                                             / torch.where(queries, label_weights, 0).sum())
            count = matched.sum().clamp(min=1)
            logs[f'{source}.relation_l1'] = torch.where(matched[:, None], l1, 0).sum() / count
            logs[f'{source}.relation_giou'] = torch.where(matched, giou, 0).sum() / count
        return logs
