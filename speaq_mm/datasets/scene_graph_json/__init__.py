"""The JSON scene-graph format (docs/tools.md): validation, conversion to and from the VG150 files, and importers
from (and an exporter to) the layouts of other SGG toolkits (docs/own_data.md)."""
from .coco_rel import coco_rel_to_json, json_to_coco_rel
from .conversion import json_to_vg, vg_to_json
from .gqa import gqa_to_json
from .importing import IMPORT_DROP_REASONS
from .psg import psg_to_json
from .validation import (
    BBOX_FORMATS,
    DROP_REASONS,
    IMAGE_MODES,
    SPLIT_CODES,
    ConversionReport,
    jsonl_meta_path,
    read_scene_graph_json,
)

__all__ = ['json_to_vg', 'vg_to_json', 'coco_rel_to_json', 'json_to_coco_rel', 'psg_to_json', 'gqa_to_json',
           'BBOX_FORMATS', 'DROP_REASONS', 'IMPORT_DROP_REASONS', 'IMAGE_MODES', 'SPLIT_CODES', 'ConversionReport',
           'jsonl_meta_path', 'read_scene_graph_json']
