"""Run every benchmark of tools/benchmarks/ and append one dated table to docs/benchmarks.md (``make bench``).

    python tools/benchmarks/run_all.py [--repeats 5] [--only matcher,criterion] [--threads 1]
        [--append-to docs/benchmarks.md] [--quick]

Each benchmark runs in a fresh process (``--worker NAME``), so its peak resident memory (RSS) is its own; it
warms up once, runs ``--repeats`` times and reports every run, and the table gives the median, the fastest and
the slowest run. The benchmarks, reusing the single-purpose scripts of this folder:

| name | what is timed | script |
|---|---|---|
| dataset | VGH5Dataset train + val + test at VG150 scale (108,073 images), fresh process per run | bench_dataset.py |
| sampler | SGGRatioBatchSampler, one batch of 5 per rank, 4 ranks, VG-sized sources | bench_sampler.py |
| matcher | SpeaQTripletMatcher, one decoder layer of the R-101 recipe | bench_components.py |
| criterion | SpeaQRelationCriterion forward + backward, one decoder layer | bench_components.py |
| train_step | full training step: the tiny model on CPU, the R-101 recipe on a GPU | bench_components.py |
| inference / inference_r101 | predict() per image: tiny model; the R-101 recipe at 800 x 1333 | bench_components.py |
| evaluation | SGGMetric over 26,446 VG150-like test images, 600 triplets each | evaluation_oracle data |
| toy_training | ``tools/train.py`` on the toy mix recipe (s/iteration, peak RSS of the process tree) | toy data |

``--quick`` shrinks every workload (for a smoke test of the driver, not for numbers).
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The bench_* scripts beside this one are imported as modules: Python puts this script's folder on sys.path.

BENCH_DATA = osp.join(REPO, 'work_dirs', 'bench_vg150')
TOY_DATA = osp.join(REPO, 'work_dirs', 'bench_toy')
EVAL_IMAGES = 26446  # the VG150 test split
ORDER = ('dataset', 'sampler', 'matcher', 'criterion', 'train_step', 'inference', 'inference_r101', 'evaluation',
         'toy_training')


def peak_rss_mib():
    """Peak RSS of this process and of its largest waited-for child (Linux reports KiB)."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


# ------------------------------------------------------------------------------------------------------------
# Workers: each returns dict(workload, unit, samples, peak_rss_mib[, note]).
# ------------------------------------------------------------------------------------------------------------
def worker_dataset(repeats, quick):
    """bench_dataset.py's ``ours`` measurement, once per run, each in a fresh process."""
    import bench_dataset
    data_dir = osp.join(TOY_DATA, 'annotations_only') if quick else BENCH_DATA
    if not osp.isfile(osp.join(data_dir, 'VG-SGG-with-attri.h5')):
        if quick:  # just past the 5,000 validation images the dataset's defaults carve out
            from speaq_mm.datasets.toy_scenes import make_toy_scenes
            make_toy_scenes(data_dir, num_train=5200, num_test=50, write_images=False)
        else:
            subprocess.run([sys.executable, osp.join(REPO, 'tools', 'misc', 'make_toy_scenes.py'), data_dir,
                            '--preset', 'vg150-scale'], check=True, cwd=REPO)
    os.makedirs(osp.join(data_dir, 'VG_100K'), exist_ok=True)  # the dataset only checks that it exists
    runs = [bench_dataset.run_worker('ours', data_dir) for _ in range(repeats)]
    sizes = runs[0]['sizes']
    return dict(workload=f'VGH5Dataset train / val / test ({sizes["train"]:,} / {sizes["val"]:,} / '
                         f'{sizes["test"]:,} images), build from the h5 and json files',
                unit='s', samples=[run['seconds'] for run in runs],
                peak_rss_mib=max(run['peak_rss_mib'] for run in runs),
                note=f'import baseline {runs[0]["baseline_rss_mib"]:.0f} MiB; materialising every record once: '
                     f'{statistics.median(run["materialise_all_seconds"] for run in runs):.2f} s more')


def worker_sampler(repeats, quick):
    """bench_sampler.py's SGGRatioBatchSampler timing at the recipe's per-GPU batch of 5."""
    import bench_sampler
    dataset = bench_sampler.SizedSources(bench_sampler.SOURCE_SIZES)
    batches = 200 if quick else 5000
    samples = []
    for _ in range(repeats + 1):
        per_rank, _ = bench_sampler.measure(bench_sampler.ratio_batches, dataset, 5, batches, 1)
        samples.append(statistics.mean(per_rank))
    sizes = ' + '.join(f'{size:,}' for size in bench_sampler.SOURCE_SIZES)
    return dict(workload=f'SGGRatioBatchSampler, {bench_sampler.WORLD_SIZE} ranks x batch 5, sources of {sizes}, '
                         f'{batches} batches per rank', unit='us per batch and rank', samples=samples[1:],
                peak_rss_mib=peak_rss_mib())


def _component(name, repeats, quick, **options):
    import bench_components
    import torch
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    seconds = bench_components.BENCHMARKS[name](repeats, device=device, **options)
    note = f'{torch.cuda.get_device_name()}' if device == 'cuda' else f'{torch.get_num_threads()} torch thread(s)'
    return dict(workload=bench_components.describe(name, device, options.get('model')), unit='s',
                samples=seconds, peak_rss_mib=peak_rss_mib(), note=note)


def worker_matcher(repeats, quick):
    return _component('matcher', repeats, quick)


def worker_criterion(repeats, quick):
    return _component('criterion', repeats, quick)


def worker_train_step(repeats, quick):
    return _component('train_step', repeats, quick)


def worker_inference(repeats, quick):
    return _component('inference', repeats, quick, model='tiny')


def worker_inference_r101(repeats, quick):
    return _component('inference', repeats, quick, model='r101')


def _sample_dicts(records):
    """speaq_mm.evaluation.oracle's records as the data-sample dicts the Evaluator hands to a metric's ``process``."""
    return [dict(img_id=r['img_id'],
                 gt_instances=dict(bboxes=r['gt_bboxes'], labels=r['gt_labels']),
                 gt_relations=dict(pairs=r['gt_relations'][:, :2], labels=r['gt_relations'][:, 2]),
                 pred_instances=dict(bboxes=r['pred_bboxes'], labels=r['pred_labels'], scores=r['pred_scores']),
                 pred_relations=dict(pairs=r['pred_rel_pairs'], scores=r['pred_rel_scores'],
                                     labels=r['pred_rel_labels'])) for r in records]


def worker_evaluation(repeats, quick):
    """SGGMetric (process + compute_metrics) over speaq_mm.testing.evaluation_oracle's VG150-like images."""
    import logging

    from mmengine.logging import MMLogger

    from speaq_mm.evaluation import SGGMetric
    from speaq_mm.testing import evaluation_oracle as bench_eval
    MMLogger.get_instance('bench_evaluation', log_level=logging.WARNING)  # the metric's tables stay quiet
    images, triplets = (256 if quick else EVAL_IMAGES), 600
    fg_rel_count, seen = bench_eval.train_statistics()
    meta = dict(classes=[f'c{i}' for i in range(bench_eval.NUM_CLASSES)],
                predicates=[f'p{i}' for i in range(bench_eval.NUM_PREDICATES)], fg_rel_count=fg_rel_count,
                triplets=seen)
    samples, generation = [], 0.0
    for _ in range(repeats):
        metric = SGGMetric()
        metric.dataset_meta = meta
        seconds, clock = 0.0, time.perf_counter()
        for _, records in bench_eval.synthetic_chunks(images, triplets, 256, seed=0):
            batch = _sample_dicts(records)
            generation += time.perf_counter() - clock
            clock = time.perf_counter()
            metric.process(None, batch)
            seconds += time.perf_counter() - clock
            clock = time.perf_counter()
        start = time.perf_counter()
        metric.compute_metrics(metric.results)
        samples.append(seconds + time.perf_counter() - start)
    return dict(workload=f'SGGMetric.process + compute_metrics, {images:,} synthetic VG150-like test images '
                         f'x {triplets} triplets (150 classes, 50 predicates)', unit='s', samples=samples,
                peak_rss_mib=peak_rss_mib(),
                note=f'generating the data (not timed): {generation / repeats:.1f} s per run')


def _toy_data(quick):
    """Toy real and synthetic scenes for the training run (generated once)."""
    from speaq_mm.datasets.toy_scenes import make_toy_scenes
    roots = {style: osp.join(TOY_DATA, f'toy_{style}') + '/' for style in ('real', 'synthetic')}
    if not osp.isfile(osp.join(roots['synthetic'], 'VG-SGG-with-attri.h5')):
        make_toy_scenes(roots['real'], num_train=300, num_test=40, seed=0)
        make_toy_scenes(roots['synthetic'], num_train=150, num_test=10, style='synthetic', seed=0)
    return roots


def _tree_rss_mib(pid):
    """Current RSS of a process and all its descendants."""
    import psutil
    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def worker_toy_training(repeats, quick):
    """``tools/train.py`` on the toy mix recipe: seconds per iteration (after the first) and the memory of the
    process tree; one run whatever ``repeats``."""
    roots = _toy_data(quick)
    iterations = 6 if quick else 30
    work_dir = osp.join(TOY_DATA, 'run')
    options = {f'train_dataloader.dataset.datasets.{i}.data_root': roots[style]
               for i, style in enumerate(('real', 'synthetic'))}
    options.update({'val_dataloader.dataset.data_root': roots['real'],
                    'test_dataloader.dataset.data_root': roots['real'], 'train_cfg.max_iters': iterations,
                    'train_cfg.val_interval': iterations, 'default_hooks.checkpoint.interval': iterations,
                    'default_hooks.logger.interval': 1})
    command = [sys.executable, osp.join(REPO, 'tools', 'train.py'),
               osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_mix.py'), '--work-dir', work_dir,
               '--cfg-options', *(f'{key}={value}' for key, value in options.items())]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tree_peak = [0.0]

    def watch():
        while process.poll() is None:
            tree_peak[0] = max(tree_peak[0], _tree_rss_mib(process.pid))
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, errors = process.communicate()
    watcher.join()
    if process.returncode:
        raise RuntimeError(f'toy training failed:\n{errors[-3000:]}')
    scalars = sorted(_newest(work_dir, 'scalars.json'))
    with open(scalars[-1]) as f:
        times = [json.loads(line)['time'] for line in f if '"time"' in line and '"loss"' in line]
    return dict(workload=f'tools/train.py configs/toy/speaq_tiny_toy_mix.py, {iterations} iterations of batch 16 '
                         '(1 dataloader worker), validation on 100 toy images at the end', unit='s per iteration',
                samples=times[1:], peak_rss_mib=peak_rss_mib(),
                note=f'peak RSS of the whole process tree (trainer + dataloader workers): {tree_peak[0]:.0f} MiB')


def _newest(folder, name):
    return [osp.join(root, name) for root, _, files in os.walk(folder) if name in files]


WORKERS = {name: globals()[f'worker_{name}'] for name in ORDER}
# Fewer runs of the long benchmarks keep `make bench` within about 15 minutes on 2 CPU cores. The toy training
# is one run: its samples are its iterations.
MAX_REPEATS = dict(dataset=3, inference_r101=2, evaluation=3, toy_training=1)


# ------------------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------------------
def machine_description():
    """Machine, CPU, memory, Python, torch and GPU, in one line."""
    import numpy as np
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'
    return (f'{platform.machine()}, {cpu}, {os.cpu_count()} CPU cores, {memory:.0f} GiB RAM, {gpu}; '
            f'Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}')


def run_worker(name, repeats, quick, threads):
    """Run one benchmark in a fresh process; return its result dict (or ``error``)."""
    command = [sys.executable, __file__, '--worker', name, '--repeats', str(repeats)] + (['--quick'] if quick else [])
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    if result.returncode or not lines:
        return dict(error=(result.stderr or result.stdout).strip().splitlines()[-1:] or ['no output'])
    return json.loads(lines[-1])


def format_row(name, result):
    """One markdown table row: benchmark, workload, unit, runs, median, min, max, peak RSS, note."""
    if 'error' in result:
        return f'| {name} | failed: {result["error"][0][:200]} | | | | | | | |'
    samples = result['samples']
    digits = 1 if result['unit'].startswith('us') else 4

    def number(value):
        return f'{value:.{digits}f}'

    return (f'| {name} | {result["workload"]} | {result["unit"]} | {len(samples)} | '
            f'{number(statistics.median(samples))} | {number(min(samples))} | {number(max(samples))} | '
            f'{result["peak_rss_mib"]:.0f} | {result.get("note", "")} |')


def format_section(rows, command, machine, load_before, load_after, date=None):
    """The markdown section appended to docs/benchmarks.md."""
    return '\n'.join([
        '', f'## Benchmark suite ({date or datetime.date.today().isoformat()})', '',
        f'Command: `{command}`. Machine: {machine}. 1-minute load average {load_before:.1f} before and '
        f'{load_after:.1f} after (other work shares the machine when it is above the core count). Every benchmark '
        'ran in a fresh process, warmed up once; median, fastest and slowest of the timed runs; peak RSS of that '
        'process (see the notes for the dataset and toy-training processes).', '',
        '| benchmark | workload | unit | runs | median | min | max | peak RSS (MiB) | notes |',
        '|---|---|---|---|---|---|---|---|---|', *rows, ''])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per benchmark (after one warm-up)')
    parser.add_argument('--only', help=f'comma-separated subset of {",".join(ORDER)}')
    parser.add_argument('--threads', type=int, help='OMP/MKL threads of every benchmark process (default: torch\'s)')
    parser.add_argument('--append-to', help='markdown file to append the table to (docs/benchmarks.md)')
    parser.add_argument('--quick', action='store_true', help='tiny workloads: checks the driver, not the speed')
    parser.add_argument('--worker', choices=ORDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.repeats, args.quick)))
        return 0
    names = args.only.split(',') if args.only else list(ORDER)
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        parser.error(f'unknown benchmark(s) {unknown}; choose from {",".join(ORDER)}')
    load_before = os.getloadavg()[0]
    rows, failed = [], []
    for name in names:
        repeats = min(args.repeats, MAX_REPEATS.get(name, args.repeats))
        print(f'[{name}] running ...', flush=True)
        result = run_worker(name, repeats, args.quick, args.threads)
        rows.append(format_row(name, result))
        failed += [name] if 'error' in result else []
        print(rows[-1], flush=True)
    command = 'python tools/benchmarks/run_all.py' + ''.join(
        f' {flag}' for flag, on in ((f'--repeats {args.repeats}', True), (f'--threads {args.threads}', args.threads),
                                    (f'--only {args.only}', args.only), ('--quick', args.quick)) if on)
    section = format_section(rows, command, machine_description(), load_before, os.getloadavg()[0])
    print(section)
    if args.append_to:
        with open(args.append_to, 'a') as f:
            f.write(section)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
