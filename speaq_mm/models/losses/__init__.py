"""Losses."""
from .relation_criterion import SpeaQRelationCriterion, predicate_class_weights

__all__ = ['SpeaQRelationCriterion', 'predicate_class_weights']
