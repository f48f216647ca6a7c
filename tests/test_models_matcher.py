"""SpeaQTripletMatcher: triplet cost, group mask, static/dynamic one-to-many, shared vs independent layers."""
import math

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from speaq_mm.models.dense_heads import SpeaQRelationHead
from speaq_mm.models.task_modules import SpeaQTripletMatcher
from speaq_mm.models.utils import RelationPredictions, RelationTargets, pad_relation_targets
from tests.models_fixtures import tiny_speaq_cfg

SUBJECT = [0.3, 0.3, 0.2, 0.2]
OBJECT = [0.7, 0.7, 0.2, 0.2]
CENTRE = [0.5, 0.5, 0.4, 0.4]
FAR = [0.9, 0.1, 0.1, 0.1]  # no overlap with SUBJECT or OBJECT


def targets(num_relations=1, predicates=None, sample_weight=1.0):
    """One image, entities 0 = SUBJECT, 1 = OBJECT, ``num_relations`` copies of 0 -> 1."""
    predicates = predicates or [0] * num_relations
    return RelationTargets(
        entity_boxes=torch.tensor([SUBJECT, OBJECT]), entity_labels=torch.tensor([1, 2]),
        pairs=torch.tensor([[0, 1]] * len(predicates)).reshape(-1, 2),
        predicate_labels=torch.tensor(predicates), relation_boxes=torch.tensor([CENTRE] * len(predicates)),
        sample_weight=sample_weight, source=None)


def predictions(subject_boxes, object_boxes=None, relation_boxes=None, layers=1, classes=7, predicates=5,
                predicate_logits=None):
    """Predictions of one image with uniform class probabilities; box lists give one box per query."""
    queries = len(subject_boxes)

    def stack(boxes):
        return torch.tensor(boxes, dtype=torch.float32)[None, None].expand(layers, 1, queries, 4).clone()

    logits = torch.zeros(layers, 1, queries, predicates)
    if predicate_logits is not None:
        logits = torch.tensor(predicate_logits, dtype=torch.float32).reshape(layers, 1, queries, predicates)
    return RelationPredictions(
        subject_logits=torch.zeros(layers, 1, queries, classes), subject_boxes=stack(subject_boxes),
        object_logits=torch.zeros(layers, 1, queries, classes),
        object_boxes=stack(object_boxes or [OBJECT] * queries),
        predicate_logits=logits, relation_boxes=stack(relation_boxes or [CENTRE] * queries))


def matcher(**kwargs):
    args = dict(num_predicates=4, num_entity_queries=2, num_relation_queries=4)
    args.update(kwargs)
    return SpeaQTripletMatcher(**args)


def shifted(box, dx):
    return [box[0] + dx] + box[1:]


def test_triplet_cost_by_hand():
    # Query 0 is exact; query 1 has every box shifted right by 0.1: L1 0.1 per box; the 0.2-wide subject and
    # object boxes keep IoU 1/3 and their enclosing box equals the union, so GIoU 1/3.
    preds = predictions([SUBJECT, shifted(SUBJECT, 0.1)], [OBJECT, shifted(OBJECT, 0.1)],
                        [CENTRE, shifted(CENTRE, 0.1)])
    cost = matcher().triplet_cost(preds.layer(0), pad_relation_targets([targets()]))
    probabilities = 1 / 5 + 2 / 7  # uniform predicate (5-way) + subject and object (7-way) probabilities
    assert cost.shape == (1, 2, 1)
    assert cost[0, 0, 0].item() == pytest.approx(-probabilities - 2 * 3)
    # The 0.4-wide centre box keeps IoU 0.3 * 0.4 / 0.2 = 0.6, again equal to its GIoU.
    assert cost[0, 1, 0].item() == pytest.approx(5 * 0.3 - probabilities - 2 * (1 / 3 + 1 / 3 + 0.6))


def test_hungarian_picks_the_cheapest_queries_and_maps_subject_and_object():
    preds = predictions([FAR, SUBJECT, FAR, FAR])
    matches, mean_k = matcher()(preds, [targets()])
    queries, gts = matches[0][0]
    assert queries.tolist() == [1] and gts.tolist() == [0]
    assert mean_k.tolist() == [1.0]


def test_static_one_to_many_gives_k_distinct_queries_per_gt():
    preds = predictions([SUBJECT] * 8)
    matches, mean_k = matcher(num_entity_queries=4, num_relation_queries=8, k=3)(preds, [targets(2, [0, 1])])
    queries, gts = matches[0][0]
    assert sorted(gts.tolist()) == [0, 0, 0, 1, 1, 1]
    assert len(set(queries.tolist())) == 6
    assert mean_k.tolist() == [3.0]


def group_matcher(**kwargs):
    # counts 3, 3, 1, 1: group 0 = {p0}, group 1 = {p1, p2, p3}; 4 slots -> 1 and 3, so relation queries
    # 0-1 serve group 0 and 2-7 group 1.
    m = matcher(num_entity_queries=4, num_relation_queries=8, use_group_mask=True, num_groups=2, **kwargs)
    m.set_predicate_counts(np.array([3.0, 3.0, 1.0, 1.0]))
    return m


def test_group_layout_from_counts_and_mask_keeps_queries_in_their_group():
    m = group_matcher()
    assert m.group_layout.relation_query_ranges == ((0, 1), (2, 7))
    # The perfect query 0 is in group 0 but the GT predicate 1 belongs to group 1.
    preds = predictions([SUBJECT] + [shifted(SUBJECT, 0.05)] * 7)
    queries, _ = m(preds, [targets(1, [1])])[0][0][0]
    assert queries.item() >= 2
    unmasked = matcher(num_entity_queries=4, num_relation_queries=8)
    assert unmasked(preds, [targets(1, [1])])[0][0][0][0].item() == 0


def test_group_mask_is_a_penalty_not_a_constraint():
    # Group 0 has 2 relation queries; 3 copies of a group-0 GT must overflow into group 1.
    preds = predictions([SUBJECT] * 8)
    queries, _ = group_matcher(k=3)(preds, [targets(1, [0])])[0][0][0]
    assert len(queries) == 3 and sorted(queries.tolist())[:2] == [0, 1]


def test_matching_without_counts_fails_clearly():
    # The head, which owns the train statistics, refuses to match before it has them.
    head = SpeaQRelationHead(2, 4, embed_dims=8, num_entity_queries=4, num_relation_queries=4,
                             criterion=dict(type='SpeaQRelationCriterion', reweight_predicates=False),
                             train_cfg=dict(assigner=dict(type='SpeaQTripletMatcher', use_group_mask=True,
                                                                num_groups=2)))
    assert head.matcher.uses_predicate_counts
    with pytest.raises(RuntimeError, match='set_train_statistics'):
        head.loss(None, None, None, [])
    head.set_train_statistics([3, 3, 1, 1], 'test counts')
    assert head.matcher.group_layout is not None


def test_reference_table_needs_the_vg_predicates():
    with pytest.raises(ValueError, match='expected 4 predicate counts'):
        matcher(use_group_mask=True, group_counts='reference')
    m = SpeaQTripletMatcher(50, 300, 600, use_group_mask=True, num_groups=4, group_counts='reference')
    assert m.group_layout.relation_query_ranges == ((0, 289), (290, 405), (406, 493), (494, 599))


# Subject IoUs of the 4 queries with the GT subject: 1, 1, 1/3, 0; object IoUs all 0.
DYNAMIC_SUBJECTS = [SUBJECT, SUBJECT, shifted(SUBJECT, 0.1), FAR]


@pytest.mark.parametrize('combine, k, expected', [
    ('max', 4, 2),   # 1 + 1 + 1/3 + 0 = 2.33 -> 2
    ('max', 2, 2),   # 1 + 1
    ('max', 1, 1),
    ('min', 4, 1),   # all 0 -> trunc 0 -> at least 1
    ('gm', 4, 1),
    ('am', 4, 1),    # 0.5 + 0.5 + 1/6 = 1.17 -> 1
])
def test_dynamic_k_by_hand(combine, k, expected):
    preds = predictions(DYNAMIC_SUBJECTS, [FAR] * 4)
    m = matcher(one_to_many='dynamic', k=k, quality_combine=combine, match_independent=True)
    matches, mean_k = m(preds, [targets()])
    assert mean_k.tolist() == [expected]
    assert len(matches[0][0][0]) == expected


def test_dynamic_k_with_predicate_score_and_both_ious():
    # Objects exact too: 'am' qualities 1, 1, (1/3 + 1)/2 = 2/3, 1/2 (object exact, subject 0)
    # plus -0.5 * 1/5 each: 0.9 + 0.9 + 0.5667 + 0.4 = 2.767 -> 2.
    preds = predictions(DYNAMIC_SUBJECTS)
    m = matcher(one_to_many='dynamic', k=4, quality_combine='am', predicate_score_weight=-0.5,
                match_independent=True)
    assert m(preds, [targets()])[1].tolist() == [2]
    # A confident GT predicate (p = 1) lowers every quality by 0.5: 0.5 + 0.5 + 0.1667 + 0 -> 1.
    logits = [[10.0, -10, -10, -10, -10]] * 4
    confident = predictions(DYNAMIC_SUBJECTS, predicate_logits=logits)
    assert m(confident, [targets()])[1].item() == 1


def test_dynamic_k_ignores_ious_of_other_groups():
    # Queries 0-1 (group 0) overlap the GT perfectly but the GT predicate 1 is in group 1, whose queries
    # 2-7 are far away: their zeroed IoUs give k = 1 instead of 2.
    preds = predictions([SUBJECT, SUBJECT] + [FAR] * 6, [FAR] * 8)
    m = group_matcher(one_to_many='dynamic', k=4, quality_combine='max', match_independent=True)
    assert m(preds, [targets(1, [1])])[1].tolist() == [1]
    m = matcher(num_entity_queries=4, num_relation_queries=8, one_to_many='dynamic', k=4,
                quality_combine='max', match_independent=True)
    assert m(preds, [targets(1, [1])])[1].tolist() == [2]


def test_independent_layers_match_on_their_own_outputs_and_shared_on_the_sum():
    # Layer 0 puts a perfect query at 0, layer 1 at 1; query 2 is close in both.
    preds = predictions([SUBJECT] * 4, layers=2)
    close = shifted(SUBJECT, 0.02)
    layer0 = [SUBJECT, FAR, close, FAR]
    layer1 = [FAR, SUBJECT, close, FAR]
    boxes = torch.tensor([layer0, layer1])[:, None]
    preds = preds._replace(subject_boxes=boxes)
    independent, _ = matcher(match_independent=True)(preds, [targets()])
    assert [m[0][0].tolist() for m in independent] == [[0], [1]]
    shared, mean_k = matcher(match_independent=False)(preds, [targets()])
    assert [m[0][0].tolist() for m in shared] == [[2], [2]]
    assert mean_k.tolist() == [1.0, 1.0]


def test_shared_dynamic_matching_uses_the_final_layer_quality():
    preds = predictions(DYNAMIC_SUBJECTS, [FAR] * 4, layers=2)
    boxes = preds.subject_boxes.clone()
    boxes[0] = torch.tensor(FAR)  # layer 0 overlaps nothing
    preds = preds._replace(subject_boxes=boxes)
    matches, mean_k = matcher(one_to_many='dynamic', k=4, quality_combine='max')(preds, [targets()])
    assert mean_k.tolist() == [2.0, 2.0]
    assert matches[0][0][0].tolist() == matches[1][0][0].tolist()


def test_batch_with_empty_image_and_non_finite_predictions():
    preds = predictions([SUBJECT] * 4)
    preds = RelationPredictions(*(torch.cat([f, f], dim=1) for f in preds))
    boxes = preds.subject_boxes.clone()
    boxes[0, 1, 0] = math.nan
    preds = preds._replace(subject_boxes=boxes)
    empty = targets(0, [])
    matches, mean_k = matcher(one_to_many='dynamic', k=1, match_independent=True)(preds, [empty, targets()])
    assert matches[0][0][0].numel() == 0
    assert matches[0][1][0].numel() == 1 and matches[0][1][0].item() != 0
    none, mean_none = matcher()(predictions([SUBJECT] * 4), [empty])
    assert none[0][0][0].numel() == 0 and mean_none.tolist() == [0.0]


@pytest.mark.parametrize('kwargs, message', [
    (dict(one_to_many='sometimes'), 'one_to_many'),
    (dict(quality_combine='median'), 'quality_combine'),
    (dict(group_counts='guess'), 'group_counts'),
    (dict(k=0), 'k must be'),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        matcher(**kwargs)


def test_query_counts_are_checked_once_by_the_model():
    # The detector checks N_rel against N_so for its head and matcher (and the layout function for its callers).
    with pytest.raises(ValueError, match='num_relation_queries .5. must be a multiple of num_entity_queries .4.'):
        MODELS.build(tiny_speaq_cfg(entity_queries=4, relation_queries=5))
