"""The JSON scene-graph format (docs/tools.md): validation, and conversion to and from the VG150 files."""
from .conversion import json_to_vg, vg_to_json
from .validation import (
    BBOX_FORMATS,
    DROP_REASONS,
    IMAGE_MODES,
    SPLIT_CODES,
    ConversionReport,
    jsonl_meta_path,
    read_scene_graph_json,
)

__all__ = ['json_to_vg', 'vg_to_json', 'BBOX_FORMATS', 'DROP_REASONS', 'IMAGE_MODES', 'SPLIT_CODES',
           'ConversionReport', 'jsonl_meta_path', 'read_scene_graph_json']
