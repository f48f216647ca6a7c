"""Does the tiny SpeaQ learn? Train it on the toy real + synthetic mix and track R@50 on the toy test split.

Generates the toy datasets when missing, trains ``configs/toy/speaq_tiny_toy_mix.py`` (the `make demo` recipe)
for at most ``--minutes`` of wall time or ``--max-iters`` iterations, evaluates the toy *test* split every
``--val-interval`` iterations and at the end, and writes to the work dir:

* ``metrics.json``: the final metrics (``R@50``, ``mR@50``, ..., fractions in [0, 1]), the learning curve,
  iterations, wall time and seconds per iteration;
* ``learning_curve.png``: R@50 and mR@50 against iterations; ``loss_curve.png``: the training loss.

    python tools/benchmarks/toy_convergence.py                  # <= 60 minutes, work_dirs/toy_convergence

``tools/demo.py`` runs the same code (``speaq_mm.apis.toy_demo``) with a shorter budget.
"""
import os
import os.path as osp

# Idle OpenMP threads sleep instead of spinning: on a CPU shared with other processes, spinning threads of
# two busy processes slowed a training step 4-6x in our measurements (docs/benchmarks.md). Set before torch
# loads its OpenMP runtime.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from speaq_mm.apis.toy_demo import run_command_line  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv=None):
    """Run the benchmark and print the final metrics."""
    args, result, minutes = run_command_line(argv, __doc__, REPO, 'toy_convergence', minutes=55.0, max_iters=6000,
                                             val_interval=500)
    print(f'R@50 {result["R@50"]:.3f}, mR@50 {result["mR@50"]:.3f} after {result["iterations"]} iterations '
          f'({result["seconds_per_iteration"]:.2f} s/iter); total {minutes:.1f} min; '
          f'{osp.join(args.work_dir, "metrics.json")}')


if __name__ == '__main__':
    main()
