"""Export a VG-layout scene graph dataset (VG150, the toy scenes, converted sets) as a scene graph JSON file
(format: docs/tools.md and ``speaq_mm.datasets.scene_graph_json``): one entry per image with its objects (class
name, xyxy box in original pixels) and relations.

    python tools/dataset_converters/vg_to_json.py VG_DIR OUT.json [--split all|train|val|test]
        [--img-suffix .jpg] [--box-scale 1024]

VG_DIR holds ``VG-SGG-with-attri.h5``, ``image_data.json`` and ``VG-SGG-dicts-with-attri.json`` (other names:
``--ann-file``, ``--image-data-file``, ``--dicts-file``). ``--split`` selects h5 rows by split code (0 train,
1 val, 2 test); ``file_name`` is ``<image id><img suffix>``, the file of ``VG_DIR/VG_100K``.
"""
import argparse

from speaq_mm.datasets.scene_graph_json import SPLIT_CODES, vg_to_json
from speaq_mm.datasets.scene_graph_json.command_line import add_output_options
from speaq_mm.utils.command_line import tool_parser


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = tool_parser(__doc__, vg_dir='folder with the VG files', out_file='the JSON file to write')
    parser.add_argument('--split', choices=('all',) + tuple(SPLIT_CODES), default='all')
    parser.add_argument('--img-suffix', default='.jpg', help='image file suffix (file_name = <id><suffix>)')
    parser.add_argument('--box-scale', type=int, default=1024, help='read boxes_<box-scale>')
    parser.add_argument('--ann-file', help='the h5 (default VG_DIR/VG-SGG-with-attri.h5)')
    parser.add_argument('--image-data-file', help='the image-data json (default VG_DIR/image_data.json)')
    parser.add_argument('--dicts-file', help='the dicts json (default VG_DIR/VG-SGG-dicts-with-attri.json)')
    return add_output_options(parser, 'replace OUT.json if it exists').parse_args(argv)


def main(argv=None) -> dict:
    """Export; return the counts."""
    args = parse_args(argv)
    result = vg_to_json(args.vg_dir, args.out_file, args.split, args.img_suffix, args.box_scale, args.ann_file,
                        args.image_data_file, args.dicts_file, args.overwrite)
    print(f'wrote {result["images"]} images, {result["objects"]} objects and {result["relations"]} relations to '
          f'{args.out_file}')
    return result


if __name__ == '__main__':
    main()
