"""Relation-aware pipeline steps around mmdet's detection transforms.

Invariant kept by every step (docs/dataset_format.md, "Pipeline"): ``gt_relations`` is an int64 (R, 3)
array of (subject, object, predicate) whose subject/object are indices into the image's *original* instance
list, and ``gt_instances_ids`` holds, for every box still present, its original index. Transforms that drop
boxes only have to filter ``gt_instances_ids`` along with the boxes (mmdet's ``RandomCrop`` already does);
``SGGPackInputs`` turns the relations into indices of the boxes that are left and drops those that lost a box.
``gt_relation_weights`` (float32 (R,), present when the record has ``relation_weights``: a pseudo-labelled
source with a score-to-weight map) is row-aligned with ``gt_relations``: every step that drops or reorders
relations takes the same rows of both.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import get_box_tensor


def relations_for_current_boxes(results: dict, keep: Optional[np.ndarray] = None) -> np.ndarray:
    """``gt_relations`` re-indexed to the boxes currently in ``results``.

    Args:
        results (dict): pipeline results holding ``gt_relations`` and ``gt_instances_ids``.
        keep (np.ndarray, optional): bool mask over the current boxes; relations touching a box outside it
            are dropped too and indices count only the kept boxes.

    Returns:
        np.ndarray: int64 (R', 3) relations whose subject and object are both still present.
    """
    return current_relation_rows(results, keep)[0]


def current_relation_rows(results: dict, keep: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`relations_for_current_boxes` and the bool mask over ``gt_relations`` of the rows it kept
    (to select every array aligned with the relations, such as ``gt_relation_weights``)."""
    ids = np.asarray(results['gt_instances_ids'], dtype=np.int64)
    relations = results['gt_relations']
    num_boxes = len(results['gt_bboxes'])
    if len(ids) != num_boxes:
        raise RuntimeError(
            f'{results.get("img_path")}: {num_boxes} boxes but {len(ids)} gt_instances_ids; a transform '
            'dropped boxes without updating gt_instances_ids, so relations cannot be remapped. Use '
            'transforms that keep them in step (see docs/dataset_format.md, "Pipeline").')
    if keep is not None:
        ids = ids[keep]
    size = int(max(ids.max(initial=-1), relations[:, :2].max(initial=-1))) + 1
    position = np.full(size, -1, dtype=np.int64)
    position[ids] = np.arange(len(ids))
    pairs = position[relations[:, :2]]
    present = (pairs >= 0).all(axis=1)
    return np.column_stack([pairs[present], relations[present, 2]]).astype(np.int64), present


@TRANSFORMS.register_module()
class SGGLoadAnnotations(LoadAnnotations):
    """mmdet's ``LoadAnnotations`` (boxes and labels) plus the scene graph.

    Adds ``gt_relations`` (int64 (R, 3) from the record's ``relations``) and ``gt_instances_ids``
    (``arange(N)``), after checking that every relation refers to an existing instance; and
    ``gt_relation_weights`` (float32 (R,)) when the record has ``relation_weights``.

    Args:
        **kwargs: passed to mmdet's ``LoadAnnotations`` (``with_bbox`` and ``with_label`` default to True).
    """

    def __init__(self, with_bbox: bool = True, with_label: bool = True, **kwargs) -> None:
        super().__init__(with_bbox=with_bbox, with_label=with_label, **kwargs)

    def transform(self, results: dict) -> dict:
        """Load boxes, labels and relations."""
        results = super().transform(results)
        num_instances = len(results.get('instances', []))
        relations = np.asarray(results.get('relations', np.zeros((0, 3))), dtype=np.int64)
        if relations.ndim != 2 or relations.shape[1] != 3:
            raise ValueError(
                f'{results.get("img_path")}: "relations" must have shape (R, 3), got {relations.shape}')
        bad = (relations[:, :2] < 0).any(axis=1) | (relations[:, :2] >= num_instances).any(axis=1) | \
            (relations[:, 2] < 0)
        if bad.any():
            raise ValueError(f'{results.get("img_path")}: relation {relations[bad][0].tolist()} refers to an '
                             f'instance outside 0..{num_instances - 1} or has a negative predicate')
        results['gt_relations'] = relations
        results['gt_instances_ids'] = np.arange(num_instances, dtype=np.int64)
        if results.get('relation_weights') is not None:
            weights = np.asarray(results['relation_weights'], dtype=np.float32)
            if weights.shape != (len(relations), ) or not (np.isfinite(weights) & (weights >= 0)).all():
                raise ValueError(f'{results.get("img_path")}: "relation_weights" must hold one finite weight >= 0 '
                                 f'per relation ({len(relations)}), got {weights.tolist()}')
            results['gt_relation_weights'] = weights
        return results


@TRANSFORMS.register_module()
class SGGFilterEmptyInstances(BaseTransform):
    """Remove boxes whose width or height is at most ``min_size`` pixels (e.g. cropped or clipped away).

    Their labels, ignore flags and ``gt_instances_ids`` go with them, so their relations disappear when the
    sample is packed. The reference mapper does the same with detectron2's ``filter_empty_instances``.

    Args:
        min_size (float): boxes with width or height <= min_size are removed.
    """

    def __init__(self, min_size: float = 1e-5) -> None:
        self.min_size = min_size

    def transform(self, results: dict) -> dict:
        """Drop the empty boxes and everything indexed by box."""
        boxes = np.asarray(get_box_tensor(results['gt_bboxes']), dtype=np.float64).reshape(-1, 4)
        keep = ((boxes[:, 2] - boxes[:, 0]) > self.min_size) & ((boxes[:, 3] - boxes[:, 1]) > self.min_size)
        if keep.all():
            return results
        for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_instances_ids'):
            if results.get(key) is not None:
                results[key] = results[key][keep]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(min_size={self.min_size})'


@TRANSFORMS.register_module()
class SGGFilterDuplicateRelations(BaseTransform):
    """Train-time: keep one randomly chosen predicate per (subject, object) pair, drawn anew at every call.

    Pairs keep the order of their first occurrence; every relation of a pair (duplicate triplets included) is
    equally likely to be kept, as in the reference mapper; ``gt_relation_weights`` keeps the kept rows. Test
    pipelines must not use it: evaluation keeps every ground-truth relation.
    """

    def transform(self, results: dict) -> dict:
        """Sample one relation per pair."""
        relations = results['gt_relations']
        if len(relations) < 2:
            return results
        width = int(relations[:, :2].max()) + 1
        keys = relations[:, 0] * width + relations[:, 1]
        _, first, group = np.unique(keys, return_index=True, return_inverse=True)
        # One uniform draw per relation; the smallest draw of each pair wins.
        order = np.lexsort((np.random.random(len(relations)), group))
        winners = order[np.concatenate([[0], np.flatnonzero(np.diff(group[order])) + 1])]
        rows = winners[np.argsort(first)]
        results['gt_relations'] = relations[rows]
        if results.get('gt_relation_weights') is not None:
            results['gt_relation_weights'] = results['gt_relation_weights'][rows]
        return results


@TRANSFORMS.register_module()
class SGGSwapPredicatesOnFlip(BaseTransform):
    """Swap direction-dependent predicates of a flipped image (e.g. "left of" <-> "right of").

    Put it right after ``RandomFlip``. VG150's predicates survive a horizontal flip, but geometric
    vocabularies such as the toy scenes' do not.

    Args:
        predicates (Sequence[str]): the predicate names, index = 0-based label (the dicts json order).
        horizontal (Sequence[tuple]): name pairs swapped by a horizontal flip.
        vertical (Sequence[tuple]): name pairs swapped by a vertical flip (a diagonal flip swaps both).
    """

    def __init__(self, predicates: Sequence[str], horizontal: Sequence[Tuple[str, str]] = (),
                 vertical: Sequence[Tuple[str, str]] = ()) -> None:
        self.predicates = tuple(predicates)
        self.maps = {}
        for direction, pairs in (('horizontal', horizontal), ('vertical', vertical)):
            mapping = np.arange(len(self.predicates))
            for a, b in pairs:
                unknown = [name for name in (a, b) if name not in self.predicates]
                if unknown:
                    raise ValueError(
                        f'SGGSwapPredicatesOnFlip: {unknown} are not in predicates {self.predicates}')
                ia, ib = self.predicates.index(a), self.predicates.index(b)
                mapping[ia], mapping[ib] = ib, ia
            self.maps[direction] = mapping
        self.maps['diagonal'] = self.maps['vertical'][self.maps['horizontal']]

    def transform(self, results: dict) -> dict:
        """Map the predicates through the swap of the applied flip direction."""
        if results.get('flip') and len(results['gt_relations']):
            relations = results['gt_relations'].copy()
            relations[:, 2] = self.maps[results['flip_direction']][relations[:, 2]]
            results['gt_relations'] = relations
        return results
