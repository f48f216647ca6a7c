"""The GPU speed options (channels-last backbone, torch.compile of backbone and encoder, bf16 autocast) keep
the tiny model's outputs within the tolerances docs/benchmarks.md states, measured against fp32 on CPU; all
are off by default."""
import copy

import pytest
import torch
from mmdet.registry import MODELS

from speaq_mm.models.utils.speed_options import (
    bf16_autocast,
    compile_backbone_and_encoder,
    speed_options_context,
    use_channels_last,
)
from speaq_mm.testing.random_batches import random_batch
from tests.models_fixtures import NUM_CLASSES, NUM_PREDICATES, tiny_speaq_cfg

# docs/benchmarks.md, "Speed options": largest absolute difference of the final layer's probabilities and
# normalised boxes from fp32.
TOLERANCE = {'channels_last': 1e-4, 'compile': 1e-4, 'bf16': 0.05}


@pytest.fixture(scope='module')
def model_and_batch():
    torch.manual_seed(0)
    model = MODELS.build(tiny_speaq_cfg(layers=2))
    model.init_weights()
    model.eval()
    inputs, samples = random_batch(2, 48, 64, 3, 2, NUM_CLASSES, NUM_PREDICATES, seed=3)
    return model, inputs, samples


def final_outputs(model, inputs, samples, context=None):
    with torch.no_grad(), (context or torch.autocast('cpu', enabled=False)):
        predictions = model(inputs, samples, mode='tensor').layer(-1)
    return {'predicate_probs': predictions.predicate_logits.float().softmax(-1),
            'subject_probs': predictions.subject_logits.float().softmax(-1),
            'relation_boxes': predictions.relation_boxes.float(), 'object_boxes': predictions.object_boxes.float()}


def largest_difference(outputs, reference):
    return max((outputs[key] - reference[key]).abs().max().item() for key in reference)


@pytest.mark.parametrize('option', ['channels_last', pytest.param('compile', marks=pytest.mark.slow), 'bf16'])
def test_speed_option_stays_within_its_tolerance_of_fp32(model_and_batch, option):
    model, inputs, samples = model_and_batch
    reference = final_outputs(model, inputs, samples)
    changed = copy.deepcopy(model)
    context = None
    if option == 'channels_last':
        use_channels_last(changed)
        assert changed.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    elif option == 'compile':
        compile_backbone_and_encoder(changed)
        assert changed.state_dict().keys() == model.state_dict().keys()
    else:
        context = bf16_autocast('cpu')
    outputs = final_outputs(changed, inputs, samples, context)
    difference = largest_difference(outputs, reference)
    assert difference <= TOLERANCE[option], f'{option}: {difference}'
    if option == 'bf16':
        assert difference > 0  # autocast really ran in bf16


def test_options_are_off_by_default(model_and_batch):
    model, _, _ = model_and_batch
    context = speed_options_context(copy.deepcopy(model), 'cpu')
    assert not isinstance(context, torch.autocast)
    assert not model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
