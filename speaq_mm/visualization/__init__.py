"""Scene graph drawing: ``SceneGraphLocalVisualizer`` registers into mmdet's ``VISUALIZERS`` on import."""
from .scene_graph_visualizer import (
    GUTTER_COLOUR,
    SceneGraphDrawing,
    SceneGraphLocalVisualizer,
    graph_from_data_sample,
    select_triplets,
)

__all__ = ['GUTTER_COLOUR', 'SceneGraphDrawing', 'SceneGraphLocalVisualizer', 'graph_from_data_sample',
           'select_triplets']
