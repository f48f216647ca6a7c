"""Convert the Open Images V6 relation annotations (PySGG's preprocessed files) into the JSON scene-graph
format, from which ``json_to_vg.py`` makes the VG files ``VGH5Dataset`` reads (docs/open_images.md).

    python tools/dataset_converters/oi_to_json.py ANN_DIR OUT.json [--report-json FILE] [--overwrite]

ANN_DIR holds ``categories_dict.json`` and ``vrd-train-anno.json``, ``vrd-val-anno.json``,
``vrd-test-anno.json``. All three splits go into OUT.json, each image with its ``split``. What cannot be
represented (bad sizes, label or box indices out of range, ...) is dropped, and the printed summary counts
every drop by reason with examples; ``--report-json`` also writes it as JSON. An existing OUT.json is
refused unless ``--overwrite`` is given.
"""
import os.path as osp

from speaq_mm.datasets.scene_graph_json.command_line import add_output_options
from speaq_mm.datasets.scene_graph_json.open_images import oi_to_scene_graph_json
from speaq_mm.utils.atomic_io import atomic_dump
from speaq_mm.utils.command_line import tool_parser


def parse_args(argv=None):
    """Command-line options (see the module docstring)."""
    parser = tool_parser(__doc__, ann_dir='folder with categories_dict.json and vrd-{train,val,test}-anno.json',
                              out_file='the scene graph JSON file to write')
    parser.add_argument('--report-json', metavar='FILE', help='also write the drop report here')
    return add_output_options(parser, 'replace OUT.json (and the report) if they exist').parse_args(argv)


def main(argv=None):
    """Convert; print and return the report."""
    args = parse_args(argv)
    if args.report_json and osp.exists(args.report_json) and not args.overwrite:
        raise FileExistsError(f'{args.report_json} exists; nothing was written. Pass --overwrite to replace it')
    report = oi_to_scene_graph_json(args.ann_dir, args.out_file, overwrite=args.overwrite)
    print(report.text())
    print(f'wrote {args.out_file}; next: python tools/dataset_converters/json_to_vg.py {args.out_file} OUT_DIR '
          f'--image-dir OI_IMAGES')
    if args.report_json:
        atomic_dump(report.to_dict(), args.report_json, file_format='json', indent=2)
    return report


if __name__ == '__main__':
    main()
