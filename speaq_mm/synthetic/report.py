"""The curation report of the pseudo-labelling step: what the filters kept and dropped and why, how the
predicate shares moved against the real train split, and the per-predicate confidence of what was kept
(docs/synthetic_data.md, "The curation report").
"""
import os
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .filters import CURATION_REASONS, CurationLog

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
HISTOGRAM_BINS = 20


def _counts(graphs: Sequence[dict]) -> Dict[str, int]:
    return dict(images=len(graphs), objects=sum(len(g['objects']) for g in graphs),
                relations=sum(len(g['relations']) for g in graphs))


def _predicate_scores(graphs: Sequence[dict]) -> Dict[str, List[float]]:
    scores: Dict[str, List[float]] = {}
    for graph in graphs:
        for relation in graph['relations']:
            scores.setdefault(relation['predicate'], []).append(float(relation['score']))
    return scores


def _shares(counter: Counter) -> Dict[str, float]:
    total = sum(counter.values())
    return {name: count / total for name, count in counter.items()} if total else {}


def _distribution(scores: List[float]) -> dict:
    if not scores:
        return dict(count=0)
    values = np.asarray(scores, np.float64)
    histogram = np.histogram(np.clip(values, 0, 1), bins=HISTOGRAM_BINS, range=(0, 1))[0]
    return dict(count=len(values), mean=float(values.mean()),
                quantiles={str(q): float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES))},
                histogram=histogram.tolist())


def curation_report(before: Sequence[dict], after: Sequence[dict], log: CurationLog, predicates: Sequence[str],
                    real_triplets: Optional[Sequence[Tuple[str, str, str]]] = None, options: Optional[dict] = None
                    ) -> dict:
    """The report as JSON-ready content.

    Args:
        before (Sequence[dict]): the predictions as read (one scene graph per image).
        after (Sequence[dict]): what the filters kept.
        log (CurationLog): the drops of :func:`~speaq_mm.synthetic.filters.curate`.
        predicates (Sequence[str]): the vocabulary, in label order (the report lists every predicate).
        real_triplets (Sequence[tuple], optional): the real train relations as (subject, predicate, object)
            names, for the reference shares.
        options (dict, optional): the filter settings, copied into the report.

    Returns:
        dict: ``counts`` (read / kept per level), ``dropped`` (reason -> count, level, meaning),
        ``predicates`` (per predicate: ``real_share``, ``share_before``, ``share_after``, ``count_before``,
        ``count_after``, ``confidence_before`` / ``confidence_after``: count, mean, quantiles, a 20-bin
        histogram over [0, 1]) and ``options``.
    """
    scores_before, scores_after = _predicate_scores(before), _predicate_scores(after)
    count_before = Counter({p: len(v) for p, v in scores_before.items()})
    count_after = Counter({p: len(v) for p, v in scores_after.items()})
    real = Counter(p for _, p, _ in real_triplets) if real_triplets is not None else Counter()
    shares = [_shares(real), _shares(count_before), _shares(count_after)]
    names = list(predicates) + sorted(set(count_before) - set(predicates))
    return dict(
        counts=dict(read=_counts(before), kept=_counts(after)),
        dropped={reason: dict(count=log.dropped[reason], level=reason.split(':')[0], meaning=meaning)
                 for reason, meaning in CURATION_REASONS.items() if log.dropped[reason]},
        predicates={name: dict(real_share=shares[0].get(name, 0.0) if real_triplets is not None else None,
                               share_before=shares[1].get(name, 0.0), share_after=shares[2].get(name, 0.0),
                               count_before=count_before[name], count_after=count_after[name],
                               confidence_before=_distribution(scores_before.get(name, [])),
                               confidence_after=_distribution(scores_after.get(name, [])))
                    for name in names},
        options=dict(options or {}))


def report_text(report: dict) -> str:
    """A readable summary: counts, drops per reason, the predicates whose share moved most."""
    read, kept = report['counts']['read'], report['counts']['kept']
    lines = [f'{level}: {read[level]} read, {kept[level]} kept' for level in ('images', 'objects', 'relations')]
    drops = [f'  {reason}: {entry["count"]} ({entry["meaning"]})' for reason, entry in report['dropped'].items()]
    lines += ['dropped:'] + drops if drops else ['nothing dropped']
    moved = sorted(report['predicates'].items(),
                   key=lambda item: -abs(item[1]['share_after'] - item[1]['share_before']))
    with_real = bool(moved) and moved[0][1]['real_share'] is not None
    lines.append('predicate shares (before -> after' + (', real' if with_real else '') + '), largest changes:')
    for name, entry in moved[:8]:
        real = f', real {entry["real_share"]:.1%}' if entry['real_share'] is not None else ''
        lines.append(f'  {name}: {entry["share_before"]:.1%} -> {entry["share_after"]:.1%}{real}')
    return '\n'.join(lines)


def plot_curation_report(report: dict, out_dir: str) -> Dict[str, str]:
    """``curation_drops.png``, ``predicate_shares.png`` and ``predicate_confidence.png`` in ``out_dir``.

    Returns:
        dict: figure name -> path.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from ..visualization.figure_style import FIGURE_BACKGROUND, PANEL_BACKGROUND
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    colours = dict(image='tab:red', object='tab:orange', relation='tab:blue')

    # 1. Drops per reason, with the read/kept counts in the title.
    reasons = list(report['dropped'])
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * max(len(reasons), 1)), facecolor=FIGURE_BACKGROUND)
    ax.set_facecolor(PANEL_BACKGROUND)
    values = [report['dropped'][r]['count'] for r in reasons]
    ax.barh(range(len(reasons)), values, color=[colours[report['dropped'][r]['level']] for r in reasons])
    for y, value in enumerate(values):
        ax.text(value, y, f' {value}', va='center', fontsize=8)
    ax.set_yticks(range(len(reasons)), reasons, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel('items dropped')
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=colour, label=f'{level}s') for level, colour in colours.items()], fontsize=8,
              loc='upper center', bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
    read, kept = report['counts']['read'], report['counts']['kept']
    ax.set_title('kept / read: ' + ', '.join(f'{level} {kept[level]}/{read[level]}'
                                             for level in ('images', 'objects', 'relations')), fontsize=9)
    ax.grid(axis='x', alpha=0.3)
    paths['drops'] = osp.join(out_dir, 'curation_drops.png')
    fig.savefig(paths['drops'], dpi=100, bbox_inches='tight', facecolor=FIGURE_BACKGROUND)
    plt.close(fig)

    # 2. Predicate shares: real train split, predictions, curated set (predicates by real share).
    entries = report['predicates']
    with_real = any(e['real_share'] is not None for e in entries.values())
    names = sorted(entries, key=lambda n: -(entries[n]['real_share'] or 0) if with_real
                   else -entries[n]['share_before'])
    series = ([('real train split', 'real_share', 'tab:gray')] if with_real else []) + [
        ('predictions', 'share_before', 'tab:orange'), ('curated', 'share_after', 'tab:blue')]
    height = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.3 * len(names) * len(series) / 2), facecolor=FIGURE_BACKGROUND)
    ax.set_facecolor(PANEL_BACKGROUND)
    for k, (label, key, colour) in enumerate(series):
        ax.barh(np.arange(len(names)) + (k - (len(series) - 1) / 2) * height,
                [100 * (entries[n][key] or 0) for n in names], height=height, color=colour, label=label)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel('share of the relations (%)')
    ax.set_title('predicate shares before and after curation', fontsize=9)
    # Below the panel, so that it never hides a bar.
    ax.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.12), ncol=len(series), frameon=False)
    ax.grid(axis='x', alpha=0.3)
    paths['shares'] = osp.join(out_dir, 'predicate_shares.png')
    fig.savefig(paths['shares'], dpi=100, bbox_inches='tight', facecolor=FIGURE_BACKGROUND)
    plt.close(fig)

    # 3. Confidence per predicate: 10-90 % range (line), 25-75 % (bar), median (dot), before and after.
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.45 * len(names)), facecolor=FIGURE_BACKGROUND)
    ax.set_facecolor(PANEL_BACKGROUND)
    for k, (label, key, colour) in enumerate((('predictions', 'confidence_before', 'tab:orange'),
                                              ('curated', 'confidence_after', 'tab:blue'))):
        first = True
        for y, name in enumerate(names):
            dist = entries[name][key]
            if not dist['count']:
                continue
            q = dist['quantiles']
            row = y + (k - 0.5) * 0.35
            ax.plot([q['0.1'], q['0.9']], [row, row], color=colour, linewidth=1)
            ax.plot([q['0.25'], q['0.75']], [row, row], color=colour, linewidth=5, alpha=0.6,
                    label=f'{label} (10-90 %, 25-75 %, median)' if first else None)
            ax.plot(q['0.5'], row, 'o', color=colour, markeredgecolor='black', markersize=5)
            ax.text(1.01, row, f'n={dist["count"]}', fontsize=6, va='center', transform=ax.get_yaxis_transform())
            first = False
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)
    # Triplet scores are products of three probabilities and often small: the axis ends just past the
    # largest 90 % quantile.
    highest = max([entries[n][key]['quantiles']['0.9'] for n in names
                   for key in ('confidence_before', 'confidence_after') if entries[n][key]['count']] or [1.0])
    ax.set_xlim(0, min(1.0, max(0.05, 1.15 * highest)))
    ax.set_xlabel('triplet score')
    ax.set_title('confidence per predicate', fontsize=9)
    ax.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    ax.grid(axis='x', alpha=0.3)
    paths['confidence'] = osp.join(out_dir, 'predicate_confidence.png')
    fig.savefig(paths['confidence'], dpi=100, bbox_inches='tight', facecolor=FIGURE_BACKGROUND)
    plt.close(fig)
    return paths
