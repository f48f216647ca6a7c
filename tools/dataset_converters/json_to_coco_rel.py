"""Export a JSON scene-graph file (e.g. from vg_to_json.py) in the COCO-style layout of RelTR / EGTR:
OUT_DIR/train.json, val.json, test.json (COCO detection files) and rel.json.

    python tools/dataset_converters/json_to_coco_rel.py SCENE_GRAPHS.json OUT_DIR [--vocab DICTS.json]
        [--overwrite]

The JSON is validated like json_to_vg.py does (drops counted by reason). Categories are numbered from 1 and
``rel_categories`` starts with ``__background__``, as in the published VG files; integer image ids are kept.
Existing output files are refused unless ``--overwrite`` is given.
"""
import argparse
import os.path as osp

from speaq_mm.datasets.scene_graph_json import json_to_coco_rel
from speaq_mm.datasets.scene_graph_json.command_line import add_output_options
from speaq_mm.utils.command_line import tool_parser


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = tool_parser(__doc__, json_file='the JSON scene-graph file',
                              out_dir='folder for train.json, val.json, test.json and rel.json')
    parser.add_argument('--vocab', help='VG dicts json with the class and predicate names to use')
    return add_output_options(parser, 'replace existing output files').parse_args(argv)


def main(argv=None) -> dict:
    """Export; return the report."""
    args = parse_args(argv)
    result = json_to_coco_rel(args.json_file, args.out_dir, args.vocab, args.overwrite)
    print(result['text'])
    print(f'images per split: {result["splits"]}; wrote {args.out_dir}/{{train,val,test,rel}}.json and '
          f'{osp.join(args.out_dir, "coco_rel_report.json")}')
    return result


if __name__ == '__main__':
    main()
