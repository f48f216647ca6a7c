"""Per-stage times of a SpeaQ step from ``torch.profiler``, for ``tools/benchmarks/bench_model.py --profile``.

The model labels its stages with ``torch.profiler.record_function`` (``speaq.<stage>``); a label's time includes
everything run inside it. On CPU the times are the host's; on CUDA the table adds each label's device time.
"""
import time

import torch
from torch.profiler import ProfilerActivity, profile

# (table name, record_function label), in the order a training step runs them.
STAGES = (
    ('backbone + input projection', 'speaq.backbone'),
    ('encoder', 'speaq.encoder'),
    ('subject decoder', 'speaq.subject_decoder'),
    ('object decoder', 'speaq.object_decoder'),
    ('relation decoder', 'speaq.relation_decoder'),
    ('graph message passing', 'speaq.graph_message_passing'),
    ('targets', 'speaq.targets'),
    ('matcher: costs', 'speaq.matcher_costs'),
    ('matcher: quality (dynamic k)', 'speaq.matcher_quality'),
    ('matcher: assignment (transfers + Hungarian)', 'speaq.matcher_assignment'),
    ('criterion', 'speaq.criterion'),
    ('post-processing', 'speaq.post_processing'),
    ('backward', 'speaq.backward'),  # labelled by the benchmark around loss.backward()
)


def synchronize(device):
    """Wait for the device (CUDA) so that host timers measure its work."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def profile_stages(run, iters, device):
    """Run ``run()`` ``iters`` times under the profiler.

    Returns:
        tuple[float, dict]: wall milliseconds per iteration, and per label ``(host ms, device ms or None,
        calls)`` per iteration.
    """
    on_cuda = torch.device(device).type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    synchronize(device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(iters):
            run()
        synchronize(device)
        wall = (time.perf_counter() - start) * 1000 / iters
    events = {event.key: event for event in prof.key_averages()}
    stages = {}
    for _, label in STAGES:
        event = events.get(label)
        if event is None:
            continue
        device_ms = getattr(event, 'device_time_total', 0) / 1000 / iters if on_cuda else None
        stages[label] = (event.cpu_time_total / 1000 / iters, device_ms, event.count // iters)
    return wall, stages


def stage_table(title, wall_ms, stages, round_trips):
    """Markdown rows: one per profiled stage (time, share of the step, calls), then the host round trips."""
    on_cuda = any(device_ms is not None for _, device_ms, _ in stages.values())
    header = '| stage | host ms | share |' + (' device ms |' if on_cuda else '') + ' calls |'
    lines = [f'**{title}**: {wall_ms:.1f} ms per iteration (under the profiler)', '', header,
             '|---|---|---|' + ('---|' if on_cuda else '') + '---|']
    for name, label in STAGES:
        if label not in stages:
            continue
        host_ms, device_ms, calls = stages[label]
        device_cell = f' {device_ms:.1f} |' if on_cuda else ''
        lines.append(f'| {name} | {host_ms:.1f} | {100 * host_ms / wall_ms:.1f}% |{device_cell} {calls} |')
    rest = wall_ms - sum(host_ms for host_ms, _, _ in stages.values())
    lines.append(f'| other (heads, losses summed, glue) | {rest:.1f} | {100 * rest / wall_ms:.1f}% |'
                 + (' |' if on_cuda else '') + ' |')
    lines.append(f'| host round trips (HostSyncCounter) | {round_trips} | | ' + ('| ' if on_cuda else '') + '|')
    return '\n'.join(lines)
