"""The matcher's batched host transfer assigns exactly what the per-image, per-layer assignment of the
reference structure assigned (the implementation before the transfers were batched, kept here as the oracle),
on random predictions and targets, for every matching mode."""
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from speaq_mm.models.task_modules import SpeaQTripletMatcher
from speaq_mm.models.utils import RelationTargets, pad_relation_targets
from tests.models_fixtures import random_predictions

NUM_CLASSES, NUM_PREDICATES, ENTITY_QUERIES, RELATION_QUERIES = 6, 6, 8, 16


def per_image_assignment(matcher, predictions, targets):
    """The assignment one image and one layer at a time, each with its own device round trips."""
    padded = pad_relation_targets(targets)

    def match(quality_layer, cost_layers):
        cost = sum(matcher.triplet_cost(layer, padded) for layer in cost_layers)
        mismatch = matcher._target_mismatch(padded) if matcher.use_group_mask else None
        if mismatch is not None:
            cost = cost + mismatch * matcher.group_mask_cost
        if matcher.one_to_many == 'dynamic':
            copies = matcher.dynamic_k(quality_layer, padded, mismatch)
        else:
            copies = torch.full_like(padded.predicate_labels, matcher.k)
        cost = torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8).cpu()
        valid_copies = copies[padded.valid]
        mean_k = valid_copies.float().mean() if valid_copies.numel() else cost.new_zeros(())
        matches = []
        for b, count in enumerate(padded.num_relations):
            columns = torch.repeat_interleave(torch.arange(count), copies[b, :count].cpu())
            if columns.numel() == 0:
                matches.append((torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)))
                continue
            rows, picked = linear_sum_assignment(cost[b][:, columns].numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.long), columns[torch.as_tensor(picked)]))
        return matches, mean_k

    layers = [predictions.layer(index) for index in range(predictions.num_layers)]
    if matcher.match_independent:
        per_layer = [match(layer, [layer]) for layer in layers]
        return [m for m, _ in per_layer], torch.stack([k for _, k in per_layer])
    matches, mean_k = match(layers[-1], layers)
    return [matches] * len(layers), mean_k.repeat(len(layers))


def random_targets(batch, seed):
    """Images with 0 to 9 relations among 2 to 7 objects (boxes inside the image, normalised cxcywh)."""
    gen = torch.Generator().manual_seed(seed)
    targets = []
    for b in range(batch):
        objects = int(torch.randint(2, 8, (), generator=gen))
        relations = 0 if b == 1 else int(torch.randint(1, 10, (), generator=gen))
        centre = torch.rand(objects, 2, generator=gen) * 0.6 + 0.2
        size = torch.rand(objects, 2, generator=gen) * 0.3 + 0.05
        pairs = torch.randint(0, objects, (relations, 2), generator=gen)
        targets.append(RelationTargets(
            entity_boxes=torch.cat([centre, size], 1), entity_labels=torch.randint(0, NUM_CLASSES, (objects,),
                                                                                   generator=gen),
            pairs=pairs, predicate_labels=torch.randint(0, NUM_PREDICATES, (relations,), generator=gen),
            relation_boxes=torch.cat([torch.rand(relations, 2, generator=gen) * 0.6 + 0.2,
                                      torch.rand(relations, 2, generator=gen) * 0.3 + 0.05], 1),
            sample_weight=1.0, source=None))
    return targets


MODES = [
    dict(one_to_many='static', k=1, match_independent=False),
    dict(one_to_many='static', k=3, match_independent=True),
    dict(one_to_many='dynamic', k=4, quality_combine='max', predicate_score_weight=-0.5, use_group_mask=True,
         num_groups=2, match_independent=True),
    dict(one_to_many='dynamic', k=2, quality_combine='gm', use_group_mask=True, num_groups=3,
         match_independent=False),
]


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_batched_transfer_assigns_like_the_per_image_loop(mode, seed):
    matcher = SpeaQTripletMatcher(NUM_PREDICATES, ENTITY_QUERIES, RELATION_QUERIES, **mode)
    if matcher.uses_predicate_counts:
        matcher.set_predicate_counts([40, 25, 10, 5, 3, 1])
    predictions = random_predictions(3, 4, RELATION_QUERIES, seed=seed)
    if seed == 2:  # a non-finite image still gets its (arbitrary but identical) assignment
        predictions.relation_boxes[:, 0, 0] = float('nan')
    targets = random_targets(4, seed)
    matches, mean_k = matcher(predictions, targets)
    expected, expected_k = per_image_assignment(matcher, predictions, targets)
    assert len(matches) == len(expected) == 3
    assert sum(len(q) for layer in matches for q, _ in layer) > 0
    for layer, expected_layer in zip(matches, expected):
        for (queries, gts), (expected_queries, expected_gts) in zip(layer, expected_layer, strict=True):
            assert queries.dtype == gts.dtype == torch.long
            assert queries.tolist() == expected_queries.tolist() and gts.tolist() == expected_gts.tolist()
    torch.testing.assert_close(mean_k, expected_k, rtol=0, atol=0)
