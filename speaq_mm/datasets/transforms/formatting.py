"""Packing a scene-graph sample into mmdet's ``DetDataSample`` (field layout: docs/structures.md)."""
import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS
from mmengine.structures import InstanceData

from .scene_graph import current_relation_rows

SGG_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
                 'source', 'sample_weight')


@TRANSFORMS.register_module()
class SGGPackInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` plus ``data_sample.gt_relations``.

    ``gt_relations`` is an ``InstanceData`` with ``pairs`` (R, 2) int64 (subject, object) indices into
    ``gt_instances`` and ``labels`` (R,) int64 0-based predicates, plus ``weights`` (R,) float32 when the
    results hold ``gt_relation_weights`` (per-relation loss weights). Relations whose subject or object was
    dropped by the pipeline, or is an ignored instance, are left out. ``flip``/``flip_direction`` default to
    False/None when the pipeline has no flip, so every sample carries the metainfo of docs/structures.md.

    Args:
        meta_keys (Sequence[str]): metainfo keys copied from the results (``source`` and ``sample_weight``
            come from the dataset record).
    """

    def __init__(self, meta_keys=SGG_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the image, the instances and the relations."""
        results.setdefault('flip', False)
        results.setdefault('flip_direction', None)
        relations = None
        if 'gt_relations' in results:
            keep = None if 'gt_ignore_flags' not in results else ~np.asarray(results['gt_ignore_flags'], bool)
            relations, kept_rows = current_relation_rows(results, keep)
        packed = super().transform(results)
        if relations is not None:
            fields = dict(pairs=torch.from_numpy(relations[:, :2].copy()),
                          labels=torch.from_numpy(relations[:, 2].copy()))
            if results.get('gt_relation_weights') is not None:
                fields['weights'] = torch.from_numpy(np.asarray(results['gt_relation_weights'], np.float32)[kept_rows])
            packed['data_samples'].gt_relations = InstanceData(**fields)
        return packed
