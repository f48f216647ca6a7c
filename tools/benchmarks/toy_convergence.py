"""Does the tiny SpeaQ learn? Train it on the toy real + synthetic mix and track R@50 on the toy test split.

Generates the toy datasets when missing, trains ``configs/toy/speaq_tiny_toy_mix.py`` (the `make demo` recipe)
for at most ``--minutes`` of wall time or ``--max-iters`` iterations, evaluates the toy *test* split every
``--val-interval`` iterations and at the end, and writes to the work dir:

* ``metrics.json``: the final metrics (``R@50``, ``mR@50``, ..., fractions in [0, 1]), the learning curve,
  iterations, wall time and seconds per iteration;
* ``learning_curve.png``: R@50 and mR@50 against iterations; ``loss_curve.png``: the training loss.

    python tools/benchmarks/toy_convergence.py                  # <= 60 minutes, work_dirs/toy_convergence

It is ``tools/demo.py`` (same options and code, ``speaq_mm.apis.toy_demo``) with a longer budget.
"""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _demo_tool():
    """tools/demo.py, whose options and run this benchmark shares (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location('speaq_demo_tool', osp.join(REPO, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # sets OMP_WAIT_POLICY=PASSIVE before torch loads, as the demo does
    return module


def main(argv=None):
    """Run the benchmark and print the final metrics."""
    demo = _demo_tool()
    args = demo.parse_args(argv, __doc__, 'toy_convergence', minutes=55.0, max_iters=6000, val_interval=500)
    result, minutes = demo.run(args)
    print(f'R@50 {result["R@50"]:.3f}, mR@50 {result["mR@50"]:.3f} after {result["iterations"]} iterations '
          f'({result["seconds_per_iteration"]:.2f} s/iter); total {minutes:.1f} min; '
          f'{osp.join(args.work_dir, "metrics.json")}')


if __name__ == '__main__':
    main()
