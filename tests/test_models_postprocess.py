"""SpeaQTripletPostProcessor: entity merging, triplet ranking and de-duplication (docs/model.md, "Inference"),
any batch size."""
import pytest
import torch

from speaq_mm.models.task_modules import SpeaQTripletPostProcessor
from speaq_mm.models.utils import RelationPredictions
from tests.models_fixtures import random_predictions

A = [0.25, 0.25, 0.2, 0.2]
A_NEAR = [0.26, 0.25, 0.2, 0.2]  # IoU with A = 0.19 * 0.2 / (0.08 - 0.038) > 0.5
B = [0.75, 0.75, 0.2, 0.2]


def hand_predictions(predicate_logits):
    # Query 0: subject A (class 0, confident), object B (class 1); query 1: subject A_NEAR (class 0, less
    # confident), object B again (class 1, less confident).
    return RelationPredictions(
        subject_logits=torch.tensor([[[3.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]),
        subject_boxes=torch.tensor([[A, A_NEAR]]),
        object_logits=torch.tensor([[[0.0, 2.0, 0.0], [0.0, 1.0, 0.0]]]),
        object_boxes=torch.tensor([[B, B]]),
        predicate_logits=torch.tensor(predicate_logits)[None],
        relation_boxes=torch.tensor([[A, B]]))


META = [dict(img_shape=(100, 200), ori_shape=(50, 100))]


def test_entities_merge_and_duplicate_triplets_collapse():
    preds = hand_predictions([[0.0, 2.0, 0.0], [0.0, 1.0, 0.0]])  # both queries say predicate 1
    instances, relations = SpeaQTripletPostProcessor()(preds, META)[0]
    # Kept: A (0.87) and B (0.79); the near-duplicates merge into them.
    assert instances.labels.tolist() == [0, 1]
    probs = torch.softmax(torch.tensor([3.0, 0, 0]), 0)[0], torch.softmax(torch.tensor([0, 2.0, 0]), 0)[1]
    assert instances.scores.tolist() == pytest.approx([probs[0].item(), probs[1].item()])
    # Original-image pixels (100 x 50): A = (0.15, 0.15, 0.35, 0.35) normalised.
    assert instances.bboxes[0].tolist() == pytest.approx([15, 7.5, 35, 17.5])
    # Both queries give (A, B, 1): only the better one (query 0) stays.
    assert relations.pairs.tolist() == [[0, 1]]
    assert relations.labels.tolist() == [1] and relations.query_ids.tolist() == [0]
    predicate = torch.softmax(torch.tensor([0.0, 2.0, 0.0]), 0)
    assert relations.triplet_scores.item() == pytest.approx((predicate[1] * probs[0] * probs[1]).item())
    assert relations.scores.shape == (1, 3) and relations.scores[0].tolist() == pytest.approx(predicate.tolist())


def test_different_predicates_keep_both_triplets_ranked_by_score():
    preds = hand_predictions([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    _, relations = SpeaQTripletPostProcessor()(preds, META)[0]
    assert relations.pairs.tolist() == [[0, 1], [0, 1]]
    assert relations.query_ids.tolist() == [0, 1] and relations.labels.tolist() == [1, 0]
    assert bool((relations.triplet_scores[:-1] >= relations.triplet_scores[1:]).all())


def test_no_relation_column_does_not_rank_and_boxes_stay_in_input_frame_without_rescale():
    # Query 1 prefers "no relation" (last column) but still yields its best real predicate.
    preds = hand_predictions([[0.0, 2.0, 0.0], [0.0, 0.5, 5.0]])
    instances, relations = SpeaQTripletPostProcessor()(preds, META, rescale=False)[0]
    assert relations.labels.tolist() == [1]
    assert instances.bboxes[0].tolist() == pytest.approx([30, 15, 70, 35])


def test_several_predicates_per_query():
    preds = hand_predictions([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    _, relations = SpeaQTripletPostProcessor(predicates_per_query=2)(preds, META)[0]
    # Four candidate triplets on the same entity pair; each predicate keeps its best query: predicate 1 from
    # query 0 (p 0.67), predicate 0 from query 1 (p 0.91).
    assert set(zip(relations.labels.tolist(), relations.query_ids.tolist())) == {(1, 0), (0, 1)}


def test_batch_results_equal_single_image_results():
    preds = random_predictions(1, 3, 12, seed=3).layer(0)
    metas = [dict(img_shape=(64, 80), ori_shape=(128, 160))] * 3
    processor = SpeaQTripletPostProcessor()
    batched = processor(preds, metas)
    for b in range(3):
        single = processor(RelationPredictions(*(f[b:b + 1] for f in preds)), metas[b:b + 1])[0]
        for got, expected in zip(batched[b], single):
            for key in expected.keys():
                assert torch.equal(got.get(key), expected.get(key)), key
        instances, relations = batched[b]
        assert relations.pairs.max() < len(instances)
        assert bool((relations.triplet_scores[:-1] >= relations.triplet_scores[1:]).all())
        triplets = torch.cat([relations.pairs, relations.labels[:, None]], 1)
        assert len(torch.unique(triplets, dim=0)) == len(triplets)
        assert bool((instances.bboxes[:, 2] <= 160).all() and (instances.bboxes >= 0).all())


def test_bad_argument():
    with pytest.raises(ValueError, match='predicates_per_query'):
        SpeaQTripletPostProcessor(predicates_per_query=0)
