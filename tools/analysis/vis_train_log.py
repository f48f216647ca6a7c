"""Plot mmengine training logs: losses (total, per decoder layer, per data source), validation metrics,
learning rate and the k statistics of SpeaQ's dynamic assignment, with a table of last/best values.

    python tools/analysis/vis_train_log.py --log-file WORK_DIR [WORK_DIR2 ...] [--legend A B ...]
        [--smooth 0.6] [--out-dir DIR]

``--log-file`` takes mmengine's JSON scalar log (``WORK_DIR/<timestamp>/vis_data/scalars.json``), its text
log (``WORK_DIR/<timestamp>/<timestamp>.log``, whose session's scalars are read), a ``<timestamp>`` folder, or a
whole work dir. A work dir's sessions (one ``<timestamp>`` folder per start,
e.g. after ``--resume``) are joined in time order, a later session replacing the iterations it repeats;
sessions without training records (``tools/test.py`` runs) are left out. A log that is still being written
or that stops mid-line is read up to its last complete line. Several logs are overlaid, named by
``--legend`` (default: the folder names).

Writes into ``--out-dir`` (default: ``vis_train_log`` beside the first log) the PNGs below, each only when its
values were logged, plus ``summary.md`` and ``summary.csv`` (last and best value of every plotted scalar,
per run), which are also printed:

* ``loss.png``: the total loss and the sum of each decoder layer's terms (``d0.``, ``d1.``, ..., final);
* ``loss_components.png``: one panel per loss term, one line per decoder layer;
* ``loss_per_source.png``: per data source (``real.relation_ce``, ...) and the batch share and loss weight
  of each source (``source_frac_*``, ``source_weight_*``);
* ``val_metrics.png``: one panel per metric family (R@K, mR@K, ngR@K, ...), one line per K;
* ``lr.png``: learning rates; ``k_statistics.png``: mean GT copies per relation per decoder layer
  (``k_mean``); ``train_other.png``: the remaining training scalars (gradient norm, class errors, ...).

Validation records are placed at the training iteration reached when they were written (mmengine labels
them with the epoch, which is 0 in iteration-based runs, unless ``LoggerHook(log_metric_by_epoch=False)``).
"""
import argparse
import csv
import glob
import json
import math
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from speaq_mm.visualization.figure_style import FIGURE_BACKGROUND, PANEL_BACKGROUND  # noqa: E402

# Bookkeeping written with every record; never plotted.
IGNORED_KEYS = ('iter', 'step', 'epoch', 'data_time', 'time', 'memory', 'eta')
LAYER_PREFIX = re.compile(r'^d(\d+)\.(.+)$')
SOURCE_TERM = re.compile(r'^([A-Za-z][\w-]*)\.(.+)$')
METRIC_AT_K = re.compile(r'^(?:(.+)/)?([^/@]+)@(\d+)$')
FINAL_LAYER = 'final'
LINE_STYLES = ('-', '--', ':', '-.')
PANEL_SIZE = (4.4, 3.2)  # inches per panel
DPI = 100
MAX_COLUMNS = 3


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------
def find_scalar_logs(path: str) -> List[str]:
    """The ``scalars.json`` files a ``--log-file`` argument names, oldest session first.

    Args:
        path (str): a JSON log, a text log, a ``<timestamp>`` folder (holding ``vis_data/scalars.json``) or a work dir
            (holding ``<timestamp>/vis_data/scalars.json`` folders).
    """
    if osp.isfile(path) and not path.endswith('.json'):
        # mmengine's text log <timestamp>/<timestamp>.log: the same session's scalars sit beside it.
        scalars = osp.join(osp.dirname(path), 'vis_data', 'scalars.json')
        if not osp.isfile(scalars):
            raise FileNotFoundError(f'--log-file {path}: a text log, but its session has no {scalars}')
        return [scalars]
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'--log-file {path}: no such file or folder')
    own = osp.join(path, 'vis_data', 'scalars.json')
    if osp.isfile(own):
        return [own]
    sessions = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not sessions:
        raise FileNotFoundError(f'--log-file {path}: found neither {own} nor '
                                f'{osp.join(path, "<timestamp>", "vis_data", "scalars.json")}')
    return sessions


def read_json_lines(path: str) -> Tuple[List[dict], List[str]]:
    """The records of a JSON-lines log and notes on what was skipped.

    A last line without its newline that does not parse is a record still being written and is left out;
    any other line that is not a JSON object is skipped and counted.
    """
    with open(path, encoding='utf-8', errors='replace') as file:
        text = file.read()
    lines = text.split('\n')
    records, bad, notes = [], [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # no newline after it: the writer has not finished this line
                notes.append(f'{path}: left out the incomplete last line {number} (log still being written?)')
            else:
                bad.append(number)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(number)
    if bad:
        notes.append(f'{path}: skipped {len(bad)} line(s) that are not JSON objects (first: line {bad[0]})')
    return records, notes


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class RunLog:
    """The scalars of one run: ``train[key]`` and ``val[key]`` are (iterations, values) arrays."""

    name: str
    paths: List[str]
    train: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    val: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def _split_session(records: List[dict]) -> Tuple[List[Tuple[int, dict]], List[Tuple[int, dict]]]:
    """(iteration, record) lists of the training and the validation records of one session.

    Training records carry ``lr`` or ``loss`` and their ``step`` is the global iteration; validation
    records are placed at the last training iteration written before them.
    """
    train, val = [], []
    last_iteration = None
    for record in records:
        if 'step' not in record and 'iter' not in record:
            continue
        if 'lr' in record or 'loss' in record:
            last_iteration = int(record.get('step', record.get('iter')))
            train.append((last_iteration, record))
        else:
            val.append((int(record.get('step', 0)) if last_iteration is None else last_iteration, record))
    return train, val


def _merge_sessions(sessions: List[List[Tuple[int, dict]]]) -> List[Tuple[int, dict]]:
    """Join sessions in order; a session replaces the earlier points from its first iteration on."""
    merged = []
    for session in sessions:
        if session:
            first = session[0][0]
            merged = [point for point in merged if point[0] < first] + session
    return merged


def _series(points: List[Tuple[int, dict]]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    columns: Dict[str, Tuple[list, list]] = {}
    for iteration, record in points:
        for key, value in record.items():
            if key in IGNORED_KEYS or not _numeric(value):
                continue
            steps, values = columns.setdefault(key, ([], []))
            steps.append(iteration)
            values.append(float(value))
    return {key: (np.array(steps), np.array(values)) for key, (steps, values) in columns.items()}


def load_run(path: str, name: Optional[str] = None) -> RunLog:
    """Read one run (see :func:`find_scalar_logs` for what ``path`` may be)."""
    logs = find_scalar_logs(path)
    run = RunLog(name=name or _default_name(path), paths=logs)
    train_sessions, val_sessions = [], []
    for log in logs:
        records, notes = read_json_lines(log)
        run.notes.extend(notes)
        train, val = _split_session(records)
        if not train and len(logs) > 1:
            run.notes.append(f'{log}: no training records (a test run?); left out')
            continue
        train_sessions.append(train)
        val_sessions.append(val)
    if len(train_sessions) > 1:
        run.notes.append(f'{path}: joined {len(train_sessions)} training sessions')
    run.train = _series(_merge_sessions(train_sessions))
    run.val = _series(_merge_sessions(val_sessions))
    add_layer_totals(run)
    if not run.train and not run.val:
        raise ValueError(f'--log-file {path}: no scalar records in {", ".join(logs)}')
    return run


def _default_name(path: str) -> str:
    path = osp.normpath(osp.abspath(path))
    if osp.isfile(path):
        path = osp.dirname(path)
    if osp.basename(path) == 'vis_data':
        path = osp.dirname(path)
    if re.fullmatch(r'\d{8}_\d{6}', osp.basename(path)):
        path = osp.dirname(path)
    return osp.basename(path)


# ----------------------------------------------------------------------------------------------------------
# What each key is
# ----------------------------------------------------------------------------------------------------------
def layer_of(key: str) -> Tuple[str, str]:
    """(decoder layer, name) of a training key: ``d1.loss_relation`` -> (``d1``, ``loss_relation``), and
    (``final``, key) for keys without a layer prefix."""
    match = LAYER_PREFIX.match(key)
    return (f'd{match.group(1)}', match.group(2)) if match else (FINAL_LAYER, key)


def _layer_order(layer: str) -> float:
    return math.inf if layer == FINAL_LAYER else int(layer[1:])


def is_loss_term(key: str) -> bool:
    """A per-layer loss term (``loss_*`` with or without a ``d{i}.`` prefix; not the total)."""
    layer, name = layer_of(key)
    return name != 'loss' and name.startswith('loss') and '.' not in name


def add_layer_totals(run: RunLog) -> None:
    """Add ``layer_total/<layer>``: the sum of each decoder layer's loss terms at every logged iteration."""
    layers: Dict[str, List[str]] = {}
    for key in run.train:
        if is_loss_term(key):
            layers.setdefault(layer_of(key)[0], []).append(key)
    for layer, keys in layers.items():
        steps = run.train[keys[0]][0]
        if all(np.array_equal(run.train[key][0], steps) for key in keys):
            run.train[f'layer_total/{layer}'] = (steps, np.sum([run.train[key][1] for key in keys], axis=0))


def classify_train_keys(keys: Sequence[str]) -> Dict[str, List[str]]:
    """Sort the training keys into the groups that get a figure each.

    Returns:
        dict: ``total``, ``layer_totals``, ``loss_terms``, ``source_terms``, ``source_mix``, ``lr``, ``k``,
        ``other``; each a sorted list of keys.
    """
    groups = {name: [] for name in ('total', 'layer_totals', 'loss_terms', 'source_terms', 'source_mix', 'lr',
                                    'k', 'other')}
    for key in keys:
        layer, name = layer_of(key)
        if key == 'loss':
            groups['total'].append(key)
        elif key.startswith('layer_total/'):
            groups['layer_totals'].append(key)
        elif name == 'lr' or name.endswith(('.lr', '_lr')):
            groups['lr'].append(key)
        elif is_loss_term(key):
            groups['loss_terms'].append(key)
        elif name.startswith('k_'):
            groups['k'].append(key)
        elif key.startswith(('source_frac_', 'source_weight_')):
            groups['source_mix'].append(key)
        elif layer == FINAL_LAYER and SOURCE_TERM.match(key):
            groups['source_terms'].append(key)
        else:
            groups['other'].append(key)
    return {name: sorted(values) for name, values in groups.items()}


def metric_family(key: str) -> Tuple[str, Optional[int]]:
    """(family, K) of a validation key: ``sgg/mR@50`` -> (``mR``, 50); (key, None) without ``@K``."""
    match = METRIC_AT_K.match(key)
    return (match.group(2), int(match.group(3))) if match else (key, None)


def better_direction(key: str, kind: str) -> str:
    """``'lower'`` for losses and errors, ``'higher'`` for validation metrics, ``''`` where neither is
    better (learning rate, source mix, k statistics, gradient norm)."""
    if 'loss' in key.lower() or 'error' in key.lower():
        return 'lower'
    if kind == 'val':
        return 'higher'
    group = next(name for name, keys in classify_train_keys([key]).items() if keys)
    return 'lower' if group in ('total', 'layer_totals', 'loss_terms', 'source_terms') else ''


# ----------------------------------------------------------------------------------------------------------
# Plotting
# ----------------------------------------------------------------------------------------------------------
def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average with the start-up bias removed (TensorBoard's smoothing); NaN and inf
    values are skipped."""
    if weight <= 0 or len(values) < 2:
        return values
    out = np.empty_like(values)
    average, norm = 0.0, 0.0
    for i, value in enumerate(values):
        if np.isfinite(value):
            average = weight * average + (1 - weight) * value
            norm = weight * norm + (1 - weight)
        out[i] = average / norm if norm > 0 else np.nan
    return out


@dataclass
class Panel:
    """One subplot: a title, a y label and its series as (label, data key, train or val)."""

    title: str
    ylabel: str
    series: List[Tuple[str, str, str]]
    log_scale: bool = False
    from_zero: bool = False


def panel_grid(count: int) -> Tuple[int, int]:
    """(rows, columns) of a figure with ``count`` panels."""
    columns = min(count, MAX_COLUMNS)
    return math.ceil(count / columns), columns


def plot_panels(path: str, title: str, panels: List[Panel], runs: List[RunLog], smoothing: float) -> int:
    """Write one figure of ``panels`` (at most 3 per row, fixed size per panel); return the number of
    panels drawn (panels without data in any run are left out). Runs are colours when there are several,
    series are colours otherwise (line styles then)."""
    panels = [panel for panel in panels
              if any(key in getattr(run, kind) for run in runs for _, key, kind in panel.series)]
    if not panels:
        return 0
    rows, columns = panel_grid(len(panels))
    fig, axes = plt.subplots(rows, columns, squeeze=False, layout='constrained',
                             figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.4), dpi=DPI,
                             facecolor=FIGURE_BACKGROUND)
    colours = plt.get_cmap('tab10')
    for axis, panel in zip(axes.flat, panels):
        axis.set_facecolor(PANEL_BACKGROUND)
        for run_index, run in enumerate(runs):
            for series_index, (_, key, kind) in enumerate(panel.series):
                data = getattr(run, kind).get(key)
                if data is None:
                    continue
                steps, values = data
                if len(runs) > 1:
                    colour, style = colours(run_index % 10), LINE_STYLES[series_index % len(LINE_STYLES)]
                else:
                    colour, style = colours(series_index % 10), '-'
                marker = 'o' if kind == 'val' or len(steps) == 1 else None
                smoothed = smooth(values, smoothing) if kind == 'train' else values
                if smoothed is not values:
                    axis.plot(steps, values, color=colour, alpha=0.25, linewidth=1)
                axis.plot(steps, smoothed, color=colour, linestyle=style, marker=marker, markersize=3,
                          linewidth=1.5)
        axis.set_title(panel.title, fontsize=10)
        axis.set_xlabel('iteration', fontsize=8)
        axis.set_ylabel(panel.ylabel, fontsize=8)
        axis.tick_params(labelsize=7)
        if panel.log_scale:
            axis.set_yscale('log')
        elif panel.from_zero:
            axis.set_ylim(bottom=0, top=max(axis.get_ylim()[1], 0.05))
        axis.grid(alpha=0.3)
        _legend(axis, runs, panel, colours)
    for axis in axes.flat[len(panels):]:
        fig.delaxes(axis)
    smoothed_any = any(kind == 'train' for panel in panels for _, _, kind in panel.series)
    suffix = f' (smoothing {smoothing:g}, raw values faint)' if smoothing > 0 and smoothed_any else ''
    fig.suptitle(title + suffix, fontsize=11)
    fig.savefig(path, facecolor=FIGURE_BACKGROUND)
    plt.close(fig)
    return len(panels)


def _legend(axis, runs: List[RunLog], panel: Panel, colours) -> None:
    """One entry per run (colour) and one per series (colour with one run, line style with several)."""
    present = [(label, key, kind) for label, key, kind in panel.series
               if any(key in getattr(run, kind) for run in runs)]
    handles = []
    if len(runs) > 1:
        handles += [Line2D([], [], color=colours(i % 10), label=run.name) for i, run in enumerate(runs)
                    if any(key in getattr(run, kind) for _, key, kind in panel.series)]
        if len(present) > 1:
            handles += [Line2D([], [], color='#444444', linestyle=LINE_STYLES[i % len(LINE_STYLES)], label=series[0])
                        for i, series in enumerate(panel.series) if series in present]
    elif len(present) > 1:
        handles = [Line2D([], [], color=colours(i % 10), label=series[0])
                   for i, series in enumerate(panel.series) if series in present]
    if handles:
        axis.legend(handles=handles, fontsize=7)


def _union(runs: List[RunLog], kind: str) -> List[str]:
    return sorted({key for run in runs for key in getattr(run, kind)})


def figure_specs(runs: List[RunLog]) -> Dict[str, Tuple[str, List[Panel]]]:
    """The figures to draw: file name -> (title, panels)."""
    groups = classify_train_keys(_union(runs, 'train'))
    specs = {}

    layer_totals = sorted(groups['layer_totals'], key=lambda key: _layer_order(key.split('/', 1)[1]))
    specs['loss.png'] = ('Training loss', [
        Panel('total loss', 'loss', [('loss', 'loss', 'train')]),
        Panel('loss per decoder layer (sum of its terms)', 'loss',
              [(key.split('/', 1)[1], key, 'train') for key in layer_totals])])

    terms: Dict[str, List[str]] = {}
    for key in groups['loss_terms']:
        terms.setdefault(layer_of(key)[1], []).append(key)
    specs['loss_components.png'] = ('Loss terms per decoder layer', [
        Panel(name, 'loss', [(layer_of(key)[0], key, 'train')
                             for key in sorted(keys, key=lambda k: _layer_order(layer_of(k)[0]))])
        for name, keys in sorted(terms.items())])

    by_term: Dict[str, List[str]] = {}
    for key in groups['source_terms']:
        source, term = SOURCE_TERM.match(key).groups()
        by_term.setdefault(term, []).append(key)
    source_panels = [Panel(f'{term} per source (unweighted)', term,
                           [(key.split('.', 1)[0], key, 'train') for key in keys])
                     for term, keys in sorted(by_term.items())]
    for prefix, title in (('source_frac_', 'share of the batch'), ('source_weight_', 'mean loss weight')):
        keys = [key for key in groups['source_mix'] if key.startswith(prefix)]
        source_panels.append(Panel(f'{title} per source', title, [(key[len(prefix):], key, 'train')
                                                                   for key in keys]))
    specs['loss_per_source.png'] = ('Per data source', source_panels)

    families: Dict[str, List[Tuple[Optional[int], str]]] = {}
    for key in _union(runs, 'val'):
        family, k = metric_family(key)
        families.setdefault(family if k is not None else 'other metrics', []).append((k, key))
    order = ['R', 'mR', 'ngR', 'ngmR', 'zR', 'F', 'head_mR', 'body_mR', 'tail_mR']
    val_panels = []
    for family in sorted(families, key=lambda f: (order.index(f) if f in order else len(order), f)):
        members = sorted(families[family], key=lambda item: (item[0] is None, item[0] or 0, item[1]))
        val_panels.append(Panel(f'{family}@K' if members[0][0] is not None else family, 'value',
                                [(f'K={k}' if k is not None else key, key, 'val') for k, key in members],
                                from_zero=True))
    specs['val_metrics.png'] = ('Validation metrics', val_panels)

    specs['lr.png'] = ('Learning rate', [Panel('learning rate', 'lr', [(key, key, 'train')
                                                                      for key in groups['lr']],
                                               log_scale=True)])
    k_names: Dict[str, List[str]] = {}
    for key in groups['k']:
        k_names.setdefault(layer_of(key)[1], []).append(key)
    specs['k_statistics.png'] = ('Dynamic assignment: GT copies per relation', [
        Panel(name, name, [(layer_of(key)[0], key, 'train')
                           for key in sorted(keys, key=lambda k: _layer_order(layer_of(k)[0]))])
        for name, keys in sorted(k_names.items())])
    specs['train_other.png'] = ('Other training scalars', [Panel(key, key, [(key, key, 'train')])
                                                           for key in groups['other']])
    return specs


# ----------------------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------------------
def summary_rows(runs: List[RunLog]) -> List[dict]:
    """Last and best value of every plotted scalar (per-layer terms of earlier layers are left to the
    layer totals), per run."""
    rows = []
    for run in runs:
        for kind in ('train', 'val'):
            for key, (steps, values) in sorted(getattr(run, kind).items(), key=lambda item: _natural(item[0])):
                if kind == 'train' and is_loss_term(key) and layer_of(key)[0] != FINAL_LAYER:
                    continue
                finite = np.flatnonzero(np.isfinite(values))
                if not len(finite):
                    continue
                direction = better_direction(key, kind)
                best = finite[np.argmin(values[finite]) if direction == 'lower' else np.argmax(values[finite])]
                rows.append(dict(run=run.name, kind=kind, key=key, last=float(values[finite[-1]]),
                                 last_iter=int(steps[finite[-1]]), best=float(values[best]) if direction else '',
                                 best_iter=int(steps[best]) if direction else '', better=direction))
    return rows


def _natural(key: str) -> list:
    """Sort key that orders numbers by value (R@20 before R@100, d2 before d10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', key)]


def _format(value) -> str:
    if value == '' or value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def write_summary(rows: List[dict], out_dir: str) -> str:
    """Write ``summary.csv`` and ``summary.md``; return the markdown."""
    columns = ['run', 'kind', 'key', 'last', 'last_iter', 'best', 'best_iter', 'better']
    with open(osp.join(out_dir, 'summary.csv'), 'w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(_format(row[column]) for column in columns) + ' |' for row in rows]
    markdown = '\n'.join(lines) + '\n'
    with open(osp.join(out_dir, 'summary.md'), 'w') as file:
        file.write(markdown)
    return markdown


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--log-file', nargs='+', required=True, metavar='LOG',
                        help='scalars.json, <timestamp>.log, a <timestamp> folder or a work dir; several are overlaid')
    parser.add_argument('--legend', nargs='+', metavar='NAME', help='one name per --log-file')
    parser.add_argument('--smooth', type=float, default=0.6,
                        help='EMA weight in [0, 1) for training curves (0: none); raw values are drawn faintly')
    parser.add_argument('--out-dir', help='output folder (default: vis_train_log beside the first log)')
    return parser.parse_args(argv)


def default_out_dir(log_file: str) -> str:
    """``vis_train_log`` beside a log file, or inside a log folder."""
    return osp.join(osp.dirname(log_file) if osp.isfile(log_file) else log_file, 'vis_train_log')


def main(argv=None) -> Dict[str, object]:
    """Plot the logs; return ``figures`` (PNG path -> number of panels), ``summary`` (the rows) and
    ``notes``."""
    args = parse_args(argv)
    if args.legend and len(args.legend) != len(args.log_file):
        raise ValueError(f'--legend needs one name per --log-file: {len(args.log_file)} logs, '
                         f'{len(args.legend)} names')
    if not 0 <= args.smooth < 1:
        raise ValueError(f'--smooth must be in [0, 1), got {args.smooth}')
    names = args.legend or [None] * len(args.log_file)
    runs = [load_run(path, name) for path, name in zip(args.log_file, names)]
    out_dir = args.out_dir or default_out_dir(args.log_file[0])
    os.makedirs(out_dir, exist_ok=True)
    notes = [note for run in runs for note in run.notes]
    for note in notes:
        print(f'note: {note}')
    figures = {}
    for file_name, (title, panels) in figure_specs(runs).items():
        path = osp.join(out_dir, file_name)
        count = plot_panels(path, title, panels, runs, args.smooth)
        if count:
            figures[path] = count
    rows = summary_rows(runs)
    print(write_summary(rows, out_dir))
    for path, count in figures.items():
        print(f'wrote {path} ({count} panels)')
    return dict(figures=figures, summary=rows, notes=notes, out_dir=out_dir)


if __name__ == '__main__':
    main()
