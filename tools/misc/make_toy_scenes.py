"""Generate small, learnable scene-graph datasets in exactly the Visual Genome (VG150) file layout.

Each image shows 2-4 large coloured shapes on a plain background; the predicates are purely geometric and
follow from the box layout, so a tiny model can learn them. ``--style synthetic`` renders the same kind of
scenes in a second visual domain (other palette, striped textures, noisy dark background) to stand in for
synthetic data. ``--preset vg150-scale`` writes annotations only, with the sizes of the real VG150 h5
(108,073 images, 1,145,398 boxes, 622,705 relations, the 4 corrupted image-data entries), for benchmarks.

Output (the standard VG file names, so configs only change ``data_root``)::

    OUT_DIR/VG-SGG-with-attri.h5  OUT_DIR/image_data.json  OUT_DIR/VG-SGG-dicts-with-attri.json
    OUT_DIR/VG_100K/<image_id>.jpg

``--plan plan.jsonl`` renders the intended scenes of a plan (``tools/synthetic/plan_scenes.py``) instead, as
images only (``OUT_DIR/<file_name>``), in the ``--style`` domain (default there: synthetic): the stand-in for
a text-to-image model in docs/synthetic_data.md. ``--miss-rate`` is the share of images that ignore their
plan, as a generator sometimes does.

An existing non-empty OUT_DIR is refused unless ``--overwrite`` is given (which first removes the earlier
dataset's files, so two sets never mix).

Example::

    python tools/misc/make_toy_scenes.py data/toy_real --num-train 2000 --num-test 300
    python tools/misc/make_toy_scenes.py data/toy_synthetic --style synthetic --seed 1
    python tools/misc/make_toy_scenes.py work_dirs/synthetic/images --plan work_dirs/synthetic/plan.jsonl
"""
import argparse
import sys
import time
from typing import Optional, Sequence

from speaq_mm.datasets.toy_scenes import STYLES, make_toy_scenes, make_vg150_scale, remove_vg_dataset, render_plan
from speaq_mm.utils.output_guard import refuse_non_empty_folder


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', help='output folder (created; an existing non-empty one is refused)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the dataset in a non-empty OUT_DIR (its VG files and VG_100K images are '
                             'deleted first, so that no two sets mix); with --plan: replace existing images')
    parser.add_argument('--preset', choices=['toy', 'vg150-scale'], default='toy',
                        help='toy: rendered shape scenes; vg150-scale: VG150-sized annotations, no images')
    parser.add_argument('--num-train', type=int, default=2000, help='images with split 0')
    parser.add_argument('--num-val', type=int, default=0, help='images with split 1 (VG itself has none)')
    parser.add_argument('--num-test', type=int, default=300, help='images with split 2')
    parser.add_argument('--image-size', type=int, default=128, help='side of the square images in pixels')
    parser.add_argument('--min-objects', type=int, default=2, help='fewest shapes per image')
    parser.add_argument('--max-objects', type=int, default=4, help='most shapes per image')
    parser.add_argument('--style', choices=STYLES, help='visual domain (default: real; synthetic with --plan)')
    parser.add_argument('--plan', help='render the scenes of this plan (JSON Lines) as images only')
    parser.add_argument('--miss-rate', type=float, default=0.1,
                        help='with --plan: share of images that ignore their plan (a random scene)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (the output is deterministic)')
    parser.add_argument('--duplicate-rate', type=float, default=0.1,
                        help='probability that a "near" pair also gets its direction as a second predicate')
    parser.add_argument('--no-images', action='store_true', help='write the annotation files only')
    parser.add_argument(
        '--vg-corrupt-ids', action='store_true',
        help='skip the ids 1592, 1722, 4616, 4617 and list them in image_data.json as VG does')
    parser.add_argument('--jpeg-quality', type=int, default=95, help='JPEG quality of the images')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Generate the dataset described by the command line and print a summary."""
    args = parse_args(argv)
    start = time.perf_counter()
    if args.plan:
        from speaq_mm.synthetic.planning import read_plan
        plans = list(read_plan(args.plan).values())
        summary = render_plan(plans, args.out_dir, image_size=args.image_size, style=args.style or 'synthetic',
                              seed=args.seed, miss_rate=args.miss_rate, overwrite=args.overwrite, progress=True)
        print(f'\nrendered {len(plans)} planned images into {args.out_dir} in {time.perf_counter() - start:.1f} s: '
              f'{summary["rendered"]} as planned, {summary["missed"]} ignoring their plan on purpose '
              f'(--miss-rate), {summary["unrealisable"]} whose plan no layout realises')
        return summary
    args.style = args.style or 'real'
    refuse_non_empty_folder(args.out_dir, args.overwrite)
    if args.overwrite:
        removed = remove_vg_dataset(args.out_dir)
        if removed:
            print(f'--overwrite: removed the {removed} file(s) of the earlier dataset in {args.out_dir}')
    if args.preset == 'vg150-scale':
        summary = make_vg150_scale(args.out_dir, seed=args.seed)
    else:
        summary = make_toy_scenes(args.out_dir, num_train=args.num_train, num_val=args.num_val,
                                  num_test=args.num_test, image_size=args.image_size,
                                  min_objects=args.min_objects, max_objects=args.max_objects,
                                  style=args.style, seed=args.seed, duplicate_rate=args.duplicate_rate,
                                  write_images=not args.no_images, vg_corrupt_ids=args.vg_corrupt_ids,
                                  jpeg_quality=args.jpeg_quality)
    print(f'wrote {summary["images"]} images, {summary["boxes"]} boxes, {summary["relations"]} relations to '
          f'{args.out_dir} in {time.perf_counter() - start:.1f} s')
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
