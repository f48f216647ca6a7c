"""Predicate groups and their query blocks (docs/model.md, "Query groups of the recipes")."""
import numpy as np
import pytest
import torch

from speaq_mm.models.task_modules import (
    REFERENCE_PREDICATE_COUNTS,
    build_predicate_group_layout,
    validate_predicate_counts,
)

# VG150 predicate indices (alphabetical, 0-based) named in the reference's group table.
ON, HAS, IN, OF, WEARING, NEAR, WITH = 30, 19, 21, 29, 47, 28, 49
# The published model's relation query blocks (4 groups, 600 relation queries).
PUBLISHED = ((0, 289), (290, 405), (406, 493), (494, 599))


def test_reference_table_reproduces_the_speaq_recipe_layout():
    layout = build_predicate_group_layout(REFERENCE_PREDICATE_COUNTS, 4, 300, 600)
    assert layout.relation_query_ranges == PUBLISHED
    assert layout.entity_queries_per_group == (145, 58, 44, 53)
    assert layout.predicates_per_group == (2, 2, 3, 43)
    groups = layout.predicate_group
    assert {int(p) for p in torch.nonzero(groups == 0)} == {ON, HAS}
    assert {int(p) for p in torch.nonzero(groups == 1)} == {IN, OF}
    assert {int(p) for p in torch.nonzero(groups == 2)} == {WEARING, NEAR, WITH}
    assert layout.query_group.tolist() == [0] * 290 + [1] * 116 + [2] * 88 + [3] * 106
    assert sum(REFERENCE_PREDICATE_COUNTS) == 2046006 and REFERENCE_PREDICATE_COUNTS[ON] == 712409


def test_reference_table_with_the_default_five_groups():
    layout = build_predicate_group_layout(REFERENCE_PREDICATE_COUNTS, 5, 300, 600)
    assert layout.predicates_per_group == (2, 2, 3, 5, 38)
    assert layout.entity_queries_per_group == (145, 58, 43, 26, 28)


def test_layout_from_counts_by_hand():
    # sorted: 40 (p2), 30 (p0), 20 (p3), 10 (p1); total 100.
    # group 0: half = 50, 40 < 50 taken, 40 + 30 >= 50 stop -> [p2]; group 1: remaining 60, half 30:
    # 30 < 30 false -> empty; group 2 takes the rest.
    layout = build_predicate_group_layout([30, 10, 40, 20], 3, 10, 20)
    assert layout.predicates_per_group == (1, 0, 3)
    assert layout.predicate_group.tolist() == [2, 2, 0, 2]
    # slots floor(40*10/100)=4, 0, floor(60*10/100)=6 -> sum 10, nothing left over.
    assert layout.entity_queries_per_group == (4, 0, 6)
    assert layout.relation_query_ranges == ((0, 7), (8, 7), (8, 19))
    mismatch = layout.mismatch_table()
    assert mismatch.shape == (20, 4)
    assert not mismatch[0, 2] and mismatch[0, 0] and not mismatch[19, 0] and mismatch[19, 2]


def test_leftover_slots_go_to_the_last_groups():
    # total 18: group 0 takes 8 (8 < 9, 10 >= 9); of the remaining 10 group 1 takes 2 + 2 (< 5); group 2 the rest.
    # slots floor(8*8/18)=3, floor(4*8/18)=1, floor(6*8/18)=2 -> 2 left over, one each to the last two groups.
    layout = build_predicate_group_layout([8, 2, 2, 2, 2, 1, 1], 3, 8, 8)
    assert layout.predicates_per_group == (1, 2, 4)
    assert layout.entity_queries_per_group == (3, 2, 3)


def test_ties_keep_index_order():
    layout = build_predicate_group_layout([10, 10, 10, 10], 2, 4, 4)
    # half of 40 is 20: 10 < 20 taken, 20 < 20 not -> the first predicate alone, by index.
    assert layout.predicate_group.tolist() == [0, 1, 1, 1]


def test_one_group_holds_everything():
    layout = build_predicate_group_layout([3, 1], 1, 5, 10)
    assert layout.predicate_group.tolist() == [0, 0]
    assert layout.relation_query_ranges == ((0, 9),)


@pytest.mark.parametrize('counts, message', [
    ([1, 2], 'expected 3 predicate counts'),
    ([1, -1, 2], '>= 0'),
    ([1, float('nan'), 2], 'NaN'),
    ([0, 0, 0], 'all predicate counts are zero'),
])
def test_invalid_counts_are_rejected_with_their_origin(counts, message):
    with pytest.raises(ValueError, match=message) as error:
        validate_predicate_counts(counts, 3, 'toy_train metainfo fg_rel_count')
    assert 'toy_train metainfo fg_rel_count' in str(error.value)


def test_invalid_group_and_query_counts():
    with pytest.raises(ValueError, match='num_groups'):
        build_predicate_group_layout([1, 2], 3, 4, 4)
    with pytest.raises(ValueError, match='multiple'):
        build_predicate_group_layout([1, 2], 1, 4, 6)


def test_validated_counts_are_float_vectors():
    counts = validate_predicate_counts(np.array([[1], [2]]), 2, 'x')
    assert counts.dtype == np.float64 and counts.tolist() == [1.0, 2.0]


@pytest.mark.parametrize('recipe', ['visual_genome.py', 'speaq_multi.py', 'synthetic_genome.py'])
def test_the_vg150_recipes_keep_the_published_layout_whatever_the_statistics(recipe):
    """VG150's own counts would give other groups with 'train_statistics'; the recipes use the published ones."""
    import os.path as osp

    from mmdet.registry import TASK_UTILS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import speaq_mm  # noqa: F401  (registers the matcher)
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    model = Config.fromfile(osp.join(root, 'configs', recipe)).model
    init_default_scope('mmdet')
    matcher = TASK_UTILS.build(model.train_cfg.assigner, default_args=dict(
        num_predicates=model.bbox_head.num_predicates, num_entity_queries=model.num_entity_queries,
        num_relation_queries=model.num_relation_queries))
    counts = np.sqrt(np.asarray(REFERENCE_PREDICATE_COUNTS, np.float64))[::-1].copy()  # another long tail
    assert build_predicate_group_layout(counts, 4, 300, 600).relation_query_ranges != PUBLISHED
    matcher.set_predicate_counts(counts)
    assert matcher.group_layout.relation_query_ranges == PUBLISHED
    groups = matcher.group_layout.predicate_group
    assert {int(p) for p in torch.nonzero(groups == 0)} == {ON, HAS}
