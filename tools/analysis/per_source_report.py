"""Compare per-predicate recall of models trained with different data mixes (real:synthetic ratios, loss
weights, sources): a table and a plot from their scene graph metric JSON files.

    python tools/analysis/per_source_report.py RESULT.json [RESULT.json ...] [--labels A B ...] [--k 50]
        [--out-dir DIR]

Each RESULT.json is what ``SGGMetric(json_file=...)``, ``tools/test.py`` or
``tools/analysis/eval_scene_graphs.py --out-json`` writes for one model on the same val/test split: the
overall metrics and a ``per_predicate`` table (docs/evaluation.md). The first file is the baseline.

Writes into ``--out-dir`` (default: beside the first file):

* ``per_source_report.png``: per-predicate R@K of every run (predicates by train frequency, head/body/tail
  marked), each run's change against the baseline, and the overall metrics at K;
* ``per_source_report.md`` / ``.csv``: the same numbers as tables (percent), also printed.
"""
import argparse
import csv
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from speaq_mm.visualization.figure_style import FIGURE_BACKGROUND, PANEL_BACKGROUND  # noqa: E402

OVERALL_FAMILIES = ('R', 'mR', 'ngR', 'zR', 'F', 'head_mR', 'body_mR', 'tail_mR')


def load_result(path: str) -> dict:
    """A metric JSON file, checked for the fields the report reads."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'result file {path} does not exist')
    with open(path) as file:
        try:
            result = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path}: not valid JSON ({error})') from error
    rows = result.get('per_predicate') if isinstance(result, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ValueError(f'{path}: no "per_predicate" table; write the file with SGGMetric(json_file=...), '
                         'tools/test.py or tools/analysis/eval_scene_graphs.py --out-json')
    for index, row in enumerate(rows):
        missing = [key for key in ('predicate', 'name') if key not in row]
        if missing:
            raise ValueError(f'{path}: per_predicate[{index}] has no {", ".join(missing)}')
    return result


def default_label(path: str) -> str:
    """The file name without extension, or its folder's name when the file name is a generic one."""
    stem = osp.splitext(osp.basename(path))[0]
    if stem in ('metrics', 'results', 'result', 'test', 'val') or stem.endswith('_metrics'):
        folder = osp.basename(osp.dirname(osp.abspath(path)))
        return f'{folder}/{stem}' if stem not in ('metrics', 'results', 'result') else folder
    return stem


def choose_k(results: Sequence[dict], k: Optional[int], paths: Sequence[str]) -> int:
    """The K reported: ``k`` when every file has it, else 50 or the largest K all files share."""
    shared = None
    for result, path in zip(results, paths):
        ks = {int(key.split('@', 1)[1]) for key in result['per_predicate'][0] if key.startswith('R@')}
        if not ks:
            raise ValueError(f'{path}: per_predicate rows hold no R@K values')
        shared = ks if shared is None else shared & ks
    if k is not None:
        if k not in shared:
            raise ValueError(f'--k {k}: not in every file (shared K: {sorted(shared)})')
        return k
    if not shared:
        raise ValueError('the files share no K of R@K')
    return 50 if 50 in shared else max(shared)


def comparison_table(results: Sequence[dict], paths: Sequence[str], k: int) -> List[dict]:
    """One row per predicate, baseline train order (most frequent first): name, group, train/test counts
    of the baseline file and R@K of every run."""
    names = [tuple(row['name'] for row in sorted(r['per_predicate'], key=lambda row: row['predicate']))
             for r in results]
    for path, other in zip(paths[1:], names[1:]):
        if other != names[0]:
            raise ValueError(f'{path}: its predicates differ from those of {paths[0]}; compare runs evaluated on '
                             'the same vocabulary')
    base = sorted(results[0]['per_predicate'], key=lambda row: row['predicate'])
    recalls = np.array([[row[f'R@{k}'] for row in sorted(r['per_predicate'], key=lambda row: row['predicate'])]
                        for r in results])
    train = [row.get('train_count') for row in base]
    order = sorted(range(len(base)), key=lambda i: (-(train[i] or 0), i)) if any(train) else range(len(base))
    return [dict(predicate=base[i]['predicate'], name=base[i]['name'], group=base[i].get('group') or '',
                 train_count=train[i], test_count=base[i].get('test_count'), recalls=recalls[:, i].tolist())
            for i in order]


def overall_table(results: Sequence[dict], k: int) -> List[dict]:
    """The overall metrics at K that the files hold (R, mR, ngR, zR, F, group mR)."""
    rows = []
    for family in OVERALL_FAMILIES:
        key = f'{family}@{k}'
        if any(key in result for result in results):
            rows.append(dict(metric=key, values=[result.get(key) for result in results]))
    return rows


def _percent(value) -> str:
    return '-' if value is None else f'{100 * value:.1f}'


def write_tables(out_dir: str, labels: Sequence[str], table: List[dict], overall: List[dict], k: int) -> str:
    """Write ``per_source_report.md`` and ``.csv``; return the markdown."""
    deltas = [f'{label} - {labels[0]}' for label in labels[1:]]
    header = ['predicate', 'group', 'train', 'test GT'] + [f'{label} R@{k}' for label in labels] + deltas
    lines = [f'Per-predicate R@{k} (%), predicates by train frequency ({labels[0]} is the baseline)', '',
             '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    csv_rows = []
    for row in table:
        values = row['recalls']
        cells = [row['name'], row['group'] or '-', str(row['train_count']), str(row['test_count'])]
        cells += [_percent(v) for v in values] + [f'{100 * (v - values[0]):+.1f}' for v in values[1:]]
        lines.append('| ' + ' | '.join(cells) + ' |')
        csv_rows.append(cells)
    lines += ['', f'Overall at K = {k} (%)', '', '| metric | ' + ' | '.join(labels) + ' |',
              '|' + '---|' * (len(labels) + 1)]
    for row in overall:
        lines.append(f'| {row["metric"]} | ' + ' | '.join(_percent(v) for v in row['values']) + ' |')
        csv_rows.append([row['metric'], 'overall', '', ''] + [_percent(v) for v in row['values']]
                        + [''] * len(deltas))
    markdown = '\n'.join(lines) + '\n'
    with open(osp.join(out_dir, 'per_source_report.md'), 'w') as file:
        file.write(markdown)
    with open(osp.join(out_dir, 'per_source_report.csv'), 'w', newline='') as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(csv_rows)
    return markdown


def _legend_above_bars(axis, highest: float, runs: int) -> None:
    """Room above the highest bar for a one-row legend."""
    axis.set_ylim(0, max(highest, 1.0) * 1.3)
    axis.legend(fontsize=7, loc='upper left', ncol=min(runs, 3))


def plot_report(path: str, labels: Sequence[str], table: List[dict], overall: List[dict], k: int) -> int:
    """Per-predicate bars, deltas against the baseline (with more than one run) and overall bars; return
    the number of panels."""
    runs = len(labels)
    panels = 3 if runs > 1 else 2
    names = [row['name'] + (f' ({row["group"][0]})' if row['group'] else '') for row in table]
    recalls = 100 * np.array([row['recalls'] for row in table]).T  # (runs, predicates)
    width = max(10.0, 0.35 * len(names) * max(runs, 2) / 2 + 3)
    heights = [3.2, 2.4, 2.6][:panels]
    fig, axes = plt.subplots(panels, 1, figsize=(width, sum(heights) + 1.2), dpi=100, layout='constrained',
                             facecolor=FIGURE_BACKGROUND, gridspec_kw=dict(height_ratios=heights))
    colours = plt.get_cmap('tab10')
    bar = 0.8 / runs
    x = np.arange(len(names))
    axis = axes[0]
    for r, label in enumerate(labels):
        axis.bar(x + (r - (runs - 1) / 2) * bar, recalls[r], bar, color=colours(r % 10), label=label)
    axis.set_title(f'per-predicate R@{k} (predicates by train frequency; h/b/t = head/body/tail)', fontsize=10)
    axis.set_ylabel(f'R@{k} (%)', fontsize=8)
    axis.set_xticks(x)
    axis.set_xticklabels(names, rotation=60, ha='right', fontsize=7)
    _legend_above_bars(axis, np.nanmax(recalls) if recalls.size else 0, runs)
    if runs > 1:
        axis = axes[1]
        for r, label in enumerate(labels[1:], 1):
            axis.bar(x + (r - runs / 2) * (0.8 / (runs - 1)), recalls[r] - recalls[0], 0.8 / (runs - 1),
                     color=colours(r % 10), label=f'{label} - {labels[0]}')
        axis.axhline(0, color='black', linewidth=0.8)
        axis.set_title(f'change of per-predicate R@{k} against {labels[0]} (points)', fontsize=10)
        axis.set_ylabel('points', fontsize=8)
        axis.set_xticks(x)
        axis.set_xticklabels(names, rotation=60, ha='right', fontsize=7)
        axis.legend(fontsize=7)
    axis = axes[-1]
    metrics = [row['metric'] for row in overall]
    values = 100 * np.array([[np.nan if v is None else v for v in row['values']] for row in overall]).T
    xm = np.arange(len(metrics))
    for r, label in enumerate(labels):
        axis.bar(xm + (r - (runs - 1) / 2) * bar, values[r] if len(metrics) else [], bar, color=colours(r % 10),
                 label=label)
    axis.set_title(f'overall metrics at K = {k}', fontsize=10)
    axis.set_ylabel('%', fontsize=8)
    axis.set_xticks(xm)
    axis.set_xticklabels(metrics, fontsize=8)
    _legend_above_bars(axis, np.nanmax(values) if np.isfinite(values).any() else 0, runs)
    for axis in axes:
        axis.set_facecolor(PANEL_BACKGROUND)
        axis.grid(axis='y', alpha=0.3)
        axis.tick_params(axis='y', labelsize=7)
    fig.savefig(path, facecolor=FIGURE_BACKGROUND)
    plt.close(fig)
    return panels


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results', nargs='+', metavar='RESULT.json', help='metric JSON files, baseline first')
    parser.add_argument('--labels', nargs='+', help='one name per file (default: from the file names)')
    parser.add_argument('--k', type=int, help='the K of R@K (default: 50, or the largest K all files have)')
    parser.add_argument('--out-dir', help='output folder (default: beside the first file)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Write the report; return ``table``, ``overall``, ``k``, ``figure`` and ``panels``."""
    args = parse_args(argv)
    if args.labels and len(args.labels) != len(args.results):
        raise ValueError(f'--labels needs one name per file: {len(args.results)} files, {len(args.labels)} names')
    results = [load_result(path) for path in args.results]
    labels = args.labels or [default_label(path) for path in args.results]
    k = choose_k(results, args.k, args.results)
    table = comparison_table(results, args.results, k)
    overall = overall_table(results, k)
    out_dir = args.out_dir or osp.dirname(osp.abspath(args.results[0]))
    os.makedirs(out_dir, exist_ok=True)
    print(write_tables(out_dir, labels, table, overall, k))
    figure = osp.join(out_dir, 'per_source_report.png')
    panels = plot_report(figure, labels, table, overall, k)
    print(f'wrote {figure}')
    return dict(table=table, overall=overall, k=k, figure=figure, panels=panels)


if __name__ == '__main__':
    main()
