"""Which relation queries predict which predicates: SpeaQ's groupwise query specialisation, from a test dump.

    python tools/analysis/query_specialisation.py DUMP.pkl --config CONFIG [--checkpoint CKPT]
        [--dataset-meta META.json] [--topk 100] [--out-dir DIR] [--trust-pickle FILE]

SpeaQ gives every predicate group (predicates of similar train frequency) its own block of relation queries
and, with ``use_group_mask``, matches each query only to ground truth of its group's predicates during
training. This report counts, over the test images, the predicate of each of the first ``--topk`` triplets
of every image against the query it came from, and shows

* ``query_specialisation.png``: left, a heat map of query groups x predicates (each row: the share of the
  group's triplets predicting each predicate; boxed cells are the group's own predicates); right, the same
  per relation query (queries binned into at most 64 rows), with the group boundaries drawn;
* ``query_specialisation.json``: the group layout, the count matrices and each group's *specialisation*
  (share of its triplets whose predicate belongs to the group).

DUMP is what ``tools/test.py --out`` writes: scene graph records, whose ``pred_rel_query_ids`` name the query of
every triplet; mmengine's ``DumpResults`` data samples (``pred_relations.query_ids``) work too.
The group layout is rebuilt as the matcher builds it (``build_predicate_group_layout``) from the model config
given with ``--config`` (``model.num_entity_queries``, ``num_relation_queries``,
``train_cfg.assigner.num_groups`` and ``group_counts``) and the train predicate counts (``fg_rel_count`` of
the checkpoint's ``meta.dataset_meta``, or of ``--dataset-meta``). The config text a checkpoint carries is
never executed (it is Python; a shared checkpoint could run anything through it), and the checkpoint and the
dump are read with speaq_mm's safe loaders (``--trust-pickle FILE`` opts in to full unpickling for one file).
"""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from speaq_mm.visualization.figure_style import FIGURE_BACKGROUND, PANEL_BACKGROUND  # noqa: E402

MAX_QUERY_ROWS = 64


def load_query_triplets(path: str, topk: int) -> Tuple[np.ndarray, np.ndarray, int]:
    """(query id, predicate) of the first ``topk`` triplets of every image of a dump, and the image count.

    Args:
        path (str): the dump (see the module docstring).
        topk (int): triplets counted per image (0: all).
    """
    from speaq_mm.evaluation.records import to_numpy
    from speaq_mm.utils import load_pickle_file
    entries = load_pickle_file(path, what='prediction dump')
    if not isinstance(entries, (list, tuple)) or not entries:
        raise ValueError(f'{path}: expected a non-empty list with one entry per image')
    queries, predicates = [], []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and 'pred_relations' in entry:
            relations = entry['pred_relations']
            ids = relations.get('query_ids') if isinstance(relations, dict) else getattr(relations, 'query_ids', None)
            labels = relations['labels'] if isinstance(relations, dict) else relations.labels
        elif isinstance(entry, dict) and 'pred_rel_labels' in entry:
            ids, labels = entry.get('pred_rel_query_ids'), entry['pred_rel_labels']
        else:
            raise ValueError(f'{path} entry {index}: neither a data sample with pred_relations nor a scene graph '
                             'record')
        if ids is None:
            raise KeyError(f'{path} entry {index}: no relation query ids (pred_relations.query_ids or '
                           'pred_rel_query_ids); write the dump with tools/test.py --out from a SpeaQ model')
        ids, labels = to_numpy(ids).reshape(-1), to_numpy(labels).reshape(-1)
        if len(ids) != len(labels):
            raise ValueError(f'{path} entry {index}: {len(ids)} query ids for {len(labels)} triplets')
        limit = topk if topk > 0 else len(ids)
        queries.append(ids[:limit].astype(np.int64))
        predicates.append(labels[:limit].astype(np.int64))
    return np.concatenate(queries), np.concatenate(predicates), len(entries)


def model_settings(cfg) -> dict:
    """The query and group settings of a SpeaQ model config."""
    model = cfg.get('model', {})
    assigner = (model.get('train_cfg') or {}).get('assigner') or {}
    try:
        return dict(num_entity_queries=int(model['num_entity_queries']),
                    num_relation_queries=int(model['num_relation_queries']),
                    num_groups=int(assigner.get('num_groups', 1)),
                    group_counts=assigner.get('group_counts', 'train_statistics'),
                    use_group_mask=bool(assigner.get('use_group_mask', False)))
    except KeyError as error:
        raise KeyError(f'the config has no model.{error.args[0]}; is it a SpeaQDetector config?') from None


def load_inputs(checkpoint: Optional[str], config: str, dataset_meta: Optional[str]):
    """(model settings, predicate names, train predicate counts) from the config, checkpoint and/or files."""
    from mmengine.config import Config
    meta = {}
    if not osp.isfile(config):
        raise FileNotFoundError(f'config {config} does not exist')
    cfg = Config.fromfile(config)
    if checkpoint:
        from speaq_mm.utils import load_torch_file
        saved = load_torch_file(checkpoint, map_location='cpu').get('meta', {})
        meta = dict(saved.get('dataset_meta') or {})
    if dataset_meta:
        from speaq_mm.evaluation.records import load_dataset_meta
        meta.update(load_dataset_meta(dataset_meta))
    missing = [key for key in ('predicates', 'fg_rel_count') if meta.get(key) is None]
    if missing:
        raise KeyError(f'no {" and ".join(missing)} in the checkpoint\'s meta.dataset_meta or --dataset-meta; the '
                       'group layout needs the predicate names and their train counts')
    return model_settings(cfg), tuple(meta['predicates']), np.asarray(meta['fg_rel_count'], np.float64)


def group_layout(settings: dict, train_counts: np.ndarray):
    """The matcher's predicate group layout for these settings."""
    from speaq_mm.models.task_modules.predicate_groups import (
        REFERENCE_PREDICATE_COUNTS,
        build_predicate_group_layout,
        validate_predicate_counts,
    )
    counts = REFERENCE_PREDICATE_COUNTS if settings['group_counts'] == 'reference' else train_counts
    counts = validate_predicate_counts(counts, len(train_counts), 'train predicate counts (fg_rel_count)')
    return build_predicate_group_layout(counts, settings['num_groups'], settings['num_entity_queries'],
                                        settings['num_relation_queries'])


def specialisation_report(queries: np.ndarray, predicates: np.ndarray, layout, predicate_names: Sequence[str],
                          train_counts: np.ndarray) -> dict:
    """Count matrices and per-group specialisation.

    Returns:
        dict: ``predicate_order`` (predicates by train frequency, descending), ``group_counts`` (G, P) and
        ``query_counts`` (N_rel, P) triplet counts (columns in predicate index order), ``groups`` (one dict
        per group: queries, predicates, triplets, specialisation) and ``specialisation`` (all groups).
    """
    num_queries, num_predicates = len(layout.query_group), len(predicate_names)
    bad = (queries < 0) | (queries >= num_queries) | (predicates < 0) | (predicates >= num_predicates)
    if bad.any():
        raise ValueError(f'{int(bad.sum())} triplets have a query id outside 0..{num_queries - 1} or a predicate '
                         f'outside 0..{num_predicates - 1}: the dump does not come from this model config')
    query_counts = np.zeros((num_queries, num_predicates), np.int64)
    np.add.at(query_counts, (queries, predicates), 1)
    query_group = layout.query_group.numpy()
    predicate_group = layout.predicate_group.numpy()
    group_counts = np.stack([query_counts[query_group == g].sum(0) for g in range(len(layout.relation_query_ranges))])
    groups = []
    for g, (first, last) in enumerate(layout.relation_query_ranges):
        own = predicate_group == g
        total = int(group_counts[g].sum())
        groups.append(dict(group=g, queries=[int(first), int(last)],
                           predicates=[predicate_names[p] for p in np.flatnonzero(own)],
                           triplets=total,
                           specialisation=float(group_counts[g, own].sum() / total) if total else None))
    own_total = sum(int(group_counts[g, predicate_group == g].sum()) for g in range(len(groups)))
    return dict(predicate_order=np.argsort(-train_counts, kind='stable').tolist(),
                group_counts=group_counts, query_counts=query_counts, groups=groups,
                specialisation=own_total / max(int(group_counts.sum()), 1))


def _row_shares(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape, np.float64), where=totals > 0)


def plot_report(path: str, report: dict, layout, predicate_names: Sequence[str], title: str) -> int:
    """Write the two heat maps; return the number of heat-map panels (2)."""
    order = report['predicate_order']
    predicate_group = layout.predicate_group.numpy()[order]
    names = [predicate_names[p] for p in order]
    group_shares = _row_shares(report['group_counts'][:, order])
    query_counts = report['query_counts'][:, order]
    num_queries = len(query_counts)
    bin_size = int(np.ceil(num_queries / MAX_QUERY_ROWS))
    binned = np.add.reduceat(query_counts, np.arange(0, num_queries, bin_size), axis=0)
    query_shares = _row_shares(binned)
    width = 2 * max(6.0, 1.5 + 0.22 * len(names))
    height = max(4.5, 0.3 * len(report['groups']) + 3.5)
    fig, axes = plt.subplots(1, 2, figsize=(width, height), dpi=100, layout='constrained',
                             facecolor=FIGURE_BACKGROUND)
    group_axis, query_axis = axes
    image = group_axis.imshow(group_shares, cmap='Blues', vmin=0, vmax=1, aspect='auto')
    for g in range(len(report['groups'])):
        columns = np.flatnonzero(predicate_group == g)
        if len(columns):
            group_axis.add_patch(Rectangle((columns[0] - 0.5, g - 0.5), len(columns), 1, fill=False,
                                           edgecolor='#d62728', linewidth=2))
        for column in range(len(names)):
            value = group_shares[g, column]
            if value > 0:
                group_axis.text(column, g, f'{100 * value:.0f}', ha='center', va='center', fontsize=7,
                                color='white' if value > 0.6 else '#222222')
    group_axis.set_yticks(range(len(report['groups'])))
    group_axis.set_yticklabels([
        f'group {g["group"]}: q{g["queries"][0]}-{g["queries"][1]}\n{g["triplets"]} triplets, '
        + (f'{100 * g["specialisation"]:.0f}% own' if g['specialisation'] is not None else 'none')
        for g in report['groups']], fontsize=8)
    group_axis.set_title('share of each query group\'s triplets (%); boxed: the group\'s own predicates',
                         fontsize=9)
    query_axis.imshow(query_shares, cmap='Blues', vmin=0, vmax=1, aspect='auto', interpolation='nearest')
    for first, _ in layout.relation_query_ranges[1:]:
        query_axis.axhline(first / bin_size - 0.5, color='#d62728', linewidth=1.5)
    query_axis.set_ylabel(f'relation query (rows of {bin_size})' if bin_size > 1 else 'relation query',
                          fontsize=8)
    query_axis.set_title('share of each query\'s triplets; red lines: group boundaries', fontsize=9)
    for axis in axes:
        axis.set_facecolor(PANEL_BACKGROUND)
        axis.set_xticks(range(len(names)))
        axis.set_xticklabels(names, rotation=60, ha='right', fontsize=8)
        axis.set_xlabel('predicted predicate (most frequent in train first)', fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label='share')
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, facecolor=FIGURE_BACKGROUND)
    plt.close(fig)
    return 2


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dump', help='test dump (.pkl) from tools/test.py --out')
    parser.add_argument('--config', required=True, help='the model config (query and group settings)')
    parser.add_argument('--checkpoint', help='the tested checkpoint: its train predicate counts and names')
    parser.add_argument('--dataset-meta', help='.json/.pkl with predicates and fg_rel_count (default: the '
                        'checkpoint\'s)')
    parser.add_argument('--topk', type=int, default=100, help='triplets counted per image (0: all)')
    parser.add_argument('--out-dir', help='output folder (default: beside the dump)')
    from speaq_mm.utils import add_trust_argument
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Write the report; return it with ``figure`` and ``panels`` added."""
    args = parse_args(argv)
    from speaq_mm.utils import trust_files_from_args
    trust_files_from_args(args)
    settings, predicate_names, train_counts = load_inputs(args.checkpoint, args.config, args.dataset_meta)
    layout = group_layout(settings, train_counts)
    queries, predicates, num_images = load_query_triplets(args.dump, args.topk)
    report = specialisation_report(queries, predicates, layout, predicate_names, train_counts)
    out_dir = args.out_dir or osp.dirname(osp.abspath(args.dump))
    os.makedirs(out_dir, exist_ok=True)
    counted = f'top {args.topk}' if args.topk > 0 else 'all'
    title = (f'Query specialisation: {counted} triplets of {num_images} images, {len(queries)} triplets; '
             f'{100 * report["specialisation"]:.0f}% predicted by their own group'
             + ('' if settings['use_group_mask'] else ' (model trained without the group mask)'))
    figure = osp.join(out_dir, 'query_specialisation.png')
    panels = plot_report(figure, report, layout, predicate_names, title)
    payload = dict(settings=settings, images=num_images, triplets=int(len(queries)), topk=args.topk,
                   predicates=list(predicate_names), predicate_group=layout.predicate_group.tolist(),
                   groups=report['groups'], specialisation=report['specialisation'],
                   group_counts=report['group_counts'].tolist(), query_counts=report['query_counts'].tolist())
    from speaq_mm.utils.atomic_io import atomic_dump
    atomic_dump(payload, osp.join(out_dir, 'query_specialisation.json'))
    print(title)
    for group in report['groups']:
        share = '-' if group['specialisation'] is None else f'{100 * group["specialisation"]:.1f}%'
        print(f'group {group["group"]} (queries {group["queries"][0]}-{group["queries"][1]}, predicates '
              f'{", ".join(group["predicates"]) or "none"}): {group["triplets"]} triplets, {share} own')
    print(f'wrote {figure}')
    return dict(report, figure=figure, panels=panels)


if __name__ == '__main__':
    main()
