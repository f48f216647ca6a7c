"""Transformer layers."""
from .iterative_relation_decoder import SpeaQIterativeRelationDecoder

__all__ = ['SpeaQIterativeRelationDecoder']
