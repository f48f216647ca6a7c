"""speaq_mm.apis.toy_demo's learning-rate schedule: an mmengine MultiStepLR with the learning rates the demo's
hand-written drop gave (x0.1 from the first iteration after 80% of the iteration budget, or of the time budget
when that runs out first)."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import ParamSchedulerHook
from mmengine.optim.scheduler import MultiStepLR
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.runner import get_priority

from speaq_mm.apis import toy_demo

BASE_LR, GAMMA = 4e-4, 0.1


def scheduler_of(max_iters):
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    config, = toy_demo.toy_param_scheduler(max_iters)
    return PARAM_SCHEDULERS.build(dict(config, optimizer=optimizer)), optimizer


def previous_rule(iteration, max_iters, decay_at=0.8):
    """The rate of 0-based iteration ``iteration`` under the demo's former hook: it multiplied the rate by
    ``GAMMA`` after the first iteration ``done`` (1-based) with ``done / max_iters >= decay_at``."""
    decayed = any(done / max_iters >= decay_at for done in range(1, iteration + 1))
    return BASE_LR * (GAMMA if decayed else 1.0)


def rates(scheduler, optimizer, max_iters, before_step=None):
    """The learning rate of every iteration, stepping the scheduler after each as ParamSchedulerHook does."""
    seen = []
    for iteration in range(max_iters):
        seen.append(optimizer.param_groups[0]['lr'])
        if before_step is not None:
            before_step(iteration)
        optimizer.step()  # no gradients: nothing moves, but the scheduler sees the order of a training step
        scheduler.step()
    return seen


@pytest.mark.parametrize('max_iters', [1, 4, 7, 10, 13, 1200, 1500, 6000])
def test_schedule_gives_the_former_rates_at_every_iteration(max_iters):
    scheduler, optimizer = scheduler_of(max_iters)
    assert isinstance(scheduler, MultiStepLR)
    assert rates(scheduler, optimizer, max_iters) == pytest.approx(
        [previous_rule(i, max_iters) for i in range(max_iters)], rel=1e-12)


def test_time_budget_brings_the_drop_forward(monkeypatch):
    max_iters, now = 100, [0.0]
    monkeypatch.setattr(toy_demo.time, 'perf_counter', lambda: now[0])
    scheduler, optimizer = scheduler_of(max_iters)
    hook = toy_demo.ToyProgressHook(minutes=1.0, log=lambda line: None)
    runner = SimpleNamespace(iter=0, max_iters=max_iters, param_schedulers=[scheduler],
                             train_loop=SimpleNamespace(stop_training=False))
    hook.before_train(runner)

    def after_iter(iteration):
        runner.iter = iteration
        now[0] = 50.0 if iteration >= 10 else 1.0  # 50 s of 60: past 80% of the time budget at iteration 10
        hook.after_train_iter(runner, iteration, outputs=dict(loss=torch.tensor(1.0)))

    seen = rates(scheduler, optimizer, 20, before_step=after_iter)
    # The former hook: lr x0.1 after iteration 10 (0-based), i.e. from iteration 11 on, and only once.
    assert seen == pytest.approx([BASE_LR] * 11 + [BASE_LR * GAMMA] * 9, rel=1e-12)
    # The hook must move the milestone before ParamSchedulerHook steps the scheduler in the same iteration.
    assert get_priority(hook.priority) < get_priority(ParamSchedulerHook.priority)
