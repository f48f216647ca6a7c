"""Scene graph drawing: ``SGGLocalVisualizer`` registers into mmdet's ``VISUALIZERS`` on import."""
from .scene_graph_visualizer import (
    GUTTER_COLOUR,
    SceneGraphDrawing,
    SGGLocalVisualizer,
    graph_from_data_sample,
    select_triplets,
)

__all__ = ['GUTTER_COLOUR', 'SceneGraphDrawing', 'SGGLocalVisualizer', 'graph_from_data_sample',
           'select_triplets']
