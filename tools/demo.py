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
import os
import os.path as osp

# Idle OpenMP threads sleep instead of spinning (docs/benchmarks.md, "make demo"); set before torch loads.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from speaq_mm.apis.toy_demo import run_command_line  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main(argv=None):
    """Run the demo and print where everything went."""
    args, result, minutes = run_command_line(argv, __doc__, REPO, 'demo', minutes=10.0, max_iters=1200,
                                             val_interval=400)
    print(f'[demo] done in {minutes:.1f} min: toy test R@50 = {result["R@50"]:.3f}, '
          f'mR@50 = {result["mR@50"]:.3f} (chance ~0)')
    for key in ('checkpoint', 'log', 'loss_curve', 'learning_curve'):
        if key in result:
            print(f'[demo] {key}: {result[key]}')
    print(f'[demo] metrics: {osp.join(args.work_dir, "metrics.json")}')


if __name__ == '__main__':
    main()
