"""The `make demo` run: toy data -> tiny SpeaQ trained on a real/synthetic mix -> evaluation, on CPU.

Steps: generate the toy real and synthetic scene datasets (VG file layout) unless present; train
``configs/toy/speaq_tiny_toy_mix.py`` (every batch 70% real at loss weight 1.0, 30% synthetic at 0.5) with
progress lines; evaluate on the toy test split; write to ``work_dirs/demo``:

* ``metrics.json``: ``R@20``, ``R@50``, ``R@100``, ``mR@...``, ... (fractions in [0, 1]) and run details;
* the checkpoint ``iter_<N>.pth``, the training log (``<timestamp>/<timestamp>.log``), ``loss_curve.png`` and
  ``learning_curve.png``.

    python tools/demo.py [--minutes 10] [--max-iters 1200] [--work-dir work_dirs/demo] [--overwrite]

A second run never replaces the first one's results: when the work dir holds them, it writes to
``work_dirs/demo_<YYYYmmdd_HHMMSS>`` and says so (``--overwrite`` writes into ``work_dirs/demo`` anyway).

`tools/demo.sh` (the `make demo` target) installs what is missing first. Chance level for R@50 is about 0:
a hit needs the subject, object and predicate labels right and both boxes at IoU >= 0.5.
"""
import argparse
import os
import os.path as osp
import time

# Idle OpenMP threads sleep instead of spinning (docs/benchmarks.md, "make demo"); set before torch loads.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from speaq_mm.apis.toy_demo import holds_run_results, train_and_evaluate  # noqa: E402
from speaq_mm.utils.output_guard import fresh_run_dir  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None, description=__doc__, work_dir='demo', minutes=10.0, max_iters=1200, val_interval=400):
    """The demo's options; ``tools/benchmarks/toy_convergence.py`` reuses them with its own defaults (paths
    default to places inside this checkout)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_mix.py'))
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', work_dir))
    parser.add_argument('--minutes', type=float, default=minutes, help='training time budget')
    parser.add_argument('--max-iters', type=int, default=max_iters, help='iteration budget (the lr drops at 80%%)')
    parser.add_argument('--val-interval', type=int, default=val_interval,
                        help='test-split evaluation every N iterations')
    parser.add_argument('--data-dir', default=osp.join(REPO, 'data'), help='holds (or receives) toy_real and '
                        'toy_synthetic')
    parser.add_argument('--num-train', type=int, default=2000,
                        help='train images per toy dataset when generated')
    parser.add_argument('--num-test', type=int, default=300,
                        help='test images per toy dataset when generated')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into --work-dir even if it holds an earlier run (replacing its checkpoint and '
                             'metrics); by default such a run goes to a new <work-dir>_<timestamp> folder')
    return parser.parse_args(argv)


def run(args):
    """Train and evaluate with the parsed options; return the ``metrics.json`` content and the minutes taken.

    A work dir holding an earlier run is kept: ``args.work_dir`` becomes a fresh ``<work dir>_<timestamp>``
    (said on the console) unless ``--overwrite``."""
    if not args.overwrite:
        args.work_dir = fresh_run_dir(args.work_dir, holds_run_results, log=lambda line: print(f'[demo] {line}'))
    start = time.perf_counter()
    result = train_and_evaluate(args.config, args.work_dir, args.minutes, args.max_iters, args.val_interval,
                                args.data_dir, args.num_train, args.num_test)
    return result, (time.perf_counter() - start) / 60


def main(argv=None):
    """Run the demo and print where everything went."""
    args = parse_args(argv)
    result, minutes = run(args)
    print(f'[demo] done in {minutes:.1f} min: toy test R@50 = {result["R@50"]:.3f}, '
          f'mR@50 = {result["mR@50"]:.3f} (chance ~0)')
    for key in ('checkpoint', 'log', 'loss_curve', 'learning_curve'):
        if key in result:
            print(f'[demo] {key}: {result[key]}')
    print(f'[demo] metrics: {osp.join(args.work_dir, "metrics.json")}')


if __name__ == '__main__':
    main()
