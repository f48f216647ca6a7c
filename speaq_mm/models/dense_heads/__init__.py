"""Prediction heads."""
from .speaq_relation_head import SpeaQRelationHead

__all__ = ['SpeaQRelationHead']
