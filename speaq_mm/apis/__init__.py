"""High-level entry points built on the package: scene graph inference (``SceneGraphInferencer``, the JSON Lines
extraction of ``tools/extract_scene_graphs.py``) and the toy train-and-evaluate run."""
from .scene_graph_inferencer import SceneGraphInferencer

__all__ = ['SceneGraphInferencer']
