"""Import GQA-200 (the split of the long-tail SGG papers, files of SHA-GCL-for-SGG) into the JSON scene-graph
format with the reference loader's train / val / test splits, and a report of every drop by reason.

    python tools/dataset_converters/gqa_to_json.py GQA_200_ID_Info.json GQA_200_Train.json GQA_200_Test.json \
        OUT.json [--val reference|none] [--strict] [--overwrite]

The loader's quirks are reproduced: images without relations or boxes are skipped, item 5580 of the test
file is always skipped, and val is the first 5000 test images (written a second time with ids ``<id>_val``;
``--val none`` leaves val empty). docs/own_data.md has the details. Then: ``json_to_vg.py OUT.json DATA_DIR
--image-dir GQA_IMAGES`` (and ``use_h5_val_split=True`` in the dataset config).
"""
import argparse

from speaq_mm.datasets.scene_graph_json import gqa_to_json
from speaq_mm.datasets.scene_graph_json.command_line import add_output_options, importer_parser, run_import


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = importer_parser(__doc__, dict_file='names: ind_to_classes, ind_to_predicates (GQA_200_ID_Info.json)',
                             train_file='the train graphs (GQA_200_Train.json)',
                             test_file='the test graphs (GQA_200_Test.json)')
    parser.add_argument('--val', choices=('reference', 'none'), default='reference',
                        help='reference: val = the first 5000 test images, as the loader does (default)')
    return add_output_options(parser, strict=True).parse_args(argv)


def main(argv=None) -> dict:
    """Import; return the report."""
    args = parse_args(argv)
    return run_import(gqa_to_json, args, args.dict_file, args.train_file, args.test_file, args.out_file, args.val,
                      args.overwrite)


if __name__ == '__main__':
    main()
