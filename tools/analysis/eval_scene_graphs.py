"""Evaluate a scene graph prediction dump offline, with the same code as ``SGGMetric``.

    python tools/analysis/eval_scene_graphs.py FILE.pkl [--protocol {vg,open_images}]
        [--dataset-meta META.json] [--zeroshot-triplets FILE] [--iou-thr 0.5] [--topk 20 50 100]
        [--reference-compat] [--entity-ap] [--out-json FILE]

FILE.pkl is a list of per-image records (``docs/evaluation.md``; ``tools/test.py --out``), or of data samples
as mmengine's ``DumpResults`` writes them. The metrics are printed as tables and, with ``--out-json``, written
as JSON (fractions in [0, 1]) with a ``per_predicate`` table. ``--protocol open_images`` scores the dump as
PySGG's Open Images V6 evaluator does (docs/open_images.md); the zero-shot, group, reference-compat and
entity-AP options belong to the VG protocol.
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a scene graph prediction dump (SGDet metrics).')
    parser.add_argument('dump', help='prediction dump (.pkl) written by tools/test.py --out')
    parser.add_argument('--protocol', choices=('vg', 'open_images'), default='vg',
                        help='vg: R@K, mR@K, ngR@K, ngmR@K, zR@K (docs/evaluation.md); open_images: micro '
                             'R@K, relation/phrase AP and the weighted score (docs/open_images.md)')
    parser.add_argument('--dataset-meta', metavar='FILE',
                        help='dataset metainfo (.json/.pkl: predicates, fg_rel_count, triplets), e.g. the '
                             '*_meta.json tools/test.py writes beside the dump; gives predicate names, the '
                             'head/body/tail groups and the default zero-shot triplets')
    parser.add_argument('--zeroshot-triplets', metavar='FILE',
                        help='zero-shot (subject class, object class, predicate) triplets: .npy or .json '
                             '(0-based) or the reference zeroshot_triplet.pytorch (1-based); default: the '
                             'triplets missing from --dataset-meta\'s training triplets')
    parser.add_argument('--iou-thr', type=float, default=0.5, help='box IoU needed for a match (>=)')
    parser.add_argument('--topk', type=int, nargs='+', default=[20, 50, 100], help='the K of R@K etc.')
    parser.add_argument('--group-sizes', type=int, nargs=2, default=[4, 12], metavar=('HEAD', 'BODY'),
                        help='head and body group sizes by train frequency (needs fg_rel_count)')
    parser.add_argument('--reference-compat', action='store_true',
                        help='skip images without predicted triplets, as the reference evaluator does')
    parser.add_argument('--entity-ap', action='store_true', help='also compute COCO box AP of the entities')
    parser.add_argument('--out-json', metavar='FILE', help='write the metrics and per-predicate table here')
    parser.add_argument('--chunk-size', type=int, default=256, help='images evaluated at once')
    parser.add_argument('--no-per-predicate', action='store_true', help='print only the overall table')
    from speaq_mm.utils import add_trust_argument
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    """Evaluate the dump; return the summary dict."""
    args = parse_args(argv)
    from speaq_mm.evaluation.entity_ap import entity_detection_ap
    from speaq_mm.evaluation.records import load_dataset_meta
    from speaq_mm.evaluation.sgg_core import iter_image_stats
    from speaq_mm.evaluation.sgg_summary import evaluation_settings, format_summary, summarize_image_stats
    from speaq_mm.utils import trust_files_from_args

    trust_files_from_args(args)
    if min(args.topk) < 1:
        raise ValueError(f'--topk must be positive, got {args.topk}')
    if args.chunk_size < 1:
        raise ValueError(f'--chunk-size must be positive, got {args.chunk_size}')
    meta = load_dataset_meta(args.dataset_meta) if args.dataset_meta else {}
    if args.protocol == 'open_images':
        return evaluate_open_images(args, meta)
    zeroshot = args.zeroshot_triplets or ('train' if meta.get('triplets') is not None else None)
    settings, notes = evaluation_settings(meta, zeroshot, args.group_sizes,
                                          where=args.dataset_meta or args.dump)
    if zeroshot is None:
        notes.append('no --zeroshot-triplets and no training triplets in --dataset-meta, so no zR@K')
    stats = dump_stats(args, iter_image_stats, settings['num_predicates'], keep_detections=args.entity_ap)
    summary = summarize_image_stats(stats, topk=args.topk, reference_compat=args.reference_compat, **settings)
    if summary['images']['repeated_img_ids']:
        notes.append(f'{summary["images"]["repeated_img_ids"]} entries repeat the img_id of another entry')
    if args.entity_ap:
        ap, coco_text = entity_detection_ap(stats)
        summary.update(ap)
        print(coco_text)
    for note in notes:
        print(f'note: {note}')
    return report_summary(args, summary, format_summary)


def dump_stats(args, iter_stats, num_predicates, **kwargs):
    """The per-image statistics of ``--dump`` from ``iter_stats`` (``iter_image_stats`` or
    ``iter_oi_image_stats``), ``--chunk-size`` records at a time."""
    from speaq_mm.evaluation.records import load_prediction_dump
    records = load_prediction_dump(args.dump)
    return list(iter_stats(records, chunk_size=args.chunk_size, iou_thr=args.iou_thr, max_k=max(args.topk),
                           num_predicates=num_predicates, where=f'{args.dump} entry', **kwargs))


def report_summary(args, summary, format_table):
    """Print the summary as ``format_table`` lays it out, write it to ``--out-json`` if given; return it."""
    from speaq_mm.utils.atomic_io import atomic_dump
    print(format_table(summary, sorted(set(args.topk)), per_predicate=not args.no_per_predicate))
    if args.out_json:
        atomic_dump(summary, args.out_json, indent=2)
        print(f'metrics written to {args.out_json}')
    return summary


def evaluate_open_images(args, meta):
    """The ``--protocol open_images`` branch of ``main``."""
    from speaq_mm.evaluation.oi_core import format_oi_summary, iter_oi_image_stats, summarize_oi_stats
    from speaq_mm.evaluation.sgg_summary import evaluation_settings

    if args.reference_compat or args.entity_ap or args.zeroshot_triplets:
        raise ValueError('--reference-compat, --entity-ap and --zeroshot-triplets belong to --protocol vg')
    settings, _ = evaluation_settings(meta, None, None, where=args.dataset_meta or args.dump)
    stats = dump_stats(args, iter_oi_image_stats, settings['num_predicates'])
    summary = summarize_oi_stats(stats, topk=args.topk, num_predicates=settings['num_predicates'],
                                 predicate_names=settings['predicate_names'])
    if summary['images']['repeated_img_ids']:
        print(f'note: {summary["images"]["repeated_img_ids"]} entries repeat the img_id of another entry')
    return report_summary(args, summary, format_oi_summary)


if __name__ == '__main__':
    main()
