"""Structures shared by the head, matcher, criterion and post-processor."""
from .relation_structures import (
                                  PaddedRelationTargets,
                                  RelationPredictions,
                                  RelationTargets,
                                  build_batch_relation_targets,
                                  build_relation_targets,
                                  device_vector,
                                  pad_relation_targets,
                                  read_sample_weight,
                                  relation_centre_boxes,
)

__all__ = [
    'PaddedRelationTargets', 'RelationPredictions', 'RelationTargets', 'build_batch_relation_targets',
    'build_relation_targets', 'device_vector', 'pad_relation_targets', 'read_sample_weight', 'relation_centre_boxes'
]
