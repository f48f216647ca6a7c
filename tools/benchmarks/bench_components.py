"""Micro-benchmarks of the SpeaQ training and inference path, run by ``tools/benchmarks/run_all.py``.

Each function builds what it measures, runs it once to warm up, then ``repeats`` more times and returns the
seconds of every timed run (``run_all.py`` reports their median). Workloads:

- ``matcher``: ``SpeaQTripletMatcher`` on one decoder layer of the R-101 recipe's head (600 relation queries,
  150 classes, 50 predicates, dynamic one-to-many, group mask) for a per-GPU batch of VG-like scene graphs;
- ``criterion``: ``SpeaQRelationCriterion`` forward and backward for one layer with those matches;
- ``train_step``: a full optimisation step (data preprocessing, forward, backward, AdamW step) of the tiny
  toy model on a batch of 16 toy-sized images on CPU, or of the R-101 recipe on a batch of 5 at 800 x 1333 on a
  GPU;
- ``inference``: ``predict`` on one image (tiny model at 128 px on CPU; R-101 at 800 x 1333 on a GPU);
  ``--model`` picks either model on either device.

Run one directly: ``python tools/benchmarks/bench_components.py matcher [--repeats 5] [--device cuda]``.
"""
import argparse
import json
import os.path as osp
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
R101_CONFIG = osp.join(REPO, 'configs', '_base_', 'models', 'speaq_r101.py')
TINY_CONFIG = osp.join(REPO, 'configs', '_base_', 'models', 'speaq_tiny.py')
# Scene-graph sizes of the VG-like batches (objects and relations per image), as bench_model.py uses.
OBJECTS, RELATIONS = 20, 25


def _synchronize(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def timed(function, repeats, device='cpu'):
    """Seconds of ``repeats`` runs of ``function()`` after one warm-up run."""
    function()
    seconds = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        function()
        _synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def build_model(config, device):
    """The config's SpeaQ detector with train statistics set (the reference VG counts for 50 predicates)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import speaq_mm  # noqa: F401  (registers the model)
    from speaq_mm.models.task_modules import REFERENCE_PREDICATE_COUNTS

    register_all_modules(init_default_scope=True)
    model = MODELS.build(Config.fromfile(config).model).to(device)
    model.init_weights()
    head = model.bbox_head
    counts = (REFERENCE_PREDICATE_COUNTS if head.num_predicates == len(REFERENCE_PREDICATE_COUNTS)
              else [10 * (i + 1) for i in range(head.num_predicates)])
    model.set_train_statistics(dict(fg_rel_count=counts), 'benchmark counts')
    return model


def random_samples(model, batch, height, width, device, objects=OBJECTS, relations=RELATIONS):
    """Preprocessed image tensors and packed samples with random, valid scene graphs (bench_model.py's)."""
    from speaq_mm.testing.random_batches import random_batch
    head = model.bbox_head
    inputs, samples = random_batch(batch, height, width, objects, relations, head.num_entity_classes,
                                   head.num_predicates)
    return inputs.to(device), [sample.to(device) for sample in samples]


def random_layer_predictions(head, batch, queries, device, seed=0):
    """One decoder layer of head outputs (B, Q, ...) with boxes inside the image, requiring gradients."""
    from speaq_mm.models.utils import RelationPredictions
    gen = torch.Generator().manual_seed(seed)

    def boxes():
        centre = torch.rand(batch, queries, 2, generator=gen) * 0.6 + 0.2
        return torch.cat([centre, torch.rand(batch, queries, 2, generator=gen) * 0.3 + 0.1], dim=-1)

    fields = dict(subject_logits=torch.randn(batch, queries, head.num_entity_classes + 1, generator=gen),
                  subject_boxes=boxes(),
                  object_logits=torch.randn(batch, queries, head.num_entity_classes + 1, generator=gen),
                  object_boxes=boxes(),
                  predicate_logits=torch.randn(batch, queries, head.num_predicates + 1, generator=gen),
                  relation_boxes=boxes())
    return RelationPredictions(**{key: value.to(device).requires_grad_() for key, value in fields.items()})


def _head_inputs(device, batch):
    from speaq_mm.models.utils import build_relation_targets
    model = build_model(R101_CONFIG, device)
    head = model.bbox_head
    _, samples = random_samples(model, batch, 800, 1333, device)
    layer = random_layer_predictions(head, batch, model.num_relation_queries, device)
    stacked = type(layer)(*(field.unsqueeze(0) for field in layer))  # one layer on the layer axis
    return head, stacked, [build_relation_targets(sample) for sample in samples]


def bench_matcher(repeats, device='cpu', batch=5):
    """Seconds per decoder layer of the recipe's matcher."""
    head, predictions, targets = _head_inputs(device, batch)
    with torch.no_grad():
        return timed(lambda: head.matcher(predictions, targets), repeats, device)


def bench_criterion(repeats, device='cpu', batch=5):
    """Seconds of the recipe's criterion, forward and backward, for one decoder layer."""
    head, predictions, targets = _head_inputs(device, batch)
    with torch.no_grad():
        matches, _ = head.matcher(predictions, targets)
    layer = predictions.layer(0)

    def step():
        losses = head.criterion(layer, targets, matches[0])[0]
        sum(losses.values()).backward()

    return timed(step, repeats, device)


def _workload(device, model=None):
    """(config, batch, height, width, objects, relations) of the training step and inference. ``model``:
    ``'tiny'`` (the toy model on toy-sized scenes) or ``'r101'`` (the recipe on VG-sized ones); by default
    tiny on CPU and R-101 on a GPU."""
    if model is None:
        model = 'r101' if str(device).startswith('cuda') else 'tiny'
    if model not in ('tiny', 'r101'):
        raise ValueError(f'model must be "tiny" or "r101", got {model!r}')
    if model == 'r101':
        return R101_CONFIG, 5, 800, 1333, OBJECTS, RELATIONS
    return TINY_CONFIG, 16, 128, 128, 4, 6


def bench_train_step(repeats, device='cpu', model=None):
    """Seconds of a full training step (preprocess, forward, backward, AdamW step)."""
    config, batch, height, width, objects, relations = _workload(device, model)
    model = build_model(config, device)
    model.train()
    inputs, samples = random_samples(model, batch, height, width, device, objects, relations)
    images = [(image.clamp(-2, 2) * 60 + 120).to(torch.uint8) for image in inputs]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)

    def step():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)
        loss, _ = model.parse_losses(model.loss(data['inputs'], data['data_samples']))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step, repeats, device)


def bench_inference(repeats, device='cpu', model=None):
    """Seconds of ``predict`` on one image."""
    config, _, height, width, objects, relations = _workload(device, model)
    model = build_model(config, device)
    model.eval()
    inputs, samples = random_samples(model, 1, height, width, device, objects, relations)
    with torch.no_grad():
        return timed(lambda: model.predict(inputs, samples), repeats, device)


BENCHMARKS = dict(matcher=bench_matcher, criterion=bench_criterion, train_step=bench_train_step,
                  inference=bench_inference)


def describe(name, device='cpu', model=None):
    """One line saying what ``name`` measures on ``device`` (``model`` as in :func:`_workload`)."""
    config, batch, height, width, objects, relations = _workload(device, model)
    model = 'R-101 recipe' if config == R101_CONFIG else 'tiny toy model'
    return {
        'matcher': f'SpeaQTripletMatcher, one decoder layer, R-101 recipe head (600 relation queries), batch 5, '
                   f'{OBJECTS} objects / {RELATIONS} relations per image',
        'criterion': 'SpeaQRelationCriterion forward + backward, one decoder layer, same inputs as the matcher',
        'train_step': f'full training step (preprocess, forward, backward, AdamW), {model}, batch {batch}, '
                      f'{height}x{width}, {objects} objects / {relations} relations per image',
        'inference': f'predict() per image, {model}, {height}x{width}',
    }[name]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('name', choices=sorted(BENCHMARKS))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--model', choices=['tiny', 'r101'], help='train_step / inference: the model '
                        '(default: tiny on CPU, r101 on a GPU)')
    args = parser.parse_args(argv)
    options = dict(model=args.model) if args.name in ('train_step', 'inference') else {}
    seconds = BENCHMARKS[args.name](args.repeats, device=args.device, **options)
    print(json.dumps(dict(name=args.name, workload=describe(args.name, args.device, args.model),
                          seconds=seconds)))


if __name__ == '__main__':
    main()
