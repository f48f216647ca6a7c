"""Convert a scene graph JSON file (format: docs/tools.md and ``speaq_mm.datasets.scene_graph_json``) into the
VG150 h5 + json files that ``VGH5Dataset`` reads, with a report of everything dropped and why.

    python tools/dataset_converters/json_to_vg.py SCENE_GRAPHS.json OUT_DIR [--image-dir DIR]
        [--vocab VG-SGG-dicts-with-attri.json] [--image-mode symlink|copy|none] [--default-split train]
        [--exclude EXCLUDE.txt] [--alias-map ALIASES.json] [--strict] [--overwrite]

``--vocab`` takes the class and predicate names from a VG dicts json (use the real dataset's when the
converted set is mixed with it, so that labels agree); objects and relations whose names it lacks are
dropped. OUT_DIR receives the three VG files, ``VG_100K/`` with the images (linked or copied, named
``<id><suffix>``) and ``conversion_report.json``. The printed report ends with the dataset settings to use.
``--exclude`` leaves out the images it lists (one file name or id per line, ``#`` starts a comment).
``--alias-map`` renames a generator's free-text names to the vocabulary before validation, from a JSON file
``{"classes": {"puppy": "dog"}, "predicates": {"sitting on top of": "sitting on"}}``; names still unknown
are reported with their counts. Relation ``score`` fields (pseudo-labels) are stored as the h5's
``relationship_scores`` (docs/dataset_format.md). ``--strict`` exits with status 1 when anything was
dropped (after writing the files and the report). A non-empty OUT_DIR is refused unless ``--overwrite`` is
given; every file is written atomically.
"""
import argparse
import os.path as osp

from speaq_mm.datasets.scene_graph_json import IMAGE_MODES, SPLIT_CODES, json_to_vg
from speaq_mm.datasets.scene_graph_json.command_line import add_output_options
from speaq_mm.utils.command_line import tool_parser


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = tool_parser(__doc__, json_file='the scene graph JSON file',
                              out_dir='output folder (the dataset config\'s data_root)')
    parser.add_argument('--image-dir', help='folder the file_name fields are relative to')
    parser.add_argument('--vocab', help='VG dicts json with the class and predicate names to use')
    parser.add_argument('--image-mode', choices=IMAGE_MODES, default='symlink',
                        help='how images reach OUT_DIR/VG_100K (default: symlink)')
    parser.add_argument('--default-split', choices=tuple(SPLIT_CODES), default='train',
                        help='split of images without "split"')
    parser.add_argument('--exclude', help='text file of images to leave out (file names or ids, one per line)')
    parser.add_argument('--alias-map', help='JSON file mapping free-text class/predicate names to the vocabulary')
    return add_output_options(parser, 'write into a non-empty OUT_DIR, replacing its VG files and same-named images',
                              strict=True).parse_args(argv)


def main(argv=None) -> dict:
    """Convert; return the report."""
    args = parse_args(argv)
    report = json_to_vg(args.json_file, args.out_dir, args.image_dir, args.vocab, args.image_mode,
                        args.default_split, args.overwrite, args.exclude, args.alias_map)
    print(report['text'])
    dataset = report['dataset']
    print(f'vocabulary: {len(report["vocabulary"]["classes"])} classes, {len(report["vocabulary"]["predicates"])} '
          f'predicates from {report["vocabulary"]["source"]}')
    print(f'splits: {report["splits"]}; report: {osp.join(args.out_dir, "conversion_report.json")}')
    if report['relation_scores']:
        print('relation scores stored in the h5 (relationship_scores); weigh them with relation_weights '
              '(docs/synthetic_data.md)')
    print(f"dataset config: dict(type='VGH5Dataset', data_root='{dataset['data_root']}/', "
          f"img_suffix='{dataset['img_suffix']}'" + (', use_h5_val_split=True' if dataset['use_h5_val_split']
                                                     else '') + ', ...)')
    if args.strict and report['dropped']:
        raise SystemExit(f'--strict: {sum(d["count"] for d in report["dropped"].values())} items were dropped')
    return report


if __name__ == '__main__':
    main()
