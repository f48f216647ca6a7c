"""Import the COCO-style scene-graph layout of RelTR / EGTR (train.json, val.json, test.json and rel.json in one
folder) into the JSON scene-graph format, all three splits in one call, with a report of every drop by reason.

    python tools/dataset_converters/coco_rel_to_json.py ANN_DIR OUT.json [--strict] [--overwrite]

Class names come from the COCO ``categories``, predicate names from ``rel_categories`` (background entries
``N/A`` / ``__background__`` left out); relation indices are resolved to the image's annotations in file order
(crowd annotations removed first, as RelTR's loader does). The report is also written to
``OUT.report.json``. Then: ``json_to_vg.py OUT.json DATA_DIR --image-dir IMAGE_DIR`` (docs/own_data.md).
"""
import argparse

from speaq_mm.datasets.scene_graph_json import coco_rel_to_json
from speaq_mm.datasets.scene_graph_json.command_line import add_output_options, importer_parser, run_import


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = importer_parser(__doc__, ann_dir='folder with train.json, val.json, test.json and rel.json')
    return add_output_options(parser, strict=True).parse_args(argv)


def main(argv=None) -> dict:
    """Import; return the report."""
    args = parse_args(argv)
    return run_import(coco_rel_to_json, args, args.ann_dir, args.out_file, args.overwrite)


if __name__ == '__main__':
    main()
