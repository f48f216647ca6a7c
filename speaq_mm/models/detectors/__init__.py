"""Detectors."""
from .speaq_detector import SpeaQDetector

__all__ = ['SpeaQDetector']
