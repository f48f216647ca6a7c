"""``SGGMetric`` (SGDet R@K, mR@K, ng-R@K, ng-mR@K, zR@K, F@K, group mR, entity AP; or the Open Images
protocol) and the prediction dump.

Both are mmengine metrics registered in mmdet's ``METRICS``. The numbers come from ``sgg_core`` (VG) and
``oi_core`` (Open Images), which the offline tool ``tools/analysis/eval_scene_graphs.py`` uses too.
"""
import logging

from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric, DumpResults
from mmengine.logging import print_log

from ..utils.atomic_io import atomic_dump
from .entity_ap import entity_detection_ap
from .oi_core import compute_oi_image_stats, format_oi_summary, summarize_oi_stats
from .records import dataset_meta_to_json, load_zeroshot_triplets, record_from_data_sample
from .sgg_core import compute_image_stats
from .sgg_summary import evaluation_settings, format_summary, summarize_image_stats

PROTOCOLS = ('vg', 'open_images')


@METRICS.register_module()
class SGGMetric(BaseMetric):
    """SGDet scene graph metrics, computed as the reference protocol does (see ``docs/evaluation.md``), or,
    with ``protocol='open_images'``, the Open Images V6 metrics of PySGG's evaluator (``docs/open_images.md``).

    ``process`` reduces every image at once to the rank at which each GT relation is first hit (graph-
    constrained and not), so memory stays flat however many triplets the model predicts; ranks are collected
    across processes by ``BaseMetric``.

    Args:
        protocol (str): ``'vg'`` (default): R@K, mR@K, ngR@K, ngmR@K, zR@K, F@K, group mR. ``'open_images'``:
            micro and per-image R@K over the ``max(topk)`` best cells per image (two predicates per pair),
            per-predicate relation and phrase AP, ``mAP_rel``, ``wmAP_rel``, ``mAP_phr``, ``wmAP_phr`` and,
            with 50 in ``topk``, ``score_wtd`` and ``score_unwtd``; the zero-shot, group, ``reference_compat``
            and ``entity_ap`` options belong to the VG protocol and are not read.
        topk (Sequence[int]): the K of R@K, mR@K, ngR@K, zR@K and F@K.
        iou_thr (float): a predicted subject/object box matches a GT box at IoU >= this.
        zeroshot_triplets (str | list | None): ``'train'`` (default): GT triplets absent from the dataset
            metainfo's ``triplets`` (the training split's) are zero-shot; a ``.npy`` / ``.json`` file
            (0-based) or the reference ``zeroshot_triplet.pytorch`` (1-based), or (T, 3) rows, listing the
            zero-shot (subject class, object class, predicate) triplets; ``None``: no zR@K.
        group_sizes (tuple[int, int] | None): the ``head`` group is the ``group_sizes[0]`` most frequent
            predicates in the metainfo's ``fg_rel_count``, ``body`` the next ``group_sizes[1]``, ``tail`` the
            rest; reported as ``head_mR@K`` etc. ``None``: no group mR.
        predicate_groups (dict | None): explicit groups ``{name: [predicate name or index]}`` instead; one
            group may be ``'rest'`` (the predicates the others leave out).
        reference_compat (bool): skip images without any predicted triplet, as the reference evaluator does,
            instead of counting them as recall 0.
        entity_ap (bool): also report COCO box AP of the predicted entities (``bbox_mAP``, ``_50``, ``_75``).
        json_file (str | None): also write every metric plus the per-predicate table to this JSON file.
        log_per_predicate (bool): log the per-predicate table after the overall one.
        collect_device, prefix, collect_dir: see ``mmengine.evaluator.BaseMetric``; the prefix defaults to
            ``sgg`` (``sgg/mR@100``).
    """

    default_prefix = 'sgg'

    def __init__(self, topk=(20, 50, 100), iou_thr=0.5, zeroshot_triplets='train', group_sizes=(4, 12),
                 predicate_groups=None, reference_compat=False, entity_ap=False, json_file=None,
                 log_per_predicate=True, protocol='vg', collect_device='cpu', prefix=None, collect_dir=None):
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if protocol not in PROTOCOLS:
            raise ValueError(f'SGGMetric: protocol must be one of {PROTOCOLS}, got {protocol!r}')
        if protocol == 'open_images' and (reference_compat or entity_ap):
            raise ValueError("SGGMetric: reference_compat and entity_ap belong to protocol='vg'; the Open Images "
                             "protocol scores images without predictions as having none")
        self.protocol = protocol
        if isinstance(topk, int):
            topk = (topk,)
        if not topk or any(not isinstance(k, int) or k < 1 for k in topk):
            raise ValueError(f'SGGMetric: topk must be positive integers, got {topk!r}')
        if not 0 < iou_thr <= 1:
            raise ValueError(f'SGGMetric: iou_thr must be in (0, 1], got {iou_thr}')
        if group_sizes is not None and (len(group_sizes) != 2
                                        or any(int(n) != n or n < 0 for n in group_sizes)):
            raise ValueError(f'SGGMetric: group_sizes must be two non-negative integers (head, body), '
                             f'got {group_sizes!r}')
        if isinstance(zeroshot_triplets, str) and zeroshot_triplets != 'train':
            zeroshot_triplets = load_zeroshot_triplets(zeroshot_triplets)  # fail before testing, not after
        self.topk = tuple(sorted(set(topk)))
        self.iou_thr = iou_thr
        self.zeroshot_triplets = zeroshot_triplets
        self.group_sizes = group_sizes
        self.predicate_groups = predicate_groups
        self.reference_compat = reference_compat
        self.entity_ap = entity_ap
        self.json_file = json_file
        self.log_per_predicate = log_per_predicate

    @property
    def dataset_meta(self):
        """The dataset metainfo; setting it checks the keys the options need, before any image is tested."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta):
        self._dataset_meta = dataset_meta
        self._settings()

    def _settings(self):
        if self.protocol == 'open_images':
            settings, notes = evaluation_settings(self._dataset_meta, None, None, where=type(self).__name__)
            return {'num_predicates': settings['num_predicates'],
                    'predicate_names': settings['predicate_names']}, notes
        return evaluation_settings(self._dataset_meta, self.zeroshot_triplets, self.group_sizes,
                                   self.predicate_groups, where=type(self).__name__)

    def process(self, data_batch, data_samples):
        """Append one small per-image statistics dict per data sample (dicts, as the Evaluator passes)."""
        open_images = self.protocol == 'open_images'
        records = [record_from_data_sample(sample, clip_gt=not open_images) for sample in data_samples]
        num_predicates = len(self._dataset_meta['predicates']) \
            if self._dataset_meta and self._dataset_meta.get('predicates') is not None else None
        if open_images:
            self.results.extend(compute_oi_image_stats(records, iou_thr=self.iou_thr, max_k=max(self.topk),
                                                       num_predicates=num_predicates, where='batch sample'))
            return
        self.results.extend(compute_image_stats(records, iou_thr=self.iou_thr, max_k=max(self.topk),
                                                num_predicates=num_predicates, keep_detections=self.entity_ap,
                                                where='batch sample'))

    def compute_metrics(self, results):
        """Summarise the collected per-image statistics, log the tables and return the metric values."""
        settings, notes = self._settings()
        for note in notes:
            print_log(note, logger='current')
        if self.protocol == 'open_images':
            summary = summarize_oi_stats(results, topk=self.topk, **settings)
            table = format_oi_summary(summary, self.topk, per_predicate=self.log_per_predicate)
            return self._report(summary, table, 'open_images')
        summary = summarize_image_stats(results, topk=self.topk, reference_compat=self.reference_compat,
                                        **settings)
        if self.entity_ap:
            ap, coco_text = entity_detection_ap(results)
            summary.update(ap)
            print_log(f'entity detection AP (pycocotools):\n{coco_text}', logger='current')
        table = format_summary(summary, self.topk, per_predicate=self.log_per_predicate)
        return self._report(summary, table, 'reference_compat' if self.reference_compat else 'default')

    def _report(self, summary, table, title):
        """Log the tables, write the JSON file if asked and return the flat metric values."""
        if summary['images']['repeated_img_ids']:
            print_log(f'{summary["images"]["repeated_img_ids"]} test images share an img_id with another; '
                      f'fine if the dataset joins parts with overlapping ids, otherwise images are counted '
                      f'twice', logger='current', level=logging.WARNING)
        print_log(f'scene graph evaluation ({title}):\n{table}', logger='current')
        if self.json_file:
            atomic_dump(summary, self.json_file, indent=2)
            print_log(f'scene graph metrics written to {self.json_file}', logger='current')
        return {key: value for key, value in summary.items() if isinstance(value, float)}


@METRICS.register_module()
class SGGDumpResults(DumpResults):
    """Dump predictions in the documented per-image record format (``docs/evaluation.md``) to a pickle file.

    Unlike ``mmengine.evaluator.DumpResults`` it keeps only the record fields as numpy arrays, which
    ``tools/analysis/eval_scene_graphs.py`` re-evaluates without the model. ``meta_file_path`` (optional,
    ``.json``) receives the dataset metainfo the metrics need offline (predicate names, train counts and
    triplets), for the tool's ``--dataset-meta``.
    """

    def __init__(self, out_file_path, meta_file_path=None, collect_device='cpu', collect_dir=None):
        super().__init__(out_file_path=out_file_path, collect_device=collect_device, collect_dir=collect_dir)
        if meta_file_path is not None and not meta_file_path.endswith('.json'):
            raise ValueError(f'SGGDumpResults: meta_file_path must end with .json, '
                             f'got {meta_file_path}')
        self.meta_file_path = meta_file_path

    def process(self, data_batch, predictions):
        """Convert each data sample into a record. The ground truth is kept as annotated (with the image
        size): each protocol clips it its own way when the dump is evaluated."""
        self.results.extend(record_from_data_sample(sample, clip_gt=False) for sample in predictions)

    def compute_metrics(self, results):
        """Write the dump (and the metainfo file), atomically; no metrics."""
        atomic_dump(results, self.out_file_path, file_format='pkl')
        print_log(f'Results has been saved to {self.out_file_path}.', logger='current')
        if self.meta_file_path:
            atomic_dump(dataset_meta_to_json(self.dataset_meta or {}), self.meta_file_path, indent=2)
            print_log(f'dataset metainfo for offline evaluation written to {self.meta_file_path}',
                      logger='current')
        return {}


def add_scene_graph_outputs(evaluator, dump_file=None, json_file=None, meta_file=None):
    """Make an already built evaluator (``runner.test_evaluator``) write the test outputs of a scene graph
    model; ``tools/test.py`` calls it.

    ``json_file`` goes to every ``SGGMetric`` of the evaluator. ``dump_file`` (``.pkl``) appends a
    ``SGGDumpResults`` (also writing ``meta_file``) given the evaluator's dataset metainfo, or, when
    the evaluator has no ``SGGMetric`` (e.g. a detector pre-training config), mmengine's
    ``DumpResults``. Returns the number of ``SGGMetric`` found.
    """
    metrics = [metric for metric in evaluator.metrics if isinstance(metric, SGGMetric)]
    for metric in metrics:
        metric.json_file = json_file or metric.json_file
    if dump_file:
        dump = SGGDumpResults(dump_file, meta_file_path=meta_file) if metrics else \
            DumpResults(out_file_path=dump_file)
        dump.dataset_meta = evaluator.dataset_meta
        evaluator.metrics.append(dump)
    return len(metrics)
