"""Matching, predicate groups and post-processing."""
from .predicate_groups import (
                               REFERENCE_PREDICATE_COUNTS,
                               PredicateGroupLayout,
                               build_predicate_group_layout,
                               validate_predicate_counts,
)
from .triplet_matcher import SpeaQTripletMatcher
from .triplet_post_processor import SpeaQTripletPostProcessor

__all__ = [
    'REFERENCE_PREDICATE_COUNTS', 'PredicateGroupLayout', 'build_predicate_group_layout',
    'validate_predicate_counts', 'SpeaQTripletMatcher', 'SpeaQTripletPostProcessor'
]
