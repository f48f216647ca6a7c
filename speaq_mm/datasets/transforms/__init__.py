"""Relation-aware pipeline steps; each registers into mmdet's TRANSFORMS on import."""
from .formatting import SGG_META_KEYS, SGGPackInputs
from .loading import SGGLoadImageFromFile, UnreadableImageError
from .scene_graph import (
    SGGFilterDuplicateRelations,
    SGGFilterEmptyInstances,
    SGGLoadAnnotations,
    SGGSwapPredicatesOnFlip,
    current_relation_rows,
    relations_for_current_boxes,
)

__all__ = [
    'SGG_META_KEYS', 'SGGPackInputs', 'SGGLoadImageFromFile', 'UnreadableImageError', 'SGGFilterDuplicateRelations',
    'SGGFilterEmptyInstances', 'SGGLoadAnnotations', 'SGGSwapPredicatesOnFlip', 'current_relation_rows',
    'relations_for_current_boxes'
]
