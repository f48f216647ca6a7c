"""Per-relation loss weights (pseudo-label confidences): all ones is today's loss bit for bit, a relation at
weight 0 gives its matched queries no loss and no gradient, and the weights reach the criterion from
``gt_relations.weights``."""
import pytest
import torch
from mmdet.registry import MODELS

from speaq_mm.models.losses import SpeaQRelationCriterion
from speaq_mm.models.utils import RelationPredictions, RelationTargets, build_relation_targets
from tests.models_fixtures import (
    image_batch,
    random_predictions,
    three_object_sample,
    tiny_speaq_cfg,
    two_object_sample,
)


def criterion():
    return SpeaQRelationCriterion(num_entity_classes=6, num_predicates=6, reweight_predicates=False)


def batch(relation_weights=(None, None), sample_weights=(1.0, 0.5)):
    """Two images: image 0 has relations 0 and 1 (relation 1 matched by queries 1 and 2, one-to-many),
    image 1 has relation 0 (query 3)."""
    preds = random_predictions(1, 2, 6, seed=1).layer(0)
    preds = RelationPredictions(*(field.clone().requires_grad_() for field in preds))
    first = RelationTargets(
        entity_boxes=torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2], [0.5, 0.2, 0.3, 0.1]]),
        entity_labels=torch.tensor([1, 0, 5]), pairs=torch.tensor([[0, 1], [2, 0]]),
        predicate_labels=torch.tensor([1, 4]),
        relation_boxes=torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.4, 0.25, 0.1, 0.1]]),
        sample_weight=sample_weights[0], source='real', relation_weights=relation_weights[0])
    second = RelationTargets(
        entity_boxes=torch.tensor([[0.2, 0.6, 0.2, 0.3], [0.6, 0.4, 0.2, 0.2]]), entity_labels=torch.tensor([3, 2]),
        pairs=torch.tensor([[1, 0]]), predicate_labels=torch.tensor([0]),
        relation_boxes=torch.tensor([[0.4, 0.5, 0.4, 0.2]]), sample_weight=sample_weights[1], source='synthetic',
        relation_weights=relation_weights[1])
    matches = [(torch.tensor([4, 1, 2]), torch.tensor([0, 1, 1])), (torch.tensor([3]), torch.tensor([0]))]
    return preds, [first, second], matches


def test_all_ones_is_todays_loss_bit_for_bit():
    preds, targets, matches = batch()
    today, _, _ = criterion()(preds, targets, matches)
    for weights in ((torch.ones(2), torch.ones(1)), (torch.ones(2), None)):
        preds, targets, matches = batch(weights)
        weighted, _, _ = criterion()(preds, targets, matches)
        assert today.keys() == weighted.keys()
        for name in today:
            assert torch.equal(today[name], weighted[name]), name


def test_weight_zero_gives_no_loss_and_no_gradient_from_that_relation():
    preds, targets, matches = batch((torch.tensor([1.0, 0.0]), None))
    losses, _, _ = criterion()(preds, targets, matches)
    sum(losses.values()).backward()
    # Relation 1 of image 0 is matched by queries 1 and 2: every field there gets exactly zero gradient.
    for field in preds:
        assert torch.count_nonzero(field.grad[0, [1, 2]]) == 0
        assert torch.count_nonzero(field.grad[0, 4]) > 0  # relation 0 (weight 1) still trains its query
    # Their predictions change no loss term.
    moved = RelationPredictions(*(field.detach().clone() for field in preds))
    for field in moved:
        field[0, [1, 2]] = torch.rand_like(field[0, [1, 2]])
    moved_losses, _, _ = criterion()(moved, targets, matches)
    for name in losses:
        assert torch.equal(losses[name], moved_losses[name]), name
    # At weight 1 the same queries do train (the test can fail).
    preds, targets, matches = batch((torch.tensor([1.0, 1.0]), None))
    sum(criterion()(preds, targets, matches)[0].values()).backward()
    assert all(torch.count_nonzero(field.grad[0, [1, 2]]) > 0 for field in preds)


def test_relation_weights_multiply_the_matched_box_terms_on_top_of_the_sample_weight():
    full, _, _ = criterion()(*batch())
    half, _, _ = criterion()(*batch((torch.full((2, ), 0.5), torch.full((1, ), 0.5))))
    for name in full:
        if 'bbox' in name or 'giou' in name:  # matched terms only, unweighted denominators
            assert half[name].item() == pytest.approx(full[name].item() / 2, rel=1e-6), name
        else:  # background queries keep their sample weight
            assert half[name].item() != pytest.approx(full[name].item() / 2, rel=1e-3), name


def with_weights(sample, weights):
    sample.gt_relations.weights = torch.tensor(weights, dtype=torch.float32)
    return sample


def test_targets_read_gt_relations_weights_and_check_them():
    sample = with_weights(two_object_sample(), [0.25, 1.0])
    assert build_relation_targets(sample).relation_weights.tolist() == [0.25, 1.0]
    assert build_relation_targets(two_object_sample()).relation_weights is None
    # A relation dropped for an empty box takes its weight with it.
    sample = with_weights(three_object_sample(), [0.1, 0.2, 0.3])
    sample.gt_instances.bboxes[2] = torch.tensor([10.0, 36.0, 10.0, 62.0])  # zero width: box 2 unusable
    assert build_relation_targets(sample).relation_weights.tolist() == [pytest.approx(0.1)]
    with pytest.raises(ValueError, match='weights'):
        build_relation_targets(with_weights(two_object_sample(), [0.5, -1.0]))


def test_detector_losses_with_unit_weights_equal_todays():
    torch.manual_seed(0)
    model = MODELS.build(tiny_speaq_cfg())
    model.init_weights()
    model.set_train_statistics(dict(classes=tuple(f'c{i}' for i in range(6)),
                                    predicates=tuple(f'p{i}' for i in range(6)),
                                    fg_rel_count=[50, 20, 10, 10, 5, 5]), 'test metainfo')
    model.eval()

    def losses(weights):
        samples = [two_object_sample(source='real'), three_object_sample(source='synthetic', sample_weight=0.5)]
        if weights is not None:
            samples = [with_weights(s, w) for s, w in zip(samples, weights)]
        data = model.data_preprocessor(image_batch(samples, 0), True)
        return model(**data, mode='loss')

    today = losses(None)
    ones = losses([[1.0, 1.0], [1.0, 1.0, 1.0]])
    for name in today:
        if 'loss' in name:
            assert torch.equal(today[name], ones[name]), name
    lowered = losses([[0.0, 0.0], [1.0, 1.0, 1.0]])
    assert any(not torch.equal(today[name], lowered[name]) for name in today if 'loss' in name)
