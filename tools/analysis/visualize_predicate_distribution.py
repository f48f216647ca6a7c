"""Compare the predicate distributions of scene-graph datasets in the VG h5 layout (e.g. real vs synthetic).

Datasets come either from a config (every VGH5Dataset of its train dataloader, a ConcatDataset mix included,
labelled by their ``source``) or from manual paths (``--real-h5/--real-mapping`` and, optionally,
``--synthetic-h5/--synthetic-mapping``). Counts are taken straight from the h5 (relations of the images of
``--split``). Writes to ``--output-dir``:

- ``top_predicates_comparison.png``: the 20 most frequent predicates of each dataset;
- ``predicate_distribution_comparison.png``: every predicate's share, datasets side by side;
- ``cumulative_predicate_distribution.png``: cumulative share against predicate rank;
- ``predicate_statistics_summary.png``: a table of summary numbers;
- ``predicate_counts.csv`` and ``predicate_statistics.json``: the numbers behind the figures.

Examples::

    python tools/analysis/visualize_predicate_distribution.py --config-file configs/speaq_multi.py \\
        --output-dir work_dirs/predicates
    python tools/analysis/visualize_predicate_distribution.py --real-h5 data/vg/VG-SGG-with-attri.h5 \\
        --real-mapping data/vg/VG-SGG-dicts-with-attri.json --output-dir work_dirs/predicates
"""
import argparse
import csv
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from speaq_mm.datasets.vg_format import VG_FILE_NAMES, concat_ranges, read_vg_dicts, read_vg_h5  # noqa: E402

SPLIT_CODES = {'all': (0, 1, 2), 'train': (0,), 'val': (1,), 'test': (2,)}
COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd')
TOP_K = 20


def predicate_counts(h5_path: str, mapping_path: str, split: str = 'all') -> Dict:
    """Count the predicates of the relations listed by the images of a split.

    Args:
        h5_path (str): VG-layout h5.
        mapping_path (str): dicts json with ``predicate_to_idx``.
        split (str): ``all``, ``train`` (h5 split 0, the val carve-out included), ``val`` (split 1) or
            ``test`` (split 2).

    Returns:
        dict: ``predicates`` (names), ``counts`` (int64 per predicate), ``images`` (images with relations).
    """
    _, predicates = read_vg_dicts(mapping_path)
    arrays, _ = read_vg_h5(h5_path)
    first, last = arrays['img_to_first_rel'].astype(np.int64), arrays['img_to_last_rel'].astype(np.int64)
    chosen = np.isin(arrays['split'], SPLIT_CODES[split]) & (first >= 0)
    rows = concat_ranges(first[chosen], last[chosen] - first[chosen] + 1)
    labels = arrays['predicates'][rows].astype(np.int64) - 1
    if len(labels) and (labels.min() < 0 or labels.max() >= len(predicates)):
        raise ValueError(f'{h5_path}: predicates outside 1..{len(predicates)} of {mapping_path}')
    return dict(predicates=predicates, counts=np.bincount(labels, minlength=len(predicates)),
                images=int(chosen.sum()))


def summarise(counts: np.ndarray) -> Dict[str, float]:
    """Summary numbers of one predicate histogram."""
    total = int(counts.sum())
    share = counts / max(total, 1)
    ranked = np.sort(share)[::-1]
    cumulative = np.cumsum(ranked)
    nonzero = share[share > 0]
    # Gini coefficient of the per-predicate counts (0 = uniform, 1 = all in one predicate).
    sorted_counts = np.sort(counts).astype(np.float64)
    n = len(sorted_counts)
    gini = float(
        (2 * np.arange(1, n + 1) - n - 1) @ sorted_counts / (n * sorted_counts.sum())) if total else 0.0
    return dict(relations=total, predicates_used=int((counts > 0).sum()), predicates_total=len(counts),
                top1_share=float(ranked[0]) if total else 0.0, top5_share=float(cumulative[min(4, n - 1)]),
                predicates_for_80_percent=int(np.searchsorted(cumulative, 0.8) + 1) if total else 0,
                entropy_bits=float(-(nonzero * np.log2(nonzero)).sum()), gini=gini,
                imbalance_ratio=float(counts.max() / counts[counts > 0].min()) if total else 0.0)


def datasets_from_config(config_file: str) -> List[Dict[str, str]]:
    """Name, h5 and dicts path of every VGH5Dataset in a config's train dataloader."""
    from mmengine.config import Config
    cfg = Config.fromfile(config_file)
    dataset = cfg.train_dataloader.dataset
    parts = dataset.get('datasets', [dataset])
    found = []
    for i, part in enumerate(parts):
        part = part.get('dataset', part)  # wrappers such as RepeatDataset
        if part.get('type') != 'VGH5Dataset':
            raise ValueError(
                f'{config_file}: train_dataloader dataset {i} is a {part.get("type")}, not a VGH5Dataset')
        root = part.get('data_root', '')

        def under_root(path, root=root):
            return osp.join(root, path) if root and not osp.isabs(path) else path

        found.append(dict(name=part.get('source', 'real'),
                          h5=under_root(part.get('ann_file', VG_FILE_NAMES['ann_file'])),
                          mapping=under_root(part.get('dicts_file', VG_FILE_NAMES['dicts_file']))))
    return found


def plot_top(names: Sequence[str], stats: Sequence[Dict], path: str) -> None:
    """One horizontal bar chart of the TOP_K most frequent predicates per dataset."""
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 7), squeeze=False)
    for ax, name, data, colour in zip(axes[0], names, stats, COLOURS):
        share = data['counts'] / max(data['counts'].sum(), 1) * 100
        order = np.argsort(-share, kind='stable')[:TOP_K]
        ax.barh(range(len(order))[::-1], share[order], color=colour)
        ax.set_yticks(range(len(order))[::-1], [data['predicates'][i] for i in order])
        for y, value in zip(range(len(order))[::-1], share[order]):
            ax.text(value, y, f' {value:.1f}%', va='center', fontsize=8)
        ax.set_xlabel('share of relations (%)')
        ax.set_title(f'{name}: top {min(TOP_K, len(order))} of {len(share)} predicates\n'
                     f'({int(data["counts"].sum()):,} relations)')
        ax.set_xlim(0, share.max() * 1.2 if share.max() > 0 else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_all(names: Sequence[str], stats: Sequence[Dict], path: str) -> None:
    """Every predicate's share (log scale), datasets side by side, ordered by the first dataset."""
    predicates = stats[0]['predicates']
    shares = [data['counts'] / max(data['counts'].sum(), 1) * 100 for data in stats]
    order = np.argsort(-shares[0], kind='stable')
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.32 * len(predicates) * len(names) + 2), 6))
    x = np.arange(len(predicates))
    for k, (name, share, colour) in enumerate(zip(names, shares, COLOURS)):
        ax.bar(x + (k - (len(names) - 1) / 2) * width, share[order], width, label=name, color=colour)
    nonzero = np.concatenate([share[share > 0] for share in shares])
    # A log axis only helps a long tail; for a few similar shares it exaggerates small differences.
    log_scale = len(nonzero) > 0 and nonzero.max() / nonzero.min() > 50
    if log_scale:
        ax.set_yscale('log')
    ax.set_xticks(x, [predicates[i] for i in order], rotation=75, ha='right', fontsize=8)
    ax.set_ylabel('share of relations (%' + (', log scale)' if log_scale else ')'))
    ax.set_title(f'Predicate distribution, ordered by {names[0]} (absent predicates have no bar)')
    ax.legend()
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_cumulative(names: Sequence[str], stats: Sequence[Dict], path: str) -> None:
    """Cumulative share of relations covered by the k most frequent predicates of each dataset."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, data, colour in zip(names, stats, COLOURS):
        share = np.sort(data['counts'] / max(data['counts'].sum(), 1))[::-1] * 100
        cumulative = np.cumsum(share)
        ranks = np.arange(1, len(share) + 1)
        k80 = int(np.searchsorted(cumulative, 80) + 1)
        ax.plot(ranks, cumulative, marker='o', markersize=3, color=colour,
                label=f'{name} (80% of relations in the top {k80} predicates)')
        ax.plot([k80], [cumulative[k80 - 1]], marker='o', markersize=9, markerfacecolor='none', color=colour)
    ax.axhline(80, color='grey', linestyle='--', linewidth=0.8)
    ax.set_xlabel('predicate rank (most frequent first)')
    ax.set_ylabel('cumulative share of relations (%)')
    ax.set_ylim(0, 101)
    ax.set_title('Cumulative predicate distribution')
    ax.legend(loc='lower right')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


SUMMARY_ROWS = (('images with relations', 'images', '{:,}'), ('relations', 'relations', '{:,}'),
                ('predicates used / total', None, None), ('top-1 predicate', 'top1_name', '{}'),
                ('top-1 share', 'top1_share', '{:.1%}'), ('top-5 share', 'top5_share', '{:.1%}'),
                ('predicates covering 80%', 'predicates_for_80_percent', '{}'),
                ('entropy (bits)', 'entropy_bits', '{:.2f}'), ('Gini coefficient', 'gini', '{:.3f}'),
                ('max / min non-zero count', 'imbalance_ratio', '{:,.0f}'))


def plot_summary(names: Sequence[str], summaries: Sequence[Dict], path: str) -> None:
    """The summary numbers as a table figure."""
    cells = []
    for label, key, fmt in SUMMARY_ROWS:
        if key is None:
            cells.append([label] + [f'{s["predicates_used"]} / {s["predicates_total"]}' for s in summaries])
        else:
            cells.append([label] + [fmt.format(s[key]) for s in summaries])
    fig, ax = plt.subplots(figsize=(3.5 + 2.5 * len(names), 0.3 * len(cells) + 0.8))
    ax.axis('off')
    table = ax.table(cellText=cells, colLabels=['statistic'] + list(names), loc='center', cellLoc='left')
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.5)
    ax.set_title('Predicate statistics', fontweight='bold')
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)


def write_numbers(names: Sequence[str], stats: Sequence[Dict], summaries: Sequence[Dict],
                  out_dir: str) -> None:
    """``predicate_counts.csv`` (one row per predicate) and ``predicate_statistics.json``."""
    predicates = stats[0]['predicates']
    with open(osp.join(out_dir, 'predicate_counts.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['predicate'] +
                        [f'{name}_{column}' for name in names for column in ('count', 'share')])
        for i, predicate in enumerate(predicates):
            row = [predicate]
            for data in stats:
                row += [int(data['counts'][i]), f'{data["counts"][i] / max(data["counts"].sum(), 1):.6f}']
            writer.writerow(row)
    content = {name: dict(summary, counts={p: int(c) for p, c in zip(predicates, data['counts'])})
               for name, data, summary in zip(names, stats, summaries)}
    from speaq_mm.utils.atomic_io import atomic_dump
    atomic_dump(content, osp.join(out_dir, 'predicate_statistics.json'))


def visualize(datasets: Sequence[Dict[str, str]], out_dir: str, split: str = 'all') -> Dict[str, Dict]:
    """Count, plot and write everything for the given datasets (dicts with ``name``, ``h5``, ``mapping``).

    Returns:
        dict: the summary numbers per dataset name.
    """
    if not datasets:
        raise ValueError('no dataset given: use --config-file or --real-h5/--real-mapping')
    if len(datasets) > len(COLOURS):
        raise ValueError(f'at most {len(COLOURS)} datasets can be compared, got {len(datasets)}')
    names = [d['name'] for d in datasets]
    if len(set(names)) != len(names):
        names = [f'{d["name"]} ({osp.basename(d["h5"])})' for d in datasets]
    stats = [predicate_counts(d['h5'], d['mapping'], split) for d in datasets]
    for d, data in zip(datasets[1:], stats[1:]):
        if data['predicates'] != stats[0]['predicates']:
            raise ValueError(
                f'{d["mapping"]}: its predicates differ from those of {datasets[0]["mapping"]}; only '
                'datasets with the same vocabulary can be compared')
    summaries = []
    for data in stats:
        summary = summarise(data['counts'])
        summary.update(images=data['images'], top1_name=data['predicates'][int(np.argmax(data['counts']))])
        summaries.append(summary)
    os.makedirs(out_dir, exist_ok=True)
    plot_top(names, stats, osp.join(out_dir, 'top_predicates_comparison.png'))
    plot_all(names, stats, osp.join(out_dir, 'predicate_distribution_comparison.png'))
    plot_cumulative(names, stats, osp.join(out_dir, 'cumulative_predicate_distribution.png'))
    plot_summary(names, summaries, osp.join(out_dir, 'predicate_statistics_summary.png'))
    write_numbers(names, stats, summaries, out_dir)
    return dict(zip(names, summaries))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config-file', help='config whose train dataloader names the dataset(s)')
    parser.add_argument('--real-h5', help='h5 of the first (real) dataset')
    parser.add_argument('--real-mapping', help='dicts json of the first (real) dataset')
    parser.add_argument('--synthetic-h5', help='h5 of the second (synthetic) dataset, optional')
    parser.add_argument('--synthetic-mapping',
                        help='dicts json of the second dataset (default: --real-mapping)')
    parser.add_argument('--split', choices=sorted(SPLIT_CODES), default='all',
                        help='images whose relations are counted, by h5 split code (train = split 0)')
    parser.add_argument('--output-dir', required=True, help='folder for the PNG, CSV and JSON files')
    args = parser.parse_args(argv)
    if bool(args.config_file) == bool(args.real_h5):
        parser.error('give either --config-file or --real-h5/--real-mapping')
    if args.real_h5 and not args.real_mapping:
        parser.error('--real-h5 needs --real-mapping')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict]:
    """Run the tool from the command line."""
    args = parse_args(argv)
    if args.config_file:
        datasets = datasets_from_config(args.config_file)
    else:
        datasets = [dict(name='real', h5=args.real_h5, mapping=args.real_mapping)]
        if args.synthetic_h5:
            datasets.append(dict(name='synthetic', h5=args.synthetic_h5,
                                 mapping=args.synthetic_mapping or args.real_mapping))
    summaries = visualize(datasets, args.output_dir, args.split)
    for name, summary in summaries.items():
        print(f'{name}: {summary["relations"]:,} relations, {summary["predicates_used"]} predicates used, '
              f'top-1 "{summary["top1_name"]}" {summary["top1_share"]:.1%}')
    print(f'wrote the figures and numbers to {args.output_dir}')
    return summaries


if __name__ == '__main__':
    main()
