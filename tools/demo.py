"""The `make demo` run: toy data -> tiny SpeaQ trained on a real/synthetic mix -> evaluation, on CPU.

Steps: generate the toy real and synthetic scene datasets (VG file layout) unless present; train
``configs/toy/speaq_tiny_toy_mix.py`` (every batch 70% real at loss weight 1.0, 30% synthetic at 0.5) with
progress lines; evaluate on the toy test split; write to ``work_dirs/demo``:

* ``metrics.json``: ``R@20``, ``R@50``, ``R@100``, ``mR@...``, ... (fractions in [0, 1]) and run details;
* the checkpoint ``iter_<N>.pth``, the training log (``<timestamp>/<timestamp>.log``), ``loss_curve.png`` and
  ``learning_curve.png``.

    python tools/demo.py [--minutes 10] [--max-iters 1200] [--work-dir work_dirs/demo]

`tools/demo.sh` (the `make demo` target) installs what is missing first. Chance level for R@50 is about 0:
a hit needs the subject, object and predicate labels right and both boxes at IoU >= 0.5.
"""
import argparse
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'benchmarks'))
from toy_convergence import add_run_arguments, train_and_evaluate  # noqa: E402


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, 'demo', minutes=10.0, max_iters=1200, val_interval=400)
    return parser.parse_args(argv)


def main(argv=None):
    """Run the demo and print where everything went."""
    args = parse_args(argv)
    start = time.perf_counter()
    result = train_and_evaluate(args.config, args.work_dir, args.minutes, args.max_iters, args.val_interval,
                                args.data_dir, args.num_train, args.num_test)
    minutes = (time.perf_counter() - start) / 60
    print(f'[demo] done in {minutes:.1f} min: toy test R@50 = {result["R@50"]:.3f}, '
          f'mR@50 = {result["mR@50"]:.3f} (chance ~0)')
    for key in ('checkpoint', 'log', 'loss_curve', 'learning_curve'):
        if key in result:
            print(f'[demo] {key}: {result[key]}')
    print(f'[demo] metrics: {osp.join(args.work_dir, "metrics.json")}')


if __name__ == '__main__':
    main()
