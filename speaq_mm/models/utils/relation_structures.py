"""Containers the SpeaQ head, matcher, criterion and post-processor exchange, and training-target preparation.

Boxes inside the model are normalised (cx, cy, w, h) in the augmented, un-padded input frame (``img_shape``),
as in the reference; `docs/structures.md` describes the DetDataSample fields they are built from.
"""
from typing import List, NamedTuple, Optional

import torch
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh, get_box_tensor
from mmengine.logging import print_log
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


class RelationPredictions(NamedTuple):
    """Head outputs. Every field has a leading layer axis (L, B, Q, ...) or not (B, Q, ...) after `layer`.

    Subject and object rows are already repeated to one row per relation query (query r uses entity slot
    r // (N_rel / N_so)), so every field has N_rel rows.
    """
    subject_logits: Tensor  # (..., C + 1), no-object last
    subject_boxes: Tensor  # (..., 4) normalised cxcywh
    object_logits: Tensor
    object_boxes: Tensor
    predicate_logits: Tensor  # (..., P + 1), no-relation last
    relation_boxes: Tensor  # (..., 4) centre boxes, normalised cxcywh

    @property
    def num_layers(self):
        """Number of decoder layers stacked on the leading axis."""
        return self.predicate_logits.shape[0]

    def layer(self, index):
        """The predictions of one decoder layer, without the layer axis."""
        return RelationPredictions(*(field[index] for field in self))


class RelationTargets(NamedTuple):
    """Training targets of one image."""
    entity_boxes: Tensor  # (N, 4) normalised cxcywh
    entity_labels: Tensor  # (N,) int64
    pairs: Tensor  # (R, 2) int64 (subject, object) indices into the entities
    predicate_labels: Tensor  # (R,) int64
    relation_boxes: Tensor  # (R, 4) normalised cxcywh centre-to-centre boxes
    sample_weight: float
    source: Optional[str]
    # (R,) float loss weight of each relation (``gt_relations.weights``: pseudo-label confidences mapped by the
    # dataset's relation_weight); None: every relation weighs 1.
    relation_weights: Optional[Tensor] = None


class PaddedRelationTargets(NamedTuple):
    """Relation targets of a batch padded to the longest image, for batched cost computation."""
    subject_boxes: Tensor  # (B, T, 4) normalised cxcywh
    object_boxes: Tensor
    relation_boxes: Tensor
    subject_labels: Tensor  # (B, T)
    object_labels: Tensor
    predicate_labels: Tensor
    num_relations: List[int]  # valid columns per image
    valid: Tensor  # (B, T) bool


def check_query_counts(num_entity_queries, num_relation_queries):
    """Relation queries come in equal blocks per entity query slot: their count must be a multiple."""
    if num_relation_queries % num_entity_queries:
        raise ValueError(f'num_relation_queries ({num_relation_queries}) must be a multiple of '
                         f'num_entity_queries ({num_entity_queries})')


def device_vector(values, like, dtype=None):
    """A 1-d tensor of the Python numbers ``values`` on ``like``'s device (of ``dtype``, default ``like``'s),
    made by fills.

    ``torch.tensor(values, device=...)`` copies host memory to the device, which waits for the device to
    finish its queued work (a host round trip); a fill carries its value as a kernel argument and does not.
    Use it for the few per-image numbers (image sizes, sample weights) the model needs on the device.
    """
    vector = like.new_empty(len(values), dtype=dtype)
    for index, value in enumerate(values):
        vector[index] = value
    return vector


def read_sample_weight(data_sample):
    """The loss weight of a packed sample: its ``sample_weight`` metainfo (docs/multi_dataset.md, "Sample
    weights").

    The weight is set in one place, ``SGGConcatDataset(sample_weights=...)`` per source, and a dataset trained
    on its own gives its samples 1.0; the records carry it and ``SGGPackInputs`` keeps it in the metainfo. A
    sample without one did not come that way (a custom dataset or ``meta_keys``), and guessing a weight for it
    would train on another objective than the config says, so every reader (the model's targets here, the
    source-mix log) refuses it with this same error.

    Raises:
        KeyError: no ``sample_weight`` in the metainfo; names the sample and its source.
        ValueError: the weight is negative or not finite.
    """
    meta = data_sample.metainfo
    img_path = meta.get('img_path', meta.get('img_id', '<unknown image>'))
    if 'sample_weight' not in meta:
        raise KeyError(f'{img_path} (source {meta.get("source")!r}) has no sample_weight in its metainfo: datasets '
                       'give their records one (1.0, or the per-source value of SGGConcatDataset(sample_weights='
                       '...)) and SGGPackInputs must keep it in meta_keys (docs/multi_dataset.md)')
    sample_weight = float(meta['sample_weight'])
    if not (sample_weight >= 0 and sample_weight < float('inf')):
        raise ValueError(f'{img_path}: metainfo sample_weight must be a finite number >= 0, got {sample_weight}')
    return sample_weight


def relation_centre_boxes(subject_xyxy, object_xyxy, img_w, img_h, min_size):
    """The relation box target: the box spanned by the subject and object centres, normalised cxcywh.

    A box whose width or height is at most ``min_size`` pixels (subject and object centres aligned) is
    replaced by the subject box, as in the reference target preparation.
    """
    scale = device_vector([img_w, img_h], subject_xyxy)
    subject_centre = (subject_xyxy[:, :2] + subject_xyxy[:, 2:]) / 2
    object_centre = (object_xyxy[:, :2] + object_xyxy[:, 2:]) / 2
    size_px = (object_centre - subject_centre).abs()
    centre = torch.cat([(subject_centre + object_centre) / 2 / scale, size_px / scale], dim=1)
    degenerate = (size_px <= min_size).any(dim=1)
    subject_box = bbox_xyxy_to_cxcywh(subject_xyxy) / scale.repeat(2)
    return torch.where(degenerate[:, None], subject_box, centre)


def build_relation_targets(data_sample, min_box_size=1e-5):
    """`RelationTargets` of one packed training `DetDataSample`; see `build_batch_relation_targets`."""
    return build_batch_relation_targets([data_sample], min_box_size)[0]


def build_batch_relation_targets(data_samples, min_box_size=1e-5):
    """Turn packed training `DetDataSample`s (docs/structures.md) into `RelationTargets`, one per sample.

    Entity boxes that are not finite or whose width or height is at most ``min_box_size`` pixels cannot be
    matched or regressed safely (IoU and GIoU divide by their area), so the relations that use them are
    dropped here, before matching, with a warning naming the image; the reference's mapper removes such
    boxes and their relations the same way. The checks of all images read one small tensor back from the
    device (one host round trip per batch, not per image).

    Raises:
        KeyError: a sample has no ``gt_relations`` or no ``sample_weight`` (`read_sample_weight`).
        ValueError: a relation points outside ``gt_instances`` or a sample weight is negative or not finite.
    """
    images = []
    for data_sample in data_samples:
        img_path = data_sample.metainfo.get('img_path', data_sample.metainfo.get('img_id', '<unknown image>'))
        if 'gt_relations' not in data_sample:
            raise KeyError(f'{img_path}: the data sample has no gt_relations; pack training samples with '
                           'SGGPackInputs (docs/structures.md)')
        boxes = get_box_tensor(data_sample.gt_instances.bboxes).float()
        pairs = data_sample.gt_relations.pairs.long().reshape(-1, 2)
        if pairs.numel() and boxes.shape[0] == 0:
            raise ValueError(f'{img_path}: gt_relations.pairs holds indices outside [0, 0) of gt_instances')
        sample_weight = read_sample_weight(data_sample)
        relation_weights = data_sample.gt_relations.get('weights')
        if relation_weights is not None:
            relation_weights = relation_weights.float().reshape(-1)
            if relation_weights.shape[0] != pairs.shape[0]:
                raise ValueError(f'{img_path}: gt_relations.weights holds {relation_weights.shape[0]} weights for '
                                 f'{pairs.shape[0]} relations')
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        usable = torch.isfinite(boxes).all(dim=1) & (widths > min_box_size) & (heights > min_box_size)
        images.append((data_sample, img_path, boxes, pairs, usable, sample_weight, relation_weights))

    # Per image: relations pointing outside gt_instances, unusable boxes, relations using one, relation weights
    # that are negative or not finite; one read.
    checks = []
    for _, _, boxes, pairs, usable, _, relation_weights in images:
        if pairs.numel():
            outside = (pairs < 0).any() | (pairs >= boxes.shape[0]).any()
            dropped = (~usable[pairs.clamp(0, boxes.shape[0] - 1)].all(dim=1)).sum()
        else:
            outside = dropped = usable.new_zeros((), dtype=torch.long)
        bad_weights = (usable.new_zeros((), dtype=torch.long) if relation_weights is None else
                       (~(torch.isfinite(relation_weights) & (relation_weights >= 0))).sum())
        checks.append(torch.stack([outside.long(), (~usable).sum(), dropped.long(), bad_weights.long()]))
    checks = torch.stack(checks).tolist() if checks else []

    targets = []
    for (data_sample, img_path, boxes, pairs, usable, sample_weight, relation_weights), check in zip(images, checks):
        outside, num_unusable, num_dropped, num_bad_weights = check
        if outside:
            raise ValueError(f'{img_path}: gt_relations.pairs holds indices outside [0, {boxes.shape[0]}) of '
                             'gt_instances')
        if num_bad_weights:
            raise ValueError(f'{img_path}: gt_relations.weights must hold finite weights >= 0; '
                             f'{num_bad_weights} do not')
        predicates = data_sample.gt_relations.labels.long().reshape(-1)
        if num_dropped:
            print_log(f'{img_path}: dropped {num_dropped} relation(s) whose subject or object box is empty or '
                      f'not finite ({num_unusable} such box(es))', logger='current', level=30)
            keep = usable[pairs].all(dim=1)
            pairs, predicates = pairs[keep], predicates[keep]
            relation_weights = None if relation_weights is None else relation_weights[keep]
        img_h, img_w = data_sample.metainfo['img_shape'][:2]
        unit_box = device_vector([0., 0., 1., 1.], boxes)
        safe_boxes = torch.where(usable[:, None], boxes, unit_box)
        scale = device_vector([img_w, img_h, img_w, img_h], boxes)
        relation_boxes = relation_centre_boxes(
            safe_boxes[pairs[:, 0]], safe_boxes[pairs[:, 1]], img_w, img_h, min_box_size)
        targets.append(RelationTargets(
            entity_boxes=bbox_xyxy_to_cxcywh(safe_boxes / scale),
            entity_labels=data_sample.gt_instances.labels.long(),
            pairs=pairs,
            predicate_labels=predicates,
            relation_boxes=relation_boxes,
            sample_weight=sample_weight,
            source=data_sample.metainfo.get('source'),
            relation_weights=relation_weights))
    return targets


def pad_relation_targets(targets):
    """Stack the per-image relation targets into `PaddedRelationTargets` (padding boxes are valid unit
    boxes so that costs stay finite; padded columns are never assigned)."""
    num_relations = [int(t.pairs.shape[0]) for t in targets]
    valid = _pad_rows([torch.ones(n, dtype=torch.bool, device=t.pairs.device)
                       for n, t in zip(num_relations, targets)])
    filler = device_vector([0.5, 0.5, 1.0, 1.0], targets[0].entity_boxes)

    def boxes(per_image):
        return torch.where(valid[..., None], _pad_rows(per_image), filler)

    subjects, objects = [t.pairs[:, 0].long() for t in targets], [t.pairs[:, 1].long() for t in targets]
    return PaddedRelationTargets(
        subject_boxes=boxes([t.entity_boxes[i] for t, i in zip(targets, subjects)]),
        object_boxes=boxes([t.entity_boxes[i] for t, i in zip(targets, objects)]),
        relation_boxes=boxes([t.relation_boxes.reshape(-1, 4) for t in targets]),
        subject_labels=_pad_rows([t.entity_labels[i].long() for t, i in zip(targets, subjects)]),
        object_labels=_pad_rows([t.entity_labels[i].long() for t, i in zip(targets, objects)]),
        predicate_labels=_pad_rows([t.predicate_labels.long().reshape(-1) for t in targets]),
        num_relations=num_relations, valid=valid)


def _pad_rows(per_image):
    """``pad_sequence`` of the images' rows (zeros after each image's own), at least one column wide."""
    padded = pad_sequence(per_image, batch_first=True)
    if padded.shape[1] == 0:
        padded = padded.new_zeros(padded.shape[0], 1, *padded.shape[2:])
    return padded
