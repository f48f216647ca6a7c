"""Losses."""
from .giou_loss import SGGGIoULoss
from .relation_criterion import SpeaQRelationCriterion, predicate_class_weights

__all__ = ['SGGGIoULoss', 'SpeaQRelationCriterion', 'predicate_class_weights']
