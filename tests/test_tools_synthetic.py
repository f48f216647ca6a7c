"""The synthetic-data command lines, run as docs/synthetic_data.md writes them (plan, render, curate, convert)
on a small toy real set. The model steps (pseudo-labelling with a checkpoint, training, testing) need the
`make demo` checkpoint and the scene graph inferencer: here step 3 reads predictions built from the plan
(``--predictions``), as the docs describe for a run of tools/extract_scene_graphs.py."""
import glob
import json
import os.path as osp
import re

import h5py
import pytest
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from speaq_mm.datasets.toy_scenes import make_toy_scenes
from tests.datasets_fixtures import REPO_ROOT, load_tool

init_default_scope('mmdet')
TOOLS = {'plan_scenes.py': 'tools/synthetic/plan_scenes.py', 'make_toy_scenes.py': 'tools/misc/make_toy_scenes.py',
         'pseudo_label.py': 'tools/synthetic/pseudo_label.py',
         'json_to_vg.py': 'tools/dataset_converters/json_to_vg.py'}


def documented_commands():
    """The python command lines of the sequence in docs/synthetic_data.md, continuation lines joined."""
    with open(osp.join(REPO_ROOT, 'docs', 'synthetic_data.md')) as file:
        blocks = [b for b in re.findall(r'```bash\n(.*?)```', file.read(), flags=re.S) if 'plan_scenes.py' in b
                  and 'json_to_vg.py' in b]
    assert len(blocks) == 1
    text = blocks[0].replace('\\\n', ' ')
    return [line.split() for line in text.splitlines() if line.startswith('python ')]


def predictions_from_plan(plan_path, out_path):
    """What a perfect labeller would say, plus noise the documented filters remove: a low-score relation and
    a duplicate of the first object (same class and box, lower score) with a relation of its own."""
    with open(plan_path) as file:
        plans = [json.loads(line) for line in file]
    with open(out_path, 'w') as file:
        for plan in plans:
            objects = [dict(id=o['id'], name=o['name'], bbox=[8 + 20 * k, 8 + 20 * k, 38 + 20 * k, 38 + 20 * k],
                            score=0.9) for k, o in enumerate(plan['objects'])]
            twin = dict(objects[0], id=100, score=0.6)
            relations = [dict(r, score=0.8) for r in plan['relations']]
            relations.append(dict(subject=100, object=plan['objects'][1]['id'], predicate='near', score=0.7))
            relations.append(dict(subject=plan['objects'][1]['id'], object=plan['objects'][0]['id'],
                                  predicate='above', score=0.01))
            file.write(json.dumps(dict(file_name=plan['file_name'], id=plan['id'], width=128, height=128,
                                       objects=objects + [twin], relations=relations)) + '\n')
    return plans


def test_the_documented_sequence_runs(tmp_path):
    data = tmp_path / 'data' / 'toy_real'
    make_toy_scenes(str(data), num_train=80, num_test=5)
    out = tmp_path / 'out'
    commands = documented_commands()
    assert [osp.basename(c[1]) for c in commands] == ['plan_scenes.py', 'make_toy_scenes.py', 'pseudo_label.py',
                                                      'json_to_vg.py', 'train.py', 'test.py', 'test.py',
                                                      'per_source_report.py']

    def run(command, *extra):
        argv = [word.replace('$OUT', str(out)).replace('data/toy_real', str(data)).replace('$CKPT', 'unused.pth')
                for word in command[2:]]
        argv = [osp.join(REPO_ROOT, word) if word.startswith('configs/') else word for word in argv]
        return load_tool(TOOLS[osp.basename(command[1])]).main(argv + list(extra))

    planned = run(commands[0])
    assert planned['scenes'] == 300
    rendered = run(commands[1])
    assert rendered['rendered'] + rendered['missed'] + rendered['unrealisable'] == 300
    plans = predictions_from_plan(out / 'plan.jsonl', tmp_path / 'graphs.jsonl')
    report = run(commands[2], '--predictions', str(tmp_path / 'graphs.jsonl'))
    intended = sum(len(p['relations']) for p in plans)
    # The duplicate (IoU 1 with object 0) merges into it, so its "near" becomes object 0's own, a repeat where
    # the plan already has it; the 0.01 relation is under --score-thr 0.05; every intended triplet is found.
    first_two = [(p['objects'][0]['id'], p['objects'][1]['id']) for p in plans]
    repeats = sum(dict(subject=s, object=o, predicate='near') in p['relations'] for p, (s, o) in zip(plans, first_two))
    extra = 300 - repeats
    assert report['counts']['kept'] == dict(images=300, relations=intended + extra,
                                            objects=sum(len(p['objects']) for p in plans))
    assert report['dropped']['relation: below score threshold']['count'] == 300
    assert report['dropped']['object: duplicate entity']['count'] == 300
    assert report['dropped'].get('relation: repeated triplet', dict(count=0))['count'] == repeats
    for name in ('curation_report.json', 'curation_drops.png', 'predicate_shares.png', 'predicate_confidence.png'):
        assert osp.isfile(out / 'report' / name), name
    converted = run(commands[3])
    assert converted['relation_scores'] and converted['counts']['relations_kept'] == intended + extra
    with h5py.File(out / 'vg' / 'VG-SGG-with-attri.h5') as h5:
        assert sorted({round(float(s), 4) for s in h5['relationship_scores'][()]}) == [0.7, 0.8]
    # The training config of step 5 reads the converted set, with the relation weights of its synthetic source.
    cfg = Config.fromfile(osp.join(REPO_ROOT, commands[4][2]))
    parts = cfg.train_dataloader.dataset.datasets
    for part, root in zip(parts, (data, out / 'vg')):
        part.data_root = f'{root}/'
        part.pipeline = []
        part.num_val_images = 0  # the small real set here has no room for the toy val carve-out
    cfg.train_dataloader.dataset.pop('type')
    mix = DATASETS.build(dict(type='SGGConcatDataset', **cfg.train_dataloader.dataset))
    weights = [w for i in range(len(mix.datasets[0]), len(mix)) for w in mix.get_data_info(i)['relation_weights']]
    assert len(weights) == intended + extra and sorted({round(float(w), 4) for w in weights}) == [0.7, 0.8]
    # Rerunning without --overwrite is refused and leaves the files alone.
    with pytest.raises(SystemExit, match='exists'):
        run(commands[0])
    with pytest.raises(SystemExit, match='exists'):
        run(commands[2], '--predictions', str(tmp_path / 'graphs.jsonl'))


@pytest.mark.parametrize('tool', sorted(TOOLS.values()))
def test_help(tool, capsys):
    with pytest.raises(SystemExit) as stop:
        load_tool(tool).main(['--help'])
    assert stop.value.code == 0 and 'usage' in capsys.readouterr().out


def test_pseudo_label_calls_the_inferencer_as_agreed(tmp_path, monkeypatch):
    """speaq_mm.apis.SceneGraphInferencer (issue 23) is called with the agreed interface: built from CONFIG and
    CHECKPOINT, called on the image folder with every prediction kept; its graphs are curated and written with
    file names relative to the folder. A stand-in replaces it here, so only the wiring is tested."""
    import speaq_mm.apis
    data = tmp_path / 'toy_real'
    make_toy_scenes(str(data), num_train=20, num_test=2, write_images=False)
    images = tmp_path / 'images'
    images.mkdir()
    calls = {}

    class StandIn:
        classes = ('circle', 'cross', 'diamond', 'square', 'star', 'triangle')
        predicates = ('above', 'below', 'left of', 'near', 'on', 'right of')

        def __init__(self, config, checkpoint=None, device='cpu', model=None, trust_pickle=()):
            calls['init'] = dict(config=config, checkpoint=checkpoint, device=device, trust_pickle=trust_pickle)

        def __call__(self, inputs, batch_size=1, score_thr=0.0, topk=100, num_workers=0):
            calls['call'] = dict(inputs=inputs, batch_size=batch_size, score_thr=score_thr, topk=topk)
            objects = [dict(id=0, name='circle', label=0, bbox=[1, 1, 20, 20], score=0.9),
                       dict(id=1, name='square', label=3, bbox=[40, 40, 60, 60], score=0.8)]
            return [dict(file_name=str(images / f'{name}.png'), id=name, width=64, height=64, objects=objects,
                         relations=[dict(subject=0, object=1, predicate='above', predicate_label=0, score=score)])
                    for name, score in (('a', 0.6), ('b', 0.01))]

    monkeypatch.setattr(speaq_mm.apis, 'SceneGraphInferencer', StandIn, raising=False)
    out = tmp_path / 'labels.json'
    report = load_tool(TOOLS['pseudo_label.py']).main([
        'model.py', 'model.pth', str(images), '--out', str(out), '--score-thr', '0.05', '--real', str(data),
        '--batch-size', '4', '--max-relations', '50'])
    assert calls == dict(init=dict(config='model.py', checkpoint='model.pth', device='cpu', trust_pickle=()),
                         call=dict(inputs=str(images), batch_size=4, score_thr=0.0, topk=50))
    labels = json.loads(out.read_text())
    assert labels['predicates'] == list(StandIn.predicates)
    assert [(g['file_name'], g['id']) for g in labels['images']] == [('a.png', 'a')]  # b's only relation < 0.05
    assert report['counts']['kept']['relations'] == 1


def test_pseudo_label_writes_no_labels_when_nothing_survives(tmp_path):
    data = tmp_path / 'toy_real'
    make_toy_scenes(str(data), num_train=20, num_test=2, write_images=False)
    (tmp_path / 'images').mkdir()
    graph = dict(file_name='a.png', id='a', width=64, height=64,
                 objects=[dict(id=0, name='circle', bbox=[1, 1, 9, 9], score=0.9),
                          dict(id=1, name='star', bbox=[20, 1, 29, 9], score=0.9)],
                 relations=[dict(subject=0, object=1, predicate='left of', score=0.02)])
    (tmp_path / 'graphs.jsonl').write_text(json.dumps(graph) + '\n')
    out = tmp_path / 'labels.json'
    with pytest.raises(SystemExit, match='no image survived the filters'):
        load_tool(TOOLS['pseudo_label.py']).main([
            'model.py', 'unused.pth', str(tmp_path / 'images'), '--out', str(out), '--score-thr', '0.1',
            '--real', str(data), '--predictions', str(tmp_path / 'graphs.jsonl')])
    assert not out.exists()
    report = json.loads((tmp_path / 'curation_report.json').read_text())
    assert report['dropped']['relation: below score threshold']['count'] == 1


def test_make_synthetic_demo_runs_the_documented_commands():
    """tools/synthetic/toy_pipeline.sh (make synthetic-demo) and docs/synthetic_data.md list the same commands."""
    with open(osp.join(REPO_ROOT, 'tools', 'synthetic', 'toy_pipeline.sh')) as file:
        script = file.read().replace('\\\n', ' ')
    commands = [line.replace('"$PYTHON"', 'python').replace('"$CKPT"', '$CKPT').replace('$ITERS', '100').split()
                for line in script.splitlines() if line.startswith('"$PYTHON" tools/')]
    assert commands == documented_commands()


def test_pseudo_labels_of_the_real_inferencer_convert_without_a_drop(tmp_path, toy_run):
    """Steps 3 and 4 with the model itself (the shared toy run's checkpoint through SceneGraphInferencer, no
    stand-in): the curated labels keep the model's names, boxes and scores and json_to_vg takes every one."""
    import shutil
    images = tmp_path / 'images'
    images.mkdir()
    for source in sorted(glob.glob(osp.join(toy_run.real_root, 'VG_100K', '*.jpg')))[:4]:
        shutil.copy(source, images)
    out = tmp_path / 'labels.json'
    config = osp.join(REPO_ROOT, 'configs', 'toy', 'speaq_tiny_toy_mix.py')
    report = load_tool(TOOLS['pseudo_label.py']).main([
        config, toy_run.checkpoint, str(images), '--out', str(out), '--score-thr', '0', '--topk', '5',
        '--real', toy_run.real_root, '--batch-size', '2'])
    labels = json.loads(out.read_text())
    assert report['counts']['kept']['images'] == len(labels['images']) > 0
    kept = sum(len(image['relations']) for image in labels['images'])
    assert 0 < kept <= 5 * len(labels['images']) and report['counts']['kept']['relations'] == kept
    for image in labels['images']:
        assert all(o['name'] in labels['classes'] and len(o['bbox']) == 4 for o in image['objects'])
        assert all(r['predicate'] in labels['predicates'] and 0 <= r['score'] <= 1 for r in image['relations'])
    converted = load_tool(TOOLS['json_to_vg.py']).main([
        str(out), str(tmp_path / 'vg'), '--image-dir', str(images),
        '--vocab', osp.join(toy_run.real_root, 'VG-SGG-dicts-with-attri.json')])
    assert converted['counts']['relations_kept'] == kept and converted['relation_scores']
