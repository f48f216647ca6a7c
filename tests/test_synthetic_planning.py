"""The scene planner (speaq_mm.synthetic.planning) and the toy renderer of plans: predicate shares follow the
requested power within sampling error, quotas are exact, classes come from real triplets, and the plan is a
deterministic function of the seed."""
import json
import math
import os.path as osp
from collections import Counter

import numpy as np
import pytest

from speaq_mm.synthetic.planning import ScenePlanner, predicate_probabilities, read_plan, scene_text

# Real train relations: "on" 1000 times, "has" 100, "near" 10, "under" once.
REAL = ([('cat', 'on', 'mat')] * 600 + [('dog', 'on', 'mat')] * 400 + [('man', 'has', 'hat')] * 100
        + [('dog', 'near', 'cat')] * 10 + [('mat', 'under', 'cat')])
COUNTS = dict(on=1000, has=100, near=10, under=1)


@pytest.mark.parametrize('power', [0.0, 0.5, 1.0])
def test_predicate_shares_follow_the_power_within_sampling_error(power):
    expected = {name: count ** -power for name, count in COUNTS.items()}
    total = sum(expected.values())
    expected = {name: value / total for name, value in expected.items()}
    assert predicate_probabilities(COUNTS, power) == pytest.approx(expected)
    plan = ScenePlanner(REAL, power=power, seed=3).plan(3000)
    drawn = Counter(r['predicate'] for entry in plan for r in entry['relations'])
    n = sum(drawn.values())
    assert n > 3000  # 1..3 triplets per scene
    for name, p in expected.items():
        # Each triplet's predicate is an independent draw: the share is binomial(n, p) / n.
        assert abs(drawn[name] / n - p) < 4.5 * math.sqrt(p * (1 - p) / n), (name, drawn[name] / n, p)


def test_quotas_are_exact_and_set_the_number_of_scenes():
    plan = ScenePlanner(REAL, quotas=dict(under=7, near=5), seed=0).plan()
    assert Counter(r['predicate'] for entry in plan for r in entry['relations']) == dict(under=7, near=5)
    assert all(1 <= len(entry['relations']) <= 3 for entry in plan)
    with pytest.raises(ValueError, match='without real train triplets'):
        ScenePlanner(REAL, quotas=dict(flying=3))


def test_classes_come_from_real_triplets_of_the_predicate():
    real = set(REAL)
    for entry in ScenePlanner(REAL, power=1.0, seed=1).plan(500):
        names = {o['id']: o['name'] for o in entry['objects']}
        for r in entry['relations']:
            assert (names[r['subject']], r['predicate'], names[r['object']]) in real


def test_triplets_share_entities_when_real_triplets_allow():
    # Every real triplet involves a cat, so each later triplet can attach to an entity already in the scene:
    # k triplets use k + 1 entities.
    real = [('cat', 'on', 'mat')] * 5 + [('dog', 'near', 'cat')] * 5 + [('cat', 'has', 'hat')] * 5
    for entry in ScenePlanner(real, power=0.0, max_triplets=3, seed=2).plan(200):
        assert len(entry['objects']) == len(entry['relations']) + 1, entry
    # With nothing to share, each triplet brings its own two entities.
    disjoint = [('cat', 'on', 'mat'), ('dog', 'near', 'tree')]
    plan = ScenePlanner(disjoint, power=0.0, max_triplets=3, seed=2).plan(100)
    sizes = [(len(e['objects']), len(e['relations'])) for e in plan]
    assert all(objects <= 2 * relations for objects, relations in sizes)


def test_seeded_and_templated(tmp_path):
    first = ScenePlanner(REAL, seed=5).plan(50, 'a render of {scene}', 'gen/img_{index:04d}.jpg')
    assert first == ScenePlanner(REAL, seed=5).plan(50, 'a render of {scene}', 'gen/img_{index:04d}.jpg')
    assert first != ScenePlanner(REAL, seed=6).plan(50, 'a render of {scene}', 'gen/img_{index:04d}.jpg')
    assert first[0]['file_name'] == 'gen/img_0000.jpg' and first[0]['id'] == 'gen_img_0000'
    assert first[0]['prompt'].startswith('a render of a ')
    with pytest.raises(ValueError, match='uses'):
        ScenePlanner(REAL).plan(3, 'a {thing}')
    with pytest.raises(ValueError, match='same file name'):
        ScenePlanner(REAL).plan(3, file_name_template='same.png')
    path = tmp_path / 'plan.jsonl'
    path.write_text(''.join(json.dumps(entry) + '\n' for entry in first))
    assert list(read_plan(str(path)).values()) == first
    path.write_text(json.dumps(dict(file_name='a.png', objects=[dict(id=0, name='cat')],
                                    relations=[dict(subject=0, object=3, predicate='on')])) + '\n')
    with pytest.raises(ValueError, match='line 1'):
        read_plan(str(path))


def test_scene_text_articles():
    objects = [dict(id=0, name='apple'), dict(id=1, name='table'), dict(id=2, name='cat')]
    relations = [dict(subject=0, object=1, predicate='on'), dict(subject=2, object=1, predicate='near')]
    assert scene_text(objects, relations) == 'an apple on a table and a cat near the table'


def test_render_plan_draws_the_planned_layout(tmp_path):
    from speaq_mm.datasets.toy_scenes import TOY_PREDICATES, layout_for_plan, render_plan, scene_relations
    rng = np.random.default_rng(0)
    planned = [(0, 1, 'left of'), (2, 1, 'above')]
    boxes = layout_for_plan(rng, 128, 3, planned)
    present = set(scene_relations(boxes, 128, np.zeros((3, 3), bool)))
    assert all(triplet in present for triplet in planned)
    plans = [dict(file_name=f'p{i}.png', objects=[dict(id=7, name='circle'), dict(id=9, name='square')],
                  relations=[dict(subject=7, object=9, predicate=TOY_PREDICATES[i % 3])]) for i in range(6)]
    summary = render_plan(plans, str(tmp_path), miss_rate=0.0)
    assert summary['rendered'] == 6 and summary['off_plan'] == []
    assert all(osp.isfile(tmp_path / f'p{i}.png') for i in range(6))
    with pytest.raises(FileExistsError):
        render_plan(plans, str(tmp_path))
    summary = render_plan(plans, str(tmp_path), miss_rate=1.0, overwrite=True)
    assert summary['missed'] == 6 and len(summary['off_plan']) == 6
    with pytest.raises(ValueError, match='not toy classes'):
        render_plan([dict(file_name='x.png', objects=[dict(id=0, name='cat')], relations=[])], str(tmp_path))
