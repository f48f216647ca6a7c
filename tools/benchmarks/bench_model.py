"""Time a SpeaQ training step (forward + backward) and the matcher's share of it; optionally inference.

The defaults reproduce the CPU measurement of docs/benchmarks.md: the R-101 recipe, batch 2 of 800 x 1333
images with VG-like scene graphs (20 objects, 25 relations each), random weights. On a GPU, the same script
measures the recipe's per-GPU batch with AMP and peak memory::

    python tools/benchmarks/bench_model.py                                   # CPU, batch 2, fp32
    python tools/benchmarks/bench_model.py --device cuda --batch 5 --amp --inference

It prints one markdown table row per measurement, ready for docs/benchmarks.md. ``--profile`` prints instead
a per-stage table of a training step and of an inference batch (``torch.profiler`` over the model's
``speaq.*`` labels, the matcher split into costs, quality and assignment) with the host round trips each
makes (``speaq_mm.testing.HostSyncCounter``); the same command works on CPU and CUDA::

    python tools/benchmarks/bench_model.py --profile --height 256 --width 384

``--bf16``, ``--channels-last`` and ``--compile`` switch on the speed options of
``speaq_mm.models.utils.speed_options`` (off by default; docs/benchmarks.md, "Speed options").
"""
import argparse
import os.path as osp
import platform
import statistics
import time

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from torch.profiler import record_function

import speaq_mm  # noqa: F401  (registers the model)
from speaq_mm.models.task_modules import REFERENCE_PREDICATE_COUNTS
from speaq_mm.models.utils.speed_options import speed_options_context
from speaq_mm.testing.host_sync_counter import HostSyncCounter
from speaq_mm.testing.random_batches import random_batch
from speaq_mm.testing.stage_profile import profile_stages, stage_table

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=osp.join(REPO, 'configs', '_base_', 'models', 'speaq_r101.py'),
                        help='a config whose "model" is a SpeaQDetector')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--height', type=int, default=800)
    parser.add_argument('--width', type=int, default=1333)
    parser.add_argument('--objects', type=int, default=20, help='GT objects per image')
    parser.add_argument('--relations', type=int, default=25, help='GT relations per image')
    parser.add_argument('--iters', type=int, default=3, help='timed iterations (after one warm-up)')
    parser.add_argument('--amp', action='store_true', help='autocast to float16 (CUDA)')
    parser.add_argument('--inference', action='store_true', help='also time predict() per image (batch 1)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--profile', action='store_true',
                        help='per-stage table of a training step and an inference batch, with host round trips')
    parser.add_argument('--bf16', action='store_true', help='bf16 autocast (CPU or CUDA)')
    parser.add_argument('--channels-last', action='store_true', help='channels-last backbone')
    parser.add_argument('--compile', action='store_true', help='torch.compile the backbone and encoder')
    args = parser.parse_args(argv)
    if args.amp and args.bf16:
        parser.error('--amp (fp16) and --bf16 exclude each other')
    return args


class Stopwatch:
    """Accumulates the wall time of the wrapped callable (synchronising CUDA around it)."""

    def __init__(self, function, device):
        self.function, self.device, self.seconds = function, device, 0.0

    def __call__(self, *args, **kwargs):
        _synchronize(self.device)
        start = time.perf_counter()
        result = self.function(*args, **kwargs)
        _synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return result


def _synchronize(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def main(argv=None):
    """Run the measurement and print markdown rows."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model).to(args.device)
    model.init_weights()
    head = model.bbox_head
    counts = (REFERENCE_PREDICATE_COUNTS if head.num_predicates == len(REFERENCE_PREDICATE_COUNTS)
              else [1] * head.num_predicates)
    model.set_train_statistics(dict(fg_rel_count=counts), 'benchmark counts')
    inputs, samples = random_batch(args.batch, args.height, args.width, args.objects, args.relations,
                                   head.num_entity_classes, head.num_predicates)
    inputs = inputs.to(args.device)
    samples = [s.to(args.device) for s in samples]
    options = speed_options_context(model, args.device, bf16=args.bf16, channels_last=args.channels_last,
                                    compile_modules=args.compile)
    if args.profile:
        profile_model(model, inputs, samples, args, options)
        return
    # Time the whole matcher (costs, qualities, assignment) and the per-image Hungarian part of it.
    matcher = head.matcher
    assignment_time = Stopwatch(matcher._assign, args.device)
    matcher._assign = assignment_time
    matcher_time = Stopwatch(matcher, args.device)
    head.matcher = matcher_time
    model.train()
    autocast = torch.autocast('cuda', dtype=torch.float16) if args.amp else options
    steps = []
    if str(args.device).startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    for iteration in range(args.iters + 1):
        matcher_time.seconds = assignment_time.seconds = 0.0
        _synchronize(args.device)
        start = time.perf_counter()
        with autocast:
            losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        loss.backward()
        model.zero_grad(set_to_none=True)
        _synchronize(args.device)
        if iteration:  # the first iteration warms up allocators and kernels
            steps.append((time.perf_counter() - start, matcher_time.seconds, assignment_time.seconds))
    head.matcher = matcher
    step = statistics.mean(s[0] for s in steps)
    matching = statistics.mean(s[1] for s in steps)
    assignment = statistics.mean(s[2] for s in steps)
    on_gpu = str(args.device).startswith('cuda')
    memory = f'{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB' if on_gpu else 'n/a'
    device = torch.cuda.get_device_name() if on_gpu else platform.processor() or 'cpu'
    precision = 'fp16 AMP' if args.amp else 'bf16 autocast' if args.bf16 else 'fp32'
    print('| what | device | batch | input | precision | step (s) | matcher (s) | matcher share | '
          'Hungarian (s) | peak memory |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    print(f'| train step (fwd+bwd) | {device}, {torch.get_num_threads()} threads | {args.batch} | '
          f'{args.height}x{args.width} | {precision} | {step:.2f} | {matching:.3f} | '
          f'{100 * matching / step:.1f}% | {assignment:.3f} | {memory} |')
    if args.inference:
        model.eval()
        latencies = []
        with torch.no_grad(), autocast:
            for iteration in range(args.iters + 1):
                _synchronize(args.device)
                start = time.perf_counter()
                model.predict(inputs[:1], [samples[0]])
                _synchronize(args.device)
                if iteration:
                    latencies.append(time.perf_counter() - start)
        print(f'| inference per image | {device} | 1 | {args.height}x{args.width} | {precision} | '
              f'{statistics.mean(latencies):.3f} | | | | |')


def profile_model(model, inputs, samples, args, options):
    """Print the per-stage tables of a training step and of an inference batch."""
    autocast = torch.autocast('cuda', dtype=torch.float16) if args.amp else options

    def training_step():
        with autocast:
            losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        with record_function('speaq.backward'):
            loss.backward()
        model.zero_grad(set_to_none=True)

    def inference():
        with torch.no_grad(), autocast:
            model.predict(inputs, samples)

    on_gpu = str(args.device).startswith('cuda')
    device = torch.cuda.get_device_name() if on_gpu else f'{platform.processor() or "cpu"}, ' \
        f'{torch.get_num_threads()} threads'
    precision = 'fp16 AMP' if args.amp else 'bf16 autocast' if args.bf16 else 'fp32'
    print(f'{device}; batch {args.batch} of {args.height}x{args.width}; {args.objects} objects and '
          f'{args.relations} relations per image; {precision}; {args.iters} profiled iterations after a '
          'warm-up\n')
    for title, mode, run in (('training step (forward + backward)', model.train, training_step),
                             ('inference batch', model.eval, inference)):
        mode()
        run()  # warm-up
        with HostSyncCounter() as counter:
            run()
        wall, stages = profile_stages(run, args.iters, args.device)
        print(stage_table(title, wall, stages, counter.total))
        print(f'\n{title}: {counter.summary()}\n')


if __name__ == '__main__':
    main()
