"""From per-image statistics (``sgg_core.compute_image_stats``) to the reported metrics: R@K, mR@K,
ng-R@K, ng-mR@K, zR@K, F@K, per-predicate and per-group recall, the settings a dataset's metainfo implies,
and the printed tables. The definitions are those of docs/evaluation.md.
"""
import math

import numpy as np
from terminaltables import AsciiTable

from .records import check_triplets, load_zeroshot_triplets, to_numpy
from .sgg_core import MODES


def _triplet_keys(triplets, bases):
    return (triplets[:, 0] * bases[1] + triplets[:, 1]) * bases[2] + triplets[:, 2]


def _mean(values):
    """Mean from an exactly rounded sum (``math.fsum``): any summation order gives the same float, so the
    vectorised metrics and a plain loop agree bit for bit."""
    return math.fsum(np.asarray(values, dtype=np.float64).tolist()) / len(values) if len(values) else 0.0


def harmonic_mean(recall, mean_recall):
    """F@K: the harmonic mean of R@K and mR@K (0 when both are 0)."""
    return 2 * recall * mean_recall / (recall + mean_recall) if recall + mean_recall > 0 else 0.0


def check_topk_and_predicates(stats, topk, num_predicates):
    """Raise unless every K of the sorted ``topk`` lies in 1..max_k of the per-image statistics; return the
    number of predicates, told by the statistics' score rows where ``num_predicates`` is None."""
    max_k = min(s['max_k'] for s in stats)
    if topk[0] < 1 or topk[-1] > max_k:
        raise ValueError(f'topk {topk} must lie in 1..{max_k} (the max_k of the per-image statistics)')
    widths = {s['num_predicates'] for s in stats if s['num_predicates'] > 0}
    if num_predicates is None:
        if len(widths) != 1:
            raise ValueError(f'cannot tell the number of predicates from the score rows (widths {widths}); '
                             'pass num_predicates')
        num_predicates = widths.pop()
    elif widths - {num_predicates}:
        raise ValueError(f'the score rows hold {sorted(widths)} predicates but num_predicates is '
                         f'{num_predicates}')
    return num_predicates


def summarize_image_stats(stats, topk=(20, 50, 100), num_predicates=None, seen_triplets=None,
                          zeroshot_triplets=None, predicate_groups=None, predicate_names=None,
                          train_counts=None, reference_compat=False):
    """Turn per-image statistics (``compute_image_stats``) into the metrics.

    Args:
        stats: list of per-image dicts, one per test image.
        topk: the K of R@K etc.; each must be <= the ``max_k`` the statistics were computed with.
        num_predicates: C; defaults to the width of the score rows.
        seen_triplets / zeroshot_triplets: at most one. ``seen_triplets`` (T, 3) (e.g. the training split's
            triplets): GT triplets absent from it are zero-shot. ``zeroshot_triplets`` (T, 3): GT triplets
            listed in it are zero-shot. Neither: no zR@K.
        predicate_groups: dict group name -> list of predicate indices, for ``<group>_mR@K``.
        predicate_names, train_counts: shown in the per-predicate table.
        reference_compat: skip images without predicted triplets, as the reference evaluator does, instead of
            counting their recall as 0.

    Returns:
        dict with the metric values (fractions) under ``R@K``, ``mR@K``, ``ngR@K``, ``ngmR@K`` (mean recall
        without graph constraint), ``zR@K``, ``F@K`` and ``<group>_mR@K``, ``per_predicate`` (list of dicts,
        with each predicate's ``R@K`` and ``ngR@K``) and ``images`` (counts).
    """
    topk = sorted({int(k) for k in topk})
    if not stats:
        raise ValueError('no images to evaluate')
    if seen_triplets is not None and zeroshot_triplets is not None:
        raise ValueError('pass seen_triplets or zeroshot_triplets, not both')
    num_predicates = check_topk_and_predicates(stats, topk, num_predicates)

    num_rels = np.array([len(s['gt_triplets']) for s in stats], dtype=np.int64)
    has_pred = np.array([s['num_pred_rels'] > 0 for s in stats])
    evaluated = (num_rels > 0) & (has_pred | (not reference_compat))
    kept = [s for s, keep in zip(stats, evaluated) if keep]
    if not kept:
        raise ValueError('none of the images has a GT relation (and, with reference_compat, a prediction)')
    num_images = len(kept)
    counts = num_rels[evaluated]
    triplets = np.concatenate([s['gt_triplets'] for s in kept]).astype(np.int64)
    if triplets[:, 2].max() >= num_predicates:
        raise ValueError(f'a GT relation has predicate {triplets[:, 2].max()} but there are only '
                         f'{num_predicates} predicates')
    ranks = {mode: np.concatenate([s[f'rank_{mode}'] for s in kept]) for mode in MODES}
    image = np.repeat(np.arange(num_images), counts)
    predicate = triplets[:, 2]

    # (image, predicate) cells present in the GT, for the per-image per-predicate recalls of mR@K.
    cell, cell_of_rel = np.unique(image * num_predicates + predicate, return_inverse=True)
    cell_count = np.bincount(cell_of_rel)
    cell_predicate = cell % num_predicates
    by_predicate = np.argsort(cell_predicate, kind='stable')
    predicate_bounds = np.searchsorted(cell_predicate[by_predicate], np.arange(num_predicates + 1))

    zeroshot = None
    if seen_triplets is not None or zeroshot_triplets is not None:
        listed = seen_triplets if seen_triplets is not None else zeroshot_triplets
        listed = np.asarray(listed, dtype=np.int64).reshape(-1, 3)
        bases = np.maximum(triplets.max(axis=0), listed.max(axis=0, initial=0)) + 1
        in_list = np.isin(_triplet_keys(triplets, bases), _triplet_keys(listed, bases))
        zeroshot = ~in_list if seen_triplets is not None else in_list
        zeroshot_count = np.bincount(image, weights=zeroshot, minlength=num_images)
        zeroshot_images = zeroshot_count > 0

    metrics = {}
    per_predicate_recall = {}
    for k in topk:
        for mode, name in (('graph', 'R'), ('no_graph', 'ngR')):
            hit = ranks[mode] < k
            metrics[f'{name}@{k}'] = _mean(np.bincount(image, weights=hit, minlength=num_images) / counts)
            cell_recall = np.bincount(cell_of_rel, weights=hit, minlength=len(cell)) / cell_count
            ordered = cell_recall[by_predicate]
            recall = np.array([_mean(ordered[predicate_bounds[c]:predicate_bounds[c + 1]])
                               for c in range(num_predicates)])
            per_predicate_recall[name, k] = recall
            metrics[f'{name[:-1]}mR@{k}'] = _mean(recall)
        recall = per_predicate_recall['R', k]
        hit = ranks['graph'] < k
        metrics[f'F@{k}'] = harmonic_mean(metrics[f'R@{k}'], metrics[f'mR@{k}'])
        if zeroshot is not None and zeroshot_images.any():
            zeroshot_hits = np.bincount(image, weights=hit & zeroshot, minlength=num_images)
            metrics[f'zR@{k}'] = _mean(zeroshot_hits[zeroshot_images] / zeroshot_count[zeroshot_images])
        for group, members in (predicate_groups or {}).items():
            if len(members):
                metrics[f'{group}_mR@{k}'] = _mean(recall[np.asarray(members, dtype=np.int64)])

    group_of = {int(c): group for group, members in (predicate_groups or {}).items() for c in members}
    test_counts = np.bincount(predicate, minlength=num_predicates)
    test_images = np.diff(predicate_bounds)
    per_predicate = []
    for c in range(num_predicates):
        row = {'predicate': c,
               'name': str(predicate_names[c]) if predicate_names is not None else str(c),
               'group': group_of.get(c),
               'train_count': int(train_counts[c]) if train_counts is not None else None,
               'test_count': int(test_counts[c]),
               'test_images': int(test_images[c])}
        row.update({f'{name}@{k}': float(per_predicate_recall[name, k][c]) for name in ('R', 'ngR') for k in topk})
        per_predicate.append(row)
    metrics['per_predicate'] = per_predicate
    metrics['images'] = {
        'total': len(stats),
        'evaluated': num_images,
        'without_gt_relation': int((num_rels == 0).sum()),
        'without_prediction': int(((num_rels > 0) & ~has_pred).sum()),
        'with_zeroshot_gt': int(zeroshot_images.sum()) if zeroshot is not None else 0,
        # Padded samples never get here (mmengine drops them); repeated ids mean a repeated image or a
        # dataset whose parts share ids, which only the caller can tell apart.
        'repeated_img_ids': len(stats) - len({str(s['img_id']) for s in stats}),
    }
    return metrics


def frequency_groups(train_counts, sizes=(4, 12), names=('head', 'body', 'tail')):
    """Split predicates into head / body / tail by training frequency.

    The ``sizes[0]`` most frequent predicates form the head, the next ``sizes[1]`` the body, the rest the tail
    (ties: lower index first). (4, 12) gives the head/body/tail sizes of PySGG's VG150 grouping.
    """
    counts = np.asarray(train_counts)
    if counts.ndim != 1 or len(sizes) != len(names) - 1 or min(sizes) < 0:
        raise ValueError(f'frequency groups need 1-D train counts and {len(names) - 1} non-negative sizes, '
                         f'got counts of shape {counts.shape} and sizes {sizes}')
    order = np.argsort(-counts, kind='stable')
    bounds = np.concatenate([[0], np.cumsum(sizes), [len(counts)]]).clip(max=len(counts))
    return {name: sorted(order[bounds[i]:bounds[i + 1]].tolist()) for i, name in enumerate(names)}


def resolve_predicate_groups(groups, predicate_names, num_predicates, where):
    """Map an explicit ``{group: [predicate name or index, ...]}`` onto predicate indices; one group may be
    ``'rest'``: every predicate the other groups leave out."""
    if not isinstance(groups, dict) or list(groups.values()).count('rest') > 1:
        raise ValueError(f'{where}: predicate_groups must be a dict group -> list of predicates (or, for one '
                         f"group, 'rest'), got {groups!r}")
    index_of = {str(name): i for i, name in enumerate(predicate_names or [])}
    resolved = {}
    for group, members in groups.items():
        if members == 'rest':
            continue
        indices = []
        for member in members:
            if isinstance(member, str):
                if member not in index_of:
                    raise ValueError(f'{where}: predicate_groups[{group!r}] names unknown predicate '
                                     f'{member!r}')
                indices.append(index_of[member])
            else:
                indices.append(int(member))
        if num_predicates is not None and not all(0 <= c < num_predicates for c in indices):
            raise ValueError(f'{where}: predicate_groups[{group!r}] holds indices outside '
                             f'0..{num_predicates - 1}')
        resolved[str(group)] = sorted(indices)
    for group, members in groups.items():
        if members == 'rest':
            if num_predicates is None:
                raise ValueError(f"{where}: predicate_groups[{group!r}] = 'rest' needs the number of "
                                 f"predicates (dataset metainfo 'predicates')")
            taken = {c for indices in resolved.values() for c in indices}
            resolved[str(group)] = [c for c in range(num_predicates) if c not in taken]
    return {str(group): resolved[str(group)] for group in groups}


def evaluation_settings(dataset_meta=None, zeroshot_triplets='train', group_sizes=(4, 12),
                        predicate_groups=None, where='evaluation'):
    """Turn dataset metainfo and the user's options into ``summarize_image_stats`` keyword arguments.

    Shared by ``SGGMetric`` and the offline tool so both read the options the same way.

    Args:
        dataset_meta: dict with any of ``predicates`` (names), ``fg_rel_count`` (train counts per predicate)
            and ``triplets`` (the training split's (subject class, object class, predicate) rows).
        zeroshot_triplets: ``'train'``: GT triplets missing from ``dataset_meta['triplets']`` are zero-shot; a
            path (``load_zeroshot_triplets``) or a (T, 3) array: the triplets listed are zero-shot; ``None``:
            no zR@K.
        group_sizes: sizes of the head and body groups by train frequency (``frequency_groups``); ``None``: no
            group mR. Skipped, with a note, when ``dataset_meta`` has no ``fg_rel_count``.
        predicate_groups: explicit ``{group: [predicate name or index]}``, used instead of ``group_sizes``.
        where: names the caller in error messages.

    Returns:
        (keyword arguments, list of notes worth logging).
    """
    meta = dataset_meta or {}
    names = list(meta['predicates']) if meta.get('predicates') is not None else None
    counts = to_numpy(meta['fg_rel_count']).astype(np.int64) if meta.get('fg_rel_count') is not None else None
    if names is not None and counts is not None and len(names) != len(counts):
        raise ValueError(f'{where}: dataset metainfo has {len(names)} predicates but {len(counts)} '
                         f'fg_rel_count entries')
    num_predicates = len(names) if names is not None else (len(counts) if counts is not None else None)
    settings = {'num_predicates': num_predicates, 'predicate_names': names, 'train_counts': counts}
    notes = []
    if isinstance(zeroshot_triplets, str) and zeroshot_triplets == 'train':
        if meta.get('triplets') is None:
            raise KeyError(f"{where}: zeroshot_triplets='train' needs the dataset metainfo key 'triplets' "
                           f"(the training split's triplets); give a triplet file or None instead")
        settings['seen_triplets'] = check_triplets(to_numpy(meta['triplets']),
                                                   f"{where}: metainfo 'triplets'")
    elif isinstance(zeroshot_triplets, str):
        settings['zeroshot_triplets'] = load_zeroshot_triplets(zeroshot_triplets)
    elif zeroshot_triplets is not None:
        settings['zeroshot_triplets'] = check_triplets(zeroshot_triplets, f'{where}: zeroshot_triplets')
    if predicate_groups is not None:
        settings['predicate_groups'] = resolve_predicate_groups(predicate_groups, names, num_predicates, where)
    elif group_sizes is not None:
        if counts is None:
            notes.append(f'{where}: no fg_rel_count in the dataset metainfo, so no head/body/tail mR')
        else:
            settings['predicate_groups'] = frequency_groups(counts, tuple(group_sizes))
    return settings, notes


def format_summary(summary, topk=None, per_predicate=True):
    """Return the overall table (metric x K, in %), optionally the per-predicate table, and the image counts,
    as plain text."""
    if topk is None:
        topk = sorted(int(key.split('@')[1]) for key in summary if key.startswith('R@'))
    families = ['R', 'mR', 'ngR', 'ngmR', 'zR', 'F']
    families += list(dict.fromkeys(key.split('@')[0] for key in summary if key.endswith(f'_mR@{topk[0]}')))
    rows = [[family] + [f'{100 * summary[f"{family}@{k}"]:.2f}' for k in topk]
            for family in families if f'{family}@{topk[0]}' in summary]
    parts = [_text_table(['metric (%)'] + [f'@{k}' for k in topk], rows)]
    if per_predicate:
        table_rows = [[str(p['predicate']), p['name'], p['group'] or '-',
                       '-' if p['train_count'] is None else str(p['train_count']), str(p['test_count'])]
                      + [f'{100 * p[f"R@{k}"]:.2f}' for k in topk] for p in summary.get('per_predicate', [])]
        header = ['id', 'predicate', 'group', 'train', 'test GT'] + [f'R@{k} %' for k in topk]
        parts.append(_text_table(header, table_rows))
    images = summary.get('images', {})
    parts.append('images: ' + ', '.join(f'{key.replace("_", " ")} {value}' for key, value in images.items()))
    return '\n'.join(parts)


def _text_table(header, rows):
    """A plain-text table; columns of numbers (and '-' for unknown) are right-aligned, names left-aligned."""
    table = AsciiTable([header] + rows)
    for column, cells in enumerate(zip(*rows)):
        if all(str(cell).replace('.', '').isdigit() or cell == '-' for cell in cells):
            table.justify_columns[column] = 'right'
    return table.table
