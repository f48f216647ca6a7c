"""The pseudo-label curation filters (speaq_mm.synthetic.filters) on hand-built predictions: every expected
survivor is worked out in the test from the numbers it builds."""
import copy

import pytest

from speaq_mm.synthetic.filters import (
    CurationLog,
    CurationOptions,
    agree_with_plan,
    cap_predicates,
    curate,
    drop_self_and_repeated,
    exclude_images,
    suppress_duplicate_entities,
    threshold_relations,
    topk_relations,
)


def obj(id, name, bbox, score=0.9):
    return dict(id=id, name=name, bbox=list(bbox), score=score)


def rel(subject, obj_id, predicate, score):
    return dict(subject=subject, object=obj_id, predicate=predicate, score=score)


def image(file_name, objects, relations):
    return dict(file_name=file_name, id=file_name.split('.')[0], width=100, height=100, objects=objects,
                relations=relations)


def triplets(graph):
    return [(r['subject'], r['predicate'], r['object'], r['score']) for r in graph['relations']]


def test_score_threshold_keeps_scores_at_or_above():
    graphs = [image('a.png', [obj(0, 'cat', (0, 0, 10, 10)), obj(1, 'mat', (0, 10, 30, 30))],
                    [rel(0, 1, 'on', 0.6), rel(0, 1, 'near', 0.3), rel(1, 0, 'under', 0.5)])]
    before = copy.deepcopy(graphs)
    log = CurationLog()
    kept = threshold_relations(graphs, 0.5, log)
    # 0.6 and 0.5 are >= 0.5; 0.3 is not.
    assert triplets(kept[0]) == [(0, 'on', 1, 0.6), (1, 'under', 0, 0.5)]
    assert log.dropped == {'relation: below score threshold': 1}
    assert graphs == before  # the input is untouched


def test_topk_keeps_the_highest_scores_per_image():
    graphs = [image('a.png', [obj(0, 'cat', (0, 0, 10, 10)), obj(1, 'mat', (0, 10, 30, 30))],
                    [rel(0, 1, 'near', 0.2), rel(0, 1, 'on', 0.9), rel(1, 0, 'under', 0.5)]),
              image('b.png', [obj(0, 'cat', (0, 0, 10, 10)), obj(1, 'mat', (0, 10, 30, 30))], [rel(0, 1, 'on', 0.1)])]
    log = CurationLog()
    kept = topk_relations(graphs, 2, log)
    # a: scores 0.9 and 0.5 are the top 2, in score order; b has one relation only.
    assert triplets(kept[0]) == [(0, 'on', 1, 0.9), (1, 'under', 0, 0.5)]
    assert triplets(kept[1]) == [(0, 'on', 1, 0.1)]
    assert log.dropped == {'relation: beyond top-k': 1}


def test_duplicate_entities_are_merged_per_class_and_relations_repointed():
    # cat 0 (score 0.9) and cat 1 (0.6) overlap: intersection 10x9 = 90, union 100 + 90 - 90 = 100 -> IoU 0.9.
    # dog 2 has the box of cat 1 but another class: never merged. cat 3 is far away: kept.
    objects = [obj(0, 'cat', (0, 0, 10, 10), 0.9), obj(1, 'cat', (0, 0, 10, 9), 0.6), obj(2, 'dog', (0, 0, 10, 9), 0.8),
               obj(3, 'cat', (50, 50, 60, 60), 0.7), obj(4, 'mat', (0, 20, 40, 40), 0.95)]
    relations = [rel(1, 4, 'on', 0.8), rel(0, 4, 'on', 0.7), rel(2, 1, 'near', 0.6), rel(0, 1, 'near', 0.5),
                 rel(3, 4, 'near', 0.4)]
    log = CurationLog()
    kept = suppress_duplicate_entities([image('a.png', objects, relations)], 0.85, log)
    assert [o['id'] for o in kept[0]['objects']] == [0, 2, 3, 4]
    # every use of cat 1 now points at cat 0
    assert triplets(kept[0]) == [(0, 'on', 4, 0.8), (0, 'on', 4, 0.7), (2, 'near', 0, 0.6), (0, 'near', 0, 0.5),
                                 (3, 'near', 4, 0.4)]
    assert log.dropped == {'object: duplicate entity': 1}
    # At IoU threshold 0.95 the two cats (IoU 0.9) are distinct.
    distinct = suppress_duplicate_entities([image('a.png', objects, relations)], 0.95, CurationLog())
    assert len(distinct[0]['objects']) == 5
    # After the merge: the self pair (0, near, 0) and the lower copy of (0, on, 4) go.
    log = CurationLog()
    cleaned = drop_self_and_repeated(kept, log)
    assert triplets(cleaned[0]) == [(0, 'on', 4, 0.8), (2, 'near', 0, 0.6), (3, 'near', 4, 0.4)]
    assert log.dropped == {'relation: self pair': 1, 'relation: repeated triplet': 1}


def test_repeated_triplet_keeps_the_highest_score_whatever_the_order():
    objects = [obj(0, 'cat', (0, 0, 10, 10)), obj(1, 'mat', (0, 10, 30, 30))]
    graphs = [image('a.png', objects, [rel(0, 1, 'on', 0.3), rel(0, 1, 'near', 0.4), rel(0, 1, 'on', 0.8)])]
    kept = drop_self_and_repeated(graphs, CurationLog())
    assert triplets(kept[0]) == [(0, 'on', 1, 0.8), (0, 'near', 1, 0.4)]


def plan(file_name, names, relations):
    return dict(file_name=file_name, objects=[dict(id=i, name=n) for i, n in enumerate(names)],
                relations=[dict(subject=s, object=o, predicate=p) for s, o, p in relations])


def test_plan_agreement_by_classes_and_predicate():
    plans = {p['file_name']: p for p in [
        plan('a.png', ['cat', 'mat', 'dog'], [(0, 1, 'on'), (2, 0, 'near')]),  # intends cat-on-mat, dog-near-cat
        plan('b.png', ['cat', 'mat'], [(0, 1, 'on')]),  # intends cat-on-mat
        plan('c.png', ['cat', 'mat'], [(0, 1, 'on'), (0, 1, 'on')]),  # cat-on-mat twice
        plan('e.png', ['cat', 'mat', 'dog'], [(0, 1, 'on'), (2, 0, 'near')]),
    ]}
    objects = [obj(0, 'cat', (0, 0, 10, 10)), obj(1, 'mat', (0, 10, 30, 30)), obj(2, 'dog', (40, 0, 60, 20))]
    graphs = [
        # a: finds cat-on-mat and dog-near-cat (2 of 2), plus an unplanned mat-under-cat.
        image('a.png', objects, [rel(0, 1, 'on', 0.9), rel(2, 0, 'near', 0.8), rel(1, 0, 'under', 0.7)]),
        # b: finds mat-on-cat (reversed: not the intended triplet) and cat-near-mat (other predicate): 0 of 1.
        image('b.png', objects[:2], [rel(1, 0, 'on', 0.9), rel(0, 1, 'near', 0.8)]),
        # c: one cat-on-mat relation realises only one of the two intended copies: 1 of 2.
        image('c.png', objects[:2], [rel(0, 1, 'on', 0.9)]),
        # d: not planned.
        image('d.png', objects[:2], [rel(0, 1, 'on', 0.9)]),
        # e: two cat-on-mat relations (two cats) realise the one intended cat-on-mat; no dog-near-cat: 1 of 2.
        image('e.png', objects[:2] + [obj(3, 'cat', (50, 0, 60, 10))], [rel(0, 1, 'on', 0.9), rel(3, 1, 'on', 0.8)]),
    ]
    log = CurationLog()
    kept = agree_with_plan(graphs, plans, 1, False, log)
    assert [g['file_name'] for g in kept] == ['a.png', 'c.png', 'e.png']
    assert len(kept[0]['relations']) == 3  # without keep_only_agreeing the unplanned relation stays
    assert log.dropped == {'image: disagrees with plan': 1, 'image: not in plan': 1}
    # M = 2: a (2 found) stays, c and e (1 of 2 each) go.
    log = CurationLog()
    assert [g['file_name'] for g in agree_with_plan(graphs, plans, 2, False, log)] == ['a.png']
    assert log.dropped['image: disagrees with plan'] == 3
    # M = 5 asks for more than a intends: all of its 2 are enough.
    assert [g['file_name'] for g in agree_with_plan(graphs, plans, 5, False, CurationLog())] == ['a.png']
    # keep_only_agreeing: a keeps its two planned relations only.
    log = CurationLog()
    only = agree_with_plan(graphs, plans, 1, True, log)
    assert triplets(only[0]) == [(0, 'on', 1, 0.9), (2, 'near', 0, 0.8)]
    # e keeps one cat-on-mat (the higher score): the plan intends one.
    assert triplets(only[2]) == [(0, 'on', 1, 0.9)]
    assert log.dropped['relation: not in plan'] == 2


def test_plan_matches_by_base_name():
    plans = {'a.png': plan('a.png', ['cat', 'mat'], [(0, 1, 'on')])}
    graphs = [image('sub/a.png', [obj(0, 'cat', (0, 0, 10, 10)), obj(1, 'mat', (0, 10, 30, 30))],
                    [rel(0, 1, 'on', 0.9)])]
    assert len(agree_with_plan(graphs, plans, 1, False, CurationLog())) == 1


def test_predicate_caps_over_the_set():
    objects = [obj(0, 'cat', (0, 0, 10, 10)), obj(1, 'mat', (0, 10, 30, 30))]
    graphs = [image('a.png', objects, [rel(0, 1, 'on', 0.5), rel(0, 1, 'near', 0.9)]),
              image('b.png', objects, [rel(0, 1, 'on', 0.7), rel(1, 0, 'on', 0.2)]),
              image('c.png', objects, [rel(0, 1, 'on', 0.6)])]
    # "on" scores over the set: 0.7 (b), 0.6 (c), 0.5 (a), 0.2 (b). A cap of 2 keeps 0.7 and 0.6.
    log = CurationLog()
    kept = cap_predicates(graphs, {'on': 2}, log)
    assert [triplets(g) for g in kept] == [[(0, 'near', 1, 0.9)], [(0, 'on', 1, 0.7)], [(0, 'on', 1, 0.6)]]
    assert log.dropped == {'relation: over predicate cap': 2}
    # An int caps every predicate: 1 keeps "on" 0.7 and "near" 0.9.
    kept = cap_predicates(graphs, 1, CurationLog())
    assert [triplets(g) for g in kept] == [[(0, 'near', 1, 0.9)], [(0, 'on', 1, 0.7)], []]


def test_exclude_by_file_name_base_name_or_id():
    graphs = [image('x/a.png', [], []), image('b.png', [], []), image('c.png', [], []), image('d.png', [], [])]
    log = CurationLog()
    kept = exclude_images(graphs, ['a.png', 'c', 'zzz'], log)
    assert [g['file_name'] for g in kept] == ['b.png', 'd.png']
    assert log.dropped == {'image: excluded': 2}


def test_curate_chains_the_filters_and_prunes():
    objects = [obj(0, 'cat', (0, 0, 10, 10), 0.9), obj(1, 'cat', (0, 0, 10, 9), 0.5), obj(2, 'mat', (0, 10, 30, 30)),
               obj(3, 'dog', (60, 60, 80, 80))]
    graphs = [
        image('a.png', objects, [rel(1, 2, 'on', 0.8), rel(0, 2, 'on', 0.6), rel(3, 2, 'near', 0.1),
                                 rel(2, 0, 'under', 0.5)]),
        image('b.png', objects, [rel(0, 2, 'on', 0.05)]),  # below the threshold: image left empty
        image('skip.png', objects, [rel(0, 2, 'on', 0.9)]),  # excluded
    ]
    kept, log = curate(graphs, CurationOptions(score_thr=0.2, entity_iou_thr=0.8, topk=1, exclude=['skip.png']))
    # a: thr drops dog-near (0.1); cat 1 merges into cat 0, so (0, on, 2) 0.8 and 0.6 repeat -> 0.6 goes;
    # top-1 keeps (0, on, 2) 0.8 over (2, under, 0) 0.5; dog 3 then sits in no relation.
    assert [g['file_name'] for g in kept] == ['a.png']
    assert triplets(kept[0]) == [(0, 'on', 2, 0.8)]
    assert [o['id'] for o in kept[0]['objects']] == [0, 2]
    assert log.dropped == {'image: excluded': 1, 'relation: below score threshold': 2, 'object: duplicate entity': 2,
                           'relation: repeated triplet': 1, 'relation: beyond top-k': 1,
                           'object: in no kept relation': 4, 'image: no relation kept': 1}


@pytest.mark.parametrize('kwargs', [dict(score_thr=1.5), dict(topk=0), dict(entity_iou_thr=0.0),
                                    dict(predicate_caps={'on': -1}), dict(min_plan_agreement=-1)])
def test_bad_options(kwargs):
    with pytest.raises(ValueError):
        CurationOptions(**kwargs)


def test_malformed_predictions_are_refused_with_the_image_named():
    graphs = [image('a.png', [obj(0, 'cat', (0, 0, 10, 10))], [rel(0, 7, 'on', 0.5)])]
    with pytest.raises(ValueError, match=r'image 0 \(a.png\).*relation'):
        curate(graphs, CurationOptions())
