"""Import the PSG json of OpenPSG (boxes of things and stuff, and their relations; not the masks) into the JSON
scene-graph format, with a report of every drop by reason.

    python tools/dataset_converters/psg_to_json.py psg.json OUT.json [--keep-empty] [--strict] [--overwrite]

Images listed in ``test_image_ids`` go to the test split, the others to train. Like OpenPSG's loader, images
without relations are left out (``--keep-empty`` keeps them). The report is also written to
``OUT.report.json``. Then: ``json_to_vg.py OUT.json DATA_DIR --image-dir COCO_DIR`` (docs/own_data.md).
"""
import argparse

from speaq_mm.datasets.scene_graph_json import psg_to_json
from speaq_mm.datasets.scene_graph_json.command_line import add_output_options, importer_parser, run_import


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = importer_parser(__doc__, psg_file='the PSG json (e.g. psg.json)')
    parser.add_argument('--keep-empty', action='store_true', help='keep images without relations')
    return add_output_options(parser, strict=True).parse_args(argv)


def main(argv=None) -> dict:
    """Import; return the report."""
    args = parse_args(argv)
    return run_import(psg_to_json, args, args.psg_file, args.out_file, args.overwrite, args.keep_empty)


if __name__ == '__main__':
    main()
