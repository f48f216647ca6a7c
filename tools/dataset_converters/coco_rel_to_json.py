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
from speaq_mm.datasets.scene_graph_json.importing import print_import_result


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_dir', help='folder with train.json, val.json, test.json and rel.json')
    parser.add_argument('out_file', help='the JSON scene-graph file to write')
    parser.add_argument('--strict', action='store_true', help='exit with status 1 when anything was dropped')
    parser.add_argument('--overwrite', action='store_true', help='replace OUT.json and its report if they exist')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Import; return the report."""
    args = parse_args(argv)
    result = coco_rel_to_json(args.ann_dir, args.out_file, args.overwrite)
    print_import_result(result, args.strict)
    return result


if __name__ == '__main__':
    main()
