"""Relation-aware pipeline steps; each registers into mmdet's TRANSFORMS on import."""
from .formatting import SGG_META_KEYS, PackSGGInputs
from .scene_graph import (
    FilterDuplicateRelations,
    FilterEmptySGGInstances,
    LoadSGGAnnotations,
    SwapPredicatesOnFlip,
    relations_for_current_boxes,
)

__all__ = [
    'SGG_META_KEYS', 'PackSGGInputs', 'FilterDuplicateRelations', 'FilterEmptySGGInstances',
    'LoadSGGAnnotations', 'SwapPredicatesOnFlip', 'relations_for_current_boxes'
]
