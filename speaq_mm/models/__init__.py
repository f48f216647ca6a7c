"""The SpeaQ scene graph model; importing registers every part into mmdet's registries."""
from .dense_heads import SpeaQRelationHead
from .detectors import SpeaQDetector
from .layers import SpeaQIterativeRelationDecoder
from .losses import SpeaQRelationCriterion
from .task_modules import (
                           PredicateGroupLayout,
                           SpeaQTripletMatcher,
                           SpeaQTripletPostProcessor,
                           build_predicate_group_layout,
)

__all__ = [
    'SpeaQDetector', 'SpeaQIterativeRelationDecoder', 'SpeaQRelationHead', 'SpeaQRelationCriterion',
    'SpeaQTripletMatcher', 'SpeaQTripletPostProcessor', 'PredicateGroupLayout', 'build_predicate_group_layout'
]
