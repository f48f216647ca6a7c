"""Benchmark the scene graph evaluation and cross-check it against a per-image loop written from the
definitions.

    python tools/benchmarks/bench_eval.py [--images 26446] [--triplets 600] [--loop-images N]
    python tools/benchmarks/bench_eval.py --protocol open_images [--images 5300] [--triplets 100]

Synthetic VG150-like images (150 classes, 50 predicates, long-tailed labels, integer GT boxes, noisy
detections, ``--triplets`` predicted triplets per image with a few true ones at random ranks, uniform random
predicate scores with a large no-relation column, some images without GT relations or without predictions,
duplicated GT triplets) are generated deterministically chunk by chunk, so memory stays flat and every run
sees the same data. The vectorised core (``speaq_mm.evaluation.sgg_core``) is timed on them (wall and CPU
time, generation excluded) and peak RSS is read; then ``loop_metrics`` (plain Python over images, GT relations
and predictions) evaluates the same images, and every metric and per-predicate value must be identical (``==``
on floats).

``--protocol open_images`` times the Open Images protocol (``oi_core``) the same way on synthetic OI-like
images (``speaq_mm.testing.oi_evaluation_oracle``: 60 classes, 30 predicates, scores on a few levels so that
cells tie), default 5,300 images (OI V6 test) with ``--triplets`` (default 100) predicted pairs each, and
cross-checks ``--loop-images`` of them against ``oi_loop_metrics`` (agreement within 1e-12: the loop sums
APs with ``math.fsum``).
"""
import argparse
import os
import platform
import resource
import sys
import time

import numpy as np

from speaq_mm.evaluation import sgg_core, sgg_summary
from speaq_mm.testing.evaluation_oracle import (
    NUM_PREDICATES,
    TOPK,
    flatten,
    loop_metrics,
    synthetic_chunks,
    train_statistics,
)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib():
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) for line in status if line.startswith('VmRSS')) / 1024


def print_timing(what, evaluate_time, evaluate_cpu, generate_time, rss_before, summary):
    """Print the machine, the evaluation's wall and CPU time and peak RSS (``what`` names the workload), and the
    metrics."""
    print(f'machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, '
          f'python {platform.python_version()}, numpy {np.__version__}')
    print(f'{what}: evaluation {evaluate_time:.2f} s wall, {evaluate_cpu:.2f} s CPU (generating the synthetic '
          f'data: {generate_time:.2f} s more); peak RSS {peak_rss_mib():.0f} MiB ({rss_before:.0f} MiB after '
          'imports)')
    print(f'images: {summary["images"]}')
    print(' '.join(f'{key}={value:.4f}' for key, value in summary.items() if isinstance(value, float)))


def print_cross_check(run, fast, reference, differing, tolerance):
    """Print how the vectorised metrics compare with the loop implementation's (``run``: its images and time);
    return the exit status (1 when any value differs)."""
    print(f'loop implementation over {run}; {len(fast)} values compared, {len(differing)} differ{tolerance}')
    for key in differing[:20]:
        print(f'  {key}: vectorised {fast.get(key)!r} loop {reference.get(key)!r}')
    return 1 if differing else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--protocol', choices=('vg', 'open_images'), default='vg')
    parser.add_argument('--images', type=int, default=None,
                        help='number of synthetic images (default: 26446, VG150 test; 5300 for open_images)')
    parser.add_argument('--triplets', type=int, default=None,
                        help='predicted triplets per image (default 600; 100 for open_images)')
    parser.add_argument('--chunk-size', type=int, default=256, help='images generated and evaluated at once')
    parser.add_argument('--loop-images', type=int, default=None,
                        help='cross-check the first N images with the loop implementation '
                             '(default: all, 0: skip)')
    parser.add_argument('--reference-compat', action='store_true', help='skip images without predictions')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.protocol == 'open_images':
        return bench_open_images(args)
    args.images = 26446 if args.images is None else args.images
    args.triplets = 600 if args.triplets is None else args.triplets
    loop_images = args.images if args.loop_images is None else min(args.loop_images, args.images)
    fg_rel_count, seen_triplets = train_statistics()
    groups = sgg_summary.frequency_groups(fg_rel_count)
    settings = dict(topk=TOPK, seen_triplets=seen_triplets, predicate_groups=groups,
                    reference_compat=args.reference_compat)

    rss_before = current_rss_mib()
    generate_time = evaluate_time = evaluate_cpu = 0.0
    stats = []
    clock, cpu = time.perf_counter(), time.process_time()
    for first, records in synthetic_chunks(args.images, args.triplets, args.chunk_size, args.seed):
        generate_time += time.perf_counter() - clock
        clock, cpu = time.perf_counter(), time.process_time()
        stats.extend(sgg_core.compute_image_stats(records, max_k=max(TOPK), first_index=first))
        del records
        evaluate_time += time.perf_counter() - clock
        evaluate_cpu += time.process_time() - cpu
        clock = time.perf_counter()
    clock, cpu = time.perf_counter(), time.process_time()
    summary = sgg_summary.summarize_image_stats(stats, num_predicates=NUM_PREDICATES, **settings)
    evaluate_time += time.perf_counter() - clock
    evaluate_cpu += time.process_time() - cpu
    print_timing(f'{args.images} images x {args.triplets} triplets', evaluate_time, evaluate_cpu, generate_time,
                 rss_before, summary)
    if loop_images == 0:
        return 0

    start = time.perf_counter()
    chunks = synthetic_chunks(loop_images, args.triplets, args.chunk_size, args.seed)
    reference = loop_metrics((record for _, chunk in chunks for record in chunk), **settings)
    loop_time = time.perf_counter() - start
    if loop_images < args.images:
        summary = sgg_summary.summarize_image_stats(stats[:loop_images], num_predicates=NUM_PREDICATES,
                                                 **settings)
    fast = flatten(summary)
    differing = sorted(key for key in set(fast) | set(reference) if fast.get(key) != reference.get(key))
    return print_cross_check(f'{loop_images} images: {loop_time:.1f} s (data generation included)', fast, reference,
                             differing, '')


def bench_open_images(args):
    """The ``--protocol open_images`` benchmark and cross-check; returns the exit status."""
    from speaq_mm.evaluation import oi_core
    from speaq_mm.testing import oi_evaluation_oracle as oi_oracle

    images = 5300 if args.images is None else args.images
    triplets = 100 if args.triplets is None else args.triplets
    loop_images = images if args.loop_images is None else min(args.loop_images, images)
    rss_before = current_rss_mib()
    clock = time.perf_counter()
    records = oi_oracle.synthetic_oi_records(images, triplets, seed=args.seed)
    generate_time = time.perf_counter() - clock
    clock, cpu = time.perf_counter(), time.process_time()
    stats = []
    for first in range(0, images, args.chunk_size):
        stats.extend(oi_core.compute_oi_image_stats(records[first:first + args.chunk_size], max_k=max(TOPK),
                                                    first_index=first))
    summary = oi_core.summarize_oi_stats(stats, topk=TOPK, num_predicates=oi_oracle.NUM_PREDICATES)
    evaluate_time, evaluate_cpu = time.perf_counter() - clock, time.process_time() - cpu
    print_timing(f'open_images: {images} images x {triplets} predicted pairs', evaluate_time, evaluate_cpu,
                 generate_time, rss_before, summary)
    if loop_images == 0:
        return 0
    start = time.perf_counter()
    reference = oi_oracle.oi_loop_metrics(records[:loop_images])
    loop_time = time.perf_counter() - start
    if loop_images < images:
        summary = oi_core.summarize_oi_stats(stats[:loop_images], topk=TOPK,
                                             num_predicates=oi_oracle.NUM_PREDICATES)
    fast = oi_oracle.flatten_oi(summary)
    differing = sorted(key for key in set(fast) | set(reference)
                       if key not in fast or key not in reference or abs(fast[key] - reference[key]) > 1e-12)
    return print_cross_check(f'{loop_images} images: {loop_time:.1f} s', fast, reference, differing,
                             ' by more than 1e-12')


if __name__ == '__main__':
    sys.exit(main())
