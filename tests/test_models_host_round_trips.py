"""Host round trips (calls that make the CPU wait for a GPU, counted on CPU by HostSyncCounter): a training
step (targets, matcher, criterion, per-source logs, backward) makes at most 4 (today 4: the checks' read, the
matcher's costs out and its assignments back, one read of the per-source logs for the message hub) and an
inference batch at most 2, whatever the batch size and with 6 decoder layers; the counter itself sees every kind
of round trip."""
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.logging import MessageHub

from speaq_mm.testing.host_sync_counter import HostSyncCounter
from speaq_mm.testing.random_batches import random_batch
from tests.models_fixtures import NUM_CLASSES, NUM_PREDICATES, tiny_speaq_cfg

# The recipe's matching (speaq_r101.py) on a narrow model with the recipe's 6 decoder layers.
RECIPE_ASSIGNER = dict(type='SpeaQTripletMatcher', one_to_many='dynamic', k=4, quality_combine='max',
                       predicate_score_weight=-0.5, use_group_mask=True, num_groups=2, match_independent=True)
MAX_PER_TRAINING_STEP, MAX_PER_INFERENCE_BATCH = 4, 2


@pytest.fixture(scope='module', params=[True, False], ids=['independent', 'shared'])
def model(request):
    torch.manual_seed(0)
    model = MODELS.build(tiny_speaq_cfg(layers=6, entity_queries=8, relation_queries=16,
                                        assigner=dict(RECIPE_ASSIGNER, match_independent=request.param)))
    model.init_weights()
    model.set_train_statistics(dict(fg_rel_count=[40, 25, 10, 5, 3, 1]))
    return model


def batch(size):
    inputs, samples = random_batch(size, 64, 96, 6, 8, NUM_CLASSES, NUM_PREDICATES, seed=size)
    for index, sample in enumerate(samples):  # two sources, so the per-source logs are computed
        sample.set_metainfo(dict(source=('real', 'synthetic')[index % 2], sample_weight=(1.0, 0.5)[index % 2]))
    return inputs, samples


def training_step_round_trips(model, size):
    inputs, samples = batch(size)
    model.train()
    with HostSyncCounter(record_stacks=True) as counter:
        losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        loss.backward()
    assert 'd4.loss_relation' in losses
    assert MessageHub.get_current_instance().get_scalar('train/synthetic.relation_ce').current() >= 0
    model.zero_grad()
    return counter


def inference_round_trips(model, size):
    inputs, samples = batch(size)
    model.eval()
    with torch.no_grad(), HostSyncCounter(record_stacks=True) as counter:
        results = model.predict(inputs, samples)
    assert all(len(r.pred_relations.pairs) for r in results)
    return counter


def test_training_step_round_trips_do_not_grow_with_the_batch(model):
    small, large = training_step_round_trips(model, 2), training_step_round_trips(model, 5)
    assert small.total == large.total <= MAX_PER_TRAINING_STEP, (small.events, large.events)
    assert small.total >= 3  # the checks' read, the matcher's costs out and assignments back (+ per-source logs)


def test_inference_round_trips_do_not_grow_with_the_batch(model):
    small, large = inference_round_trips(model, 2), inference_round_trips(model, 5)
    assert small.total == large.total <= MAX_PER_INFERENCE_BATCH, (small.events, large.events)
    assert small.total >= 1


def test_counter_sees_every_kind_of_round_trip():
    device_tensor = torch.arange(6.0)
    with HostSyncCounter() as counter:
        device_tensor.sum().item()
        device_tensor.tolist()
        bool(device_tensor[0] > 1)
        host = device_tensor.cpu()  # counted once; work on the host copy is free
        host[host > 2].sum().item()
        host.numpy()
        torch.arange(3)[torch.arange(3) > 0].tolist()
        _ = device_tensor[device_tensor > 2]
        device_tensor[device_tensor > 4] = 0
        device_tensor.nonzero()
        device_tensor.unique()
        device_tensor.repeat_interleave(torch.full((6,), 2, device=device_tensor.device))
        device_tensor.repeat_interleave(2)  # an int repeat has a known size: free
        torch.tensor([1, 2], device=device_tensor.device)
        device_tensor.new_tensor([0.5])
        torch.as_tensor(np.zeros(3), device=device_tensor.device)
        torch.as_tensor(np.zeros(3)).to(device_tensor.device)
        torch.full((3,), 2.0, device=device_tensor.device)  # a fill carries its value: free
        device_tensor.to(device_tensor.device)  # device to device: free
    assert counter.by_kind() == {'read': 2, 'truth test': 1, 'to host': 1, 'mask read': 1, 'mask write': 1,
                                 'data-dependent shape': 3, 'to device': 4}
    assert counter.total == 13 and counter.reads() == 9
    assert counter.summary().startswith('13 host round trip(s)')


def test_guarded_optimizer_reads_the_device_once_per_step(model):
    from speaq_mm.engine.optim_wrappers import SpeaQNonFiniteGuardOptimWrapper
    wrapper = SpeaQNonFiniteGuardOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                                              accumulative_counts=2)
    inputs, samples = batch(2)
    model.train()
    losses = [model.parse_losses(model.loss(inputs, samples))[0] for _ in range(2)]
    with HostSyncCounter(record_stacks=True) as counter:
        for loss in losses:  # two micro-batches, one optimizer step
            wrapper.update_params(loss)
    assert counter.total == 1, counter.events
    assert wrapper.pop_skipped_step() == (False, [])
