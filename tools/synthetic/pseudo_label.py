"""Pseudo-label generated images with a trained scene graph model and curate the labels (docs/synthetic_data.md,
"2. Pseudo-label"; filters: ``speaq_mm.synthetic.filters``).

    python tools/synthetic/pseudo_label.py CONFIG CHECKPOINT IMAGES --out labels.json [--plan plan.jsonl]
        [--score-thr T] [--topk K] [--entity-iou-thr IOU] [--min-plan-agreement M] [--keep-only-agreeing]
        [--predicate-cap N | --predicate-caps CAPS.json] [--exclude LIST.txt] [--real REAL] [--report-dir DIR]
        [--predictions graphs.jsonl] [--batch-size 8] [--device cpu] [--overwrite]

The model (``speaq_mm.apis.SceneGraphInferencer``) runs over IMAGES (a folder); ``--predictions`` reads the
JSON Lines of an earlier ``tools/extract_scene_graphs.py`` run over IMAGES instead (CHECKPOINT is then not
loaded). The filters, in this order: ``--exclude`` (images listed by file name or id), ``--score-thr``
(triplet score), ``--entity-iou-thr`` (class-aware duplicate-entity suppression, relations re-pointed to the
kept box), self pairs and repeated (subject, predicate, object) (always), ``--topk`` (per image), plan
agreement (with ``--plan``: an image is kept when at least ``--min-plan-agreement`` of its intended triplets
are found, by classes and predicate; ``--keep-only-agreeing`` also drops the other relations),
``--predicate-cap``/``--predicate-caps`` (most relations per predicate over the set, highest scores kept).
Objects no kept relation uses, and images left without relations, are dropped.

Writes ``--out`` (the JSON scene-graph file ``json_to_vg`` reads, with a ``score`` per object and relation)
and, in ``--report-dir`` (default: beside ``--out``), ``curation_report.json`` and the PNGs
``curation_drops.png``, ``predicate_shares.png``, ``predicate_confidence.png``. ``--real`` (a VG folder or a
config; default CONFIG) gives the real train split the predicate shares are compared with.
"""
import argparse
import json
import os.path as osp

from speaq_mm.synthetic import CurationOptions, curate, curation_report, plot_curation_report, read_plan, report_text
from speaq_mm.synthetic.pseudo_labels import (
    predict_scene_graphs,
    read_predictions,
    relative_file_names,
    write_scene_graph_json,
)
from speaq_mm.utils.atomic_io import atomic_dump
from speaq_mm.utils.command_line import tool_parser


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = tool_parser(__doc__, config='the model config', checkpoint='the trained checkpoint',
                         images='folder of generated images')
    parser.add_argument('--out', required=True, help='the curated JSON scene-graph file to write')
    parser.add_argument('--plan', help='the plan (JSON Lines) the images were generated from')
    parser.add_argument('--predictions', help='JSON Lines predictions of IMAGES to curate instead of running the model')
    parser.add_argument('--score-thr', type=float, default=0.0, help='drop relations with a lower triplet score')
    parser.add_argument('--topk', type=int, help='keep this many highest-scoring relations per image')
    parser.add_argument('--entity-iou-thr', type=float,
                        help='merge same-class objects overlapping a higher-scoring one at IoU >= this')
    parser.add_argument('--min-plan-agreement', type=int, default=1,
                        help='with --plan: intended triplets an image must show (default 1)')
    parser.add_argument('--keep-only-agreeing', action='store_true',
                        help='with --plan: keep only the relations that realise an intended triplet')
    caps = parser.add_mutually_exclusive_group()
    caps.add_argument('--predicate-cap', type=int, help='most relations any predicate keeps over the set')
    caps.add_argument('--predicate-caps', help='JSON file predicate -> most relations it keeps over the set')
    parser.add_argument('--exclude', help='text file of images to drop (file names or ids, one per line)')
    parser.add_argument('--real', help='real train data for the share comparison: VG folder or config '
                                       '(default: CONFIG)')
    parser.add_argument('--real-source', default='real', help='with a mix config: the source name of the real data')
    parser.add_argument('--report-dir', help='folder of the curation report (default: beside --out)')
    parser.add_argument('--batch-size', type=int, default=8, help='images per model batch')
    parser.add_argument('--device', default='cpu', help='device of the model')
    parser.add_argument('--max-relations', type=int, default=100, help='relations per image asked of the model')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out and report')
    from speaq_mm.utils import add_trust_argument
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Predict (or read predictions), curate, write the labels and the report; return the report."""
    args = parse_args(argv)
    report_dir = args.report_dir or osp.dirname(osp.abspath(args.out))
    report_path = osp.join(report_dir, 'curation_report.json')
    for path in (args.out, report_path):
        if osp.exists(path) and not args.overwrite:
            raise SystemExit(f'{path} exists; nothing was written. Pass --overwrite to replace it')
    if not osp.isdir(args.images):
        raise SystemExit(f'IMAGES {args.images} is not a folder')
    excluded = ()
    if args.exclude:
        from speaq_mm.datasets.scene_graph_json.validation import read_exclude_list
        excluded = read_exclude_list(args.exclude)
    caps = args.predicate_cap
    if args.predicate_caps:
        with open(args.predicate_caps, encoding='utf-8') as file:
            caps = json.load(file)
    options = CurationOptions(score_thr=args.score_thr, entity_iou_thr=args.entity_iou_thr, topk=args.topk,
                              min_plan_agreement=args.min_plan_agreement, keep_only_agreeing=args.keep_only_agreeing,
                              predicate_caps=caps, exclude=excluded)
    plans = read_plan(args.plan) if args.plan else None

    from speaq_mm.synthetic.planning import dataset_triplets, real_train_dataset
    real = real_train_dataset(args.real or args.config, args.real_source)
    classes, predicates = real.metainfo['classes'], real.metainfo['predicates']
    if args.predictions:
        graphs = read_predictions(args.predictions)
    else:
        graphs, classes, predicates = predict_scene_graphs(args.config, args.checkpoint, args.images,
                                                           args.batch_size, args.device, args.max_relations,
                                                           args.trust_pickle or ())
    graphs = relative_file_names(graphs, args.images)
    kept, log = curate(graphs, options, plans)
    settings = {key: value for key, value in vars(args).items() if key not in ('overwrite', 'trust_pickle')}
    report = curation_report(graphs, kept, log, predicates, dataset_triplets(real), settings)
    atomic_dump(report, report_path, indent=2)
    figures = plot_curation_report(report, report_dir)
    print(report_text(report))
    if not kept:
        raise SystemExit(f'no image survived the filters; nothing was written to {args.out}. The report '
                         f'({report_path}) says what dropped them: loosen those filters')
    write_scene_graph_json(kept, classes, predicates, args.out, overwrite=args.overwrite)
    print(f'labels: {args.out}; report: {report_path}; figures: {", ".join(figures.values())}')
    return report


if __name__ == '__main__':
    main()
