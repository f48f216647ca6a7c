"""Evaluate a scene graph prediction dump offline, with the same code as ``SGGMetric``.

    python tools/analysis/eval_scene_graphs.py FILE.pkl [--dataset-meta META.json] [--zeroshot-triplets FILE]
        [--iou-thr 0.5] [--topk 20 50 100] [--reference-compat] [--entity-ap] [--out-json FILE]

FILE.pkl is a list of per-image records (``docs/evaluation.md``; ``tools/test.py --out``), or of data samples
as mmengine's ``DumpResults`` writes them. The metrics are printed as tables and, with ``--out-json``, written
as JSON (fractions in [0, 1]) with a ``per_predicate`` table.
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a scene graph prediction dump (SGDet metrics).')
    parser.add_argument('dump', help='prediction dump (.pkl) written by tools/test.py --out')
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
    from speaq_mm.evaluation.records import load_dataset_meta, load_prediction_dump
    from speaq_mm.evaluation.sgg_core import iter_image_stats
    from speaq_mm.evaluation.sgg_summary import evaluation_settings, format_summary, summarize_image_stats
    from speaq_mm.utils import trust_files_from_args
    from speaq_mm.utils.atomic_io import atomic_dump

    trust_files_from_args(args)
    if min(args.topk) < 1:
        raise ValueError(f'--topk must be positive, got {args.topk}')
    if args.chunk_size < 1:
        raise ValueError(f'--chunk-size must be positive, got {args.chunk_size}')
    meta = load_dataset_meta(args.dataset_meta) if args.dataset_meta else {}
    zeroshot = args.zeroshot_triplets or ('train' if meta.get('triplets') is not None else None)
    settings, notes = evaluation_settings(meta, zeroshot, args.group_sizes,
                                          where=args.dataset_meta or args.dump)
    if zeroshot is None:
        notes.append('no --zeroshot-triplets and no training triplets in --dataset-meta, so no zR@K')
    records = load_prediction_dump(args.dump)
    stats = list(iter_image_stats(records, chunk_size=args.chunk_size, iou_thr=args.iou_thr,
                                  max_k=max(args.topk), num_predicates=settings['num_predicates'],
                                  keep_detections=args.entity_ap, where=f'{args.dump} entry'))
    del records
    summary = summarize_image_stats(stats, topk=args.topk, reference_compat=args.reference_compat, **settings)
    if summary['images']['repeated_img_ids']:
        notes.append(f'{summary["images"]["repeated_img_ids"]} entries repeat the img_id of another entry')
    if args.entity_ap:
        ap, coco_text = entity_detection_ap(stats)
        summary.update(ap)
        print(coco_text)
    for note in notes:
        print(f'note: {note}')
    print(format_summary(summary, sorted(set(args.topk)), per_predicate=not args.no_per_predicate))
    if args.out_json:
        atomic_dump(summary, args.out_json, indent=2)
        print(f'metrics written to {args.out_json}')
    return summary


if __name__ == '__main__':
    main()
