"""Hungarian matching of relation queries to ground-truth triplets, with SpeaQ's groups and one-to-many.

mmdet's ``HungarianAssigner`` matches one set of boxes to one set of GT instances; a triplet query carries
three boxes and three classifications, may be matched to several copies of one GT (quality-aware
one-to-many), is masked by predicate group, and can share one matching across decoder layers. None of this
fits its interface, so the matcher is written here in the compact style of DETR's: every cost and quality
term is computed batched on the device, and only ``linear_sum_assignment`` runs per image on the CPU.

Each host round trip stalls a GPU (docs/benchmarks.md, "Host round trips"), so a call makes two whatever the
batch size and the number of layers: the costs and GT copy counts of every layer go to the host in one
transfer, and the assignments of every layer and image come back in one.
"""
from typing import List, Tuple

import numpy as np
import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.logging import print_log
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torch.profiler import record_function

from ..utils.box_overlaps import bbox_overlaps
from ..utils.relation_structures import (
    PaddedRelationTargets,
    RelationPredictions,
    pad_relation_targets,
)
from .predicate_groups import (
    REFERENCE_PREDICATE_COUNTS,
    build_predicate_group_layout,
    validate_predicate_counts,
)

# Costs replaced for non-finite predictions: the assignment must still run so that the loss (NaN as well)
# reaches the non-finite guard hook, which skips the step and names the images.
_NON_FINITE_COST = 1e8

QUALITY_COMBINATIONS = {
    'min': torch.minimum,
    'max': torch.maximum,
    'gm': lambda a, b: (a * b).sqrt(),
    'am': lambda a, b: (a + b) / 2,
}


def _gather_columns(probabilities, labels):
    """probabilities (B, Q, K), labels (B, T) -> (B, Q, T) probabilities of each target's class."""
    return probabilities.gather(2, labels[:, None, :].expand(-1, probabilities.shape[1], -1))


@TASK_UTILS.register_module()
class SpeaQTripletMatcher:
    """Assign relation queries to GT triplets (docs/model.md, "Matcher").

    Args:
        num_predicates (int): P, predicates without the no-relation class.
        num_entity_queries (int): N_so subject/object query slots.
        num_relation_queries (int): N_rel relation queries, a multiple of N_so (checked by the detector).
        class_weight (float): weight of -p(class) summed over predicate, subject and object.
        bbox_weight (float): weight of the L1 distance of the relation, subject and object boxes.
        giou_weight (float): weight of -GIoU of the three boxes.
        one_to_many (str): ``'static'``: every GT repeated ``k`` times; ``'dynamic'``: GT t repeated
            ``max(1, trunc(sum of its k best qualities))`` times.
        k (int): copies per GT (static) or candidates summed (dynamic); static with k=1 is one-to-one.
        quality_combine (str): how subject and object IoU form the quality: ``min``, ``max``, ``gm``
            (geometric mean) or ``am`` (arithmetic mean).
        predicate_score_weight (float | None): add this weight times p(GT predicate) to the quality
            (``None`` disables it; the SpeaQ recipe uses -0.5).
        use_group_mask (bool): add ``group_mask_cost`` to the cost of a query and a GT of different
            predicate groups, and zero the IoU part of their quality.
        num_groups (int): predicate groups G.
        group_counts (str): ``'train_statistics'`` builds the groups from the train split's
            ``fg_rel_count`` (set by `set_predicate_counts`); ``'reference'`` uses the SpeaQ repository's
            hard-coded VG table (50 predicates only).
        group_mask_cost (float): the mask penalty; large but finite, so a group with more GT copies than
            queries overflows into other groups instead of failing.
        match_independent (bool): match every decoder layer on its own outputs; otherwise one matching on
            the cost summed over all layers serves all of them (IterativeSG).
    """

    def __init__(self,
                 num_predicates,
                 num_entity_queries,
                 num_relation_queries,
                 class_weight=1.0,
                 bbox_weight=5.0,
                 giou_weight=2.0,
                 one_to_many='static',
                 k=1,
                 quality_combine='min',
                 predicate_score_weight=None,
                 use_group_mask=False,
                 num_groups=5,
                 group_counts='train_statistics',
                 group_mask_cost=1e6,
                 match_independent=False):
        if one_to_many not in ('static', 'dynamic'):
            raise ValueError(f"one_to_many must be 'static' or 'dynamic', got {one_to_many!r}")
        if quality_combine not in QUALITY_COMBINATIONS:
            raise ValueError(f'quality_combine must be one of {sorted(QUALITY_COMBINATIONS)}, got '
                             f'{quality_combine!r}')
        if group_counts not in ('train_statistics', 'reference'):
            raise ValueError(f"group_counts must be 'train_statistics' or 'reference', got {group_counts!r}")
        if k < 1:
            raise ValueError(f'k must be >= 1, got {k}')
        self.num_predicates = num_predicates
        self.num_entity_queries = num_entity_queries
        self.num_relation_queries = num_relation_queries
        self.class_weight = class_weight
        self.bbox_weight = bbox_weight
        self.giou_weight = giou_weight
        self.one_to_many = one_to_many
        self.k = k
        self.quality_combine = quality_combine
        self.predicate_score_weight = predicate_score_weight
        self.use_group_mask = use_group_mask
        self.num_groups = num_groups
        self.group_counts = group_counts
        self.group_mask_cost = group_mask_cost
        self.match_independent = match_independent
        self.group_layout = None
        self._mismatch_on_device = {}
        if group_counts == 'reference':
            counts = validate_predicate_counts(REFERENCE_PREDICATE_COUNTS, num_predicates,
                                               "group_counts='reference' (the SpeaQ VG table)")
            self._set_layout(counts)

    @property
    def uses_predicate_counts(self):
        """Whether matching depends on the train split's predicate counts (`set_predicate_counts`)."""
        return self.use_group_mask and self.group_counts == 'train_statistics'

    def set_predicate_counts(self, counts):
        """Build the group layout from the train split's predicate counts, already checked by
        ``validate_predicate_counts`` (ignored with the reference table; the head does both,
        `SpeaQRelationHead.set_train_statistics`)."""
        if self.group_counts == 'train_statistics':
            self._set_layout(counts)

    def _set_layout(self, counts):
        layout = build_predicate_group_layout(counts, self.num_groups, self.num_entity_queries,
                                              self.num_relation_queries)
        self.group_layout = layout
        self._mismatch = layout.mismatch_table()
        self._mismatch_on_device = {}
        members = [torch.nonzero(layout.predicate_group == g).flatten().tolist() for g in range(self.num_groups)]
        print_log(f'SpeaQTripletMatcher: predicate groups {members} (0-based predicates) get relation queries '
                  f'{list(layout.relation_query_ranges)}', logger='current')

    @torch.no_grad()
    def __call__(self, predictions: RelationPredictions, targets) -> Tuple[List[list], Tensor]:
        """Match every decoder layer.

        Args:
            predictions (RelationPredictions): all layers, fields (L, B, Q, ...).
            targets (list[RelationTargets]): one per image.

        Returns:
            tuple: ``matches[l][b] = (query_indices, gt_relation_indices)`` (int64 tensors on the
            predictions' device; a GT index appears once per copy it received), and the mean number of
            copies per GT relation for each layer, shape (L,), 0 for a batch without relations.
        """
        padded = pad_relation_targets(targets)
        num_layers = predictions.num_layers
        if self.match_independent:
            layers = [predictions.layer(index) for index in range(num_layers)]
            costs, copies = zip(*(self._costs_and_copies(layer, [layer], padded) for layer in layers))
        else:
            # One matching for all layers; the dynamic k (undefined in the reference, which crashes here)
            # uses the final layer, the one that makes the predictions.
            layers = [predictions.layer(index) for index in range(num_layers)]
            costs, copies = zip(self._costs_and_copies(layers[-1], layers, padded))
        copies = torch.stack(copies)  # (M, B, T), M matchings
        valid = padded.valid.expand_as(copies)
        num_valid = sum(padded.num_relations)
        mean_k = copies.masked_fill(~valid, 0).sum(dim=(1, 2)).float() / max(num_valid, 1)
        with record_function('speaq.matcher_assignment'):
            matches = self._assign(torch.stack(costs), copies, padded.num_relations, copies.device)
        if not self.match_independent:
            return matches * num_layers, mean_k.repeat(num_layers)
        return matches, mean_k

    def _costs_and_copies(self, quality_layer, cost_layers, padded: PaddedRelationTargets):
        """The cost (B, Q, T) of one matching, summed over ``cost_layers``, and the copies (B, T) of each GT."""
        with record_function('speaq.matcher_costs'):
            cost = sum(self.triplet_cost(layer, padded) for layer in cost_layers)
            mismatch = self._target_mismatch(padded) if self.use_group_mask else None
            if mismatch is not None:
                cost = cost + mismatch * self.group_mask_cost
            cost = torch.nan_to_num(cost, nan=_NON_FINITE_COST, posinf=_NON_FINITE_COST,
                                    neginf=-_NON_FINITE_COST)
        with record_function('speaq.matcher_quality'):
            if self.one_to_many == 'dynamic':
                copies = self.dynamic_k(quality_layer, padded, mismatch)
            else:
                copies = torch.full_like(padded.predicate_labels, self.k)
        return cost, copies

    def _target_mismatch(self, padded):
        """(B, Q, T) bool: query and GT predicate in different groups."""
        device = padded.predicate_labels.device
        if device not in self._mismatch_on_device:  # copied to the device once, not at every step
            self._mismatch_on_device[device] = self._mismatch.to(device)
        return self._mismatch_on_device[device][:, padded.predicate_labels].permute(1, 0, 2)

    def triplet_cost(self, layer: RelationPredictions, padded: PaddedRelationTargets):
        """The reference triplet cost (B, Q, T) of one layer: weighted L1, -probability and -GIoU summed
        over the relation, subject and object branches."""
        cost = 0
        branches = (
            (layer.predicate_logits, layer.relation_boxes, padded.predicate_labels, padded.relation_boxes),
            (layer.subject_logits, layer.subject_boxes, padded.subject_labels, padded.subject_boxes),
            (layer.object_logits, layer.object_boxes, padded.object_labels, padded.object_boxes),
        )
        for logits, boxes, target_labels, target_boxes in branches:
            boxes = boxes.float()
            probabilities = logits.float().softmax(-1)
            giou = bbox_overlaps(bbox_cxcywh_to_xyxy(boxes), bbox_cxcywh_to_xyxy(target_boxes), mode='giou')
            cost = cost + (self.bbox_weight * torch.cdist(boxes, target_boxes, p=1)
                           - self.class_weight * _gather_columns(probabilities, target_labels)
                           - self.giou_weight * giou)
        return cost

    def dynamic_k(self, layer: RelationPredictions, padded: PaddedRelationTargets, mismatch=None):
        """Copies per GT (B, T): max(1, trunc(sum of the k best qualities over the image's queries)).

        quality = combine(IoU_subject, IoU_object) (IoU zeroed across groups when ``mismatch`` is given)
        + predicate_score_weight * p(GT predicate).
        """
        subject_iou = bbox_overlaps(bbox_cxcywh_to_xyxy(layer.subject_boxes.float()),
                                    bbox_cxcywh_to_xyxy(padded.subject_boxes))
        object_iou = bbox_overlaps(bbox_cxcywh_to_xyxy(layer.object_boxes.float()),
                                   bbox_cxcywh_to_xyxy(padded.object_boxes))
        if mismatch is not None:
            subject_iou = subject_iou.masked_fill(mismatch, 0)
            object_iou = object_iou.masked_fill(mismatch, 0)
        quality = QUALITY_COMBINATIONS[self.quality_combine](subject_iou, object_iou)
        if self.predicate_score_weight is not None:
            probabilities = layer.predicate_logits.float().softmax(-1)
            quality = quality + self.predicate_score_weight * _gather_columns(
                probabilities, padded.predicate_labels)
        quality = torch.nan_to_num(quality, nan=0.0)
        best = quality.topk(min(self.k, quality.shape[1]), dim=1).values.sum(dim=1)
        # .long() truncates toward zero like the reference's .int()
        return best.long().clamp(min=1)

    @staticmethod
    def _assign(costs, copies, num_relations, device):
        """Hungarian assignment of M matchings of B images on the host.

        Args:
            costs (Tensor): (M, B, Q, T) costs, on the device.
            copies (Tensor): (M, B, T) copies of each GT, on the device.
            num_relations (list[int]): valid GT columns per image.
            device: where the returned indices go.

        Returns:
            list[list[tuple[Tensor, Tensor]]]: ``[m][b] = (query indices, GT indices)``, int64 on ``device``.
        """
        # One transfer to the host: the copies ride along as an extra row of the costs (small integers,
        # exact in float32), so that one .cpu() call brings both.
        packed = torch.cat([costs, copies[:, :, None, :].to(costs.dtype)], dim=2).cpu().numpy()
        costs, copies = packed[:, :, :-1], packed[:, :, -1].astype(np.int64)
        rows, columns, sizes = [], [], []
        for matching in range(costs.shape[0]):
            for b, count in enumerate(num_relations):
                gt_columns = np.repeat(np.arange(count), copies[matching, b, :count])
                picked_rows, picked = linear_sum_assignment(costs[matching, b][:, gt_columns])
                rows.append(picked_rows)
                columns.append(gt_columns[picked])
                sizes.append(len(picked_rows))
        # One transfer back: every (query, GT) index of every matching and image, split on the device.
        indices = torch.as_tensor(np.concatenate([np.concatenate(rows + [np.zeros(0, np.int64)]),
                                                  np.concatenate(columns + [np.zeros(0, np.int64)])]),
                                  dtype=torch.long, device=device)
        query_indices, gt_indices = indices.view(2, -1).unbind()
        pairs = list(zip(query_indices.split(sizes), gt_indices.split(sizes)))
        return [pairs[m * len(num_relations):(m + 1) * len(num_relations)] for m in range(costs.shape[0])]
