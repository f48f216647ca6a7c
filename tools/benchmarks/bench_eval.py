"""Benchmark the scene graph evaluation and cross-check it against a per-image loop written from the
definitions.

    python tools/benchmarks/bench_eval.py [--images 26446] [--triplets 600] [--loop-images N]

Synthetic VG150-like images (150 classes, 50 predicates, long-tailed labels, integer GT boxes, noisy
detections, ``--triplets`` predicted triplets per image with a few true ones at random ranks, uniform random
predicate scores with a large no-relation column, some images without GT relations or without predictions,
duplicated GT triplets) are generated deterministically chunk by chunk, so memory stays flat and every run
sees the same data. The vectorised core (``speaq_mm.evaluation.sgg_core``) is timed on them (wall and CPU
time, generation excluded) and peak RSS is read; then ``loop_metrics`` (plain Python over images, GT relations
and predictions) evaluates the same images, and every metric and per-predicate value must be identical (``==``
on floats).
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=26446, help='number of synthetic images (VG150 test)')
    parser.add_argument('--triplets', type=int, default=600, help='predicted triplets per image')
    parser.add_argument('--chunk-size', type=int, default=256, help='images generated and evaluated at once')
    parser.add_argument('--loop-images', type=int, default=None,
                        help='cross-check the first N images with the loop implementation '
                             '(default: all, 0: skip)')
    parser.add_argument('--reference-compat', action='store_true', help='skip images without predictions')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
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
    peak = peak_rss_mib()

    print(f'machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, '
          f'python {platform.python_version()}, numpy {np.__version__}')
    print(f'{args.images} images x {args.triplets} triplets: evaluation {evaluate_time:.2f} s wall, '
          f'{evaluate_cpu:.2f} s CPU (generating the synthetic data: {generate_time:.2f} s more); '
          f'peak RSS {peak:.0f} MiB ({rss_before:.0f} MiB after imports)')
    print(f'images: {summary["images"]}')
    print(' '.join(f'{key}={value:.4f}' for key, value in summary.items() if isinstance(value, float)))
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
    print(f'loop implementation over {loop_images} images: {loop_time:.1f} s (data generation included); '
          f'{len(fast)} values compared, {len(differing)} differ')
    for key in differing[:20]:
        print(f'  {key}: vectorised {fast.get(key)!r} loop {reference.get(key)!r}')
    return 1 if differing else 0


if __name__ == '__main__':
    sys.exit(main())
