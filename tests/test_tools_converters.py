"""tools/dataset_converters: the scene graph JSON format <-> the VG files, on the toy generator's output and on
hand-written files with every kind of defect."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from speaq_mm.datasets.vg_h5 import VGH5Dataset
from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import NUM_VAL_IMAGES

json_to_vg_tool = load_tool('tools/dataset_converters/json_to_vg.py')
vg_to_json_tool = load_tool('tools/dataset_converters/vg_to_json.py')
from speaq_mm.datasets import scene_graph_json  # noqa: E402


def dataset(root, split, **kwargs):
    return VGH5Dataset(data_root=str(root) + '/', split=split, num_val_images=kwargs.pop('num_val_images', 0),
                       pipeline=[], test_mode=True, **kwargs)


def records(data):
    return [data.get_data_info(i) for i in range(len(data))]


def test_toy_dataset_survives_the_round_trip(tmp_path, toy_run):
    exported = tmp_path / 'toy.json'
    counts = vg_to_json_tool.main([toy_run.real_root, str(exported)])
    content = json.loads(exported.read_text())
    assert counts['images'] == len(content['images']) == NUM_VAL_IMAGES + 24 + 6
    assert content['classes'][0] == 'circle' and content['bbox_format'] == 'xyxy'
    assert {image['split'] for image in content['images']} == {'train', 'test'}
    converted = tmp_path / 'converted'
    report = json_to_vg_tool.main([str(exported), str(converted), '--image-dir',
                                   osp.join(toy_run.real_root, 'VG_100K'), '--image-mode', 'copy', '--strict'])
    assert report['dropped'] == {} and report['dataset']['img_suffix'] == '.jpg'
    assert report['counts']['relations_kept'] == counts['relations']
    for split in ('train', 'test'):
        original = records(dataset(toy_run.real_root, split, num_val_images=NUM_VAL_IMAGES))
        again = records(dataset(converted, split, num_val_images=NUM_VAL_IMAGES))
        assert len(original) == len(again) > 0
        for a, b in zip(original, again):
            assert a['img_id'] == b['img_id'] and (a['width'], a['height']) == (b['width'], b['height'])
            assert osp.isfile(b['img_path']) and not osp.islink(b['img_path'])
            assert [i['bbox_label'] for i in a['instances']] == [i['bbox_label'] for i in b['instances']]
            # Integer boxes of a 128 px image are exact in the 1024 frame.
            assert np.allclose([i['bbox'] for i in a['instances']], [i['bbox'] for i in b['instances']])
            assert np.array_equal(a['relations'], b['relations'])


def test_generated_defects_are_dropped_and_reported(project_run):
    report, injected = project_run.report, project_run.defects
    assert report['dropped']['object: unknown class']['count'] == injected['unknown class']
    assert report['dropped']['relation: unknown predicate']['count'] == injected['unknown predicate']
    assert report['dropped']['relation: unknown object id']['count'] == injected['missing object id']
    assert report['counts']['clipped_bbox'] == injected['box past the border']
    assert set(report['dropped']) == {'object: unknown class', 'relation: unknown predicate',
                                      'relation: unknown object id'}
    assert "'blob'" in report['dropped']['object: unknown class']['examples'][0]
    assert report['vocabulary']['source'].startswith('--vocab')
    with open(osp.join(project_run.converted_root, 'conversion_report.json')) as file:
        assert json.load(file)['counts'] == report['counts']
    converted = records(dataset(project_run.converted_root, 'train'))
    assert len(converted) == report['counts']['images_kept']
    assert all(osp.islink(r['img_path']) and osp.isfile(r['img_path']) for r in converted)  # symlinked


def write_images(folder, sizes):
    os.makedirs(folder, exist_ok=True)
    for name, size in sizes.items():
        Image.new('RGB', size, (120, 30, 200)).save(osp.join(folder, name))


def test_every_defect_has_its_reason(tmp_path):
    write_images(tmp_path / 'img', {'a.jpg': (100, 80), 'b.jpg': (50, 50), 'c.jpg': (64, 64), 'd.jpg': (60, 40)})
    (tmp_path / 'img' / 'broken.jpg').write_bytes(b'no image')
    good_objects = [dict(id='p', name='cat', bbox=[0, 0, 40, 40]), dict(id='q', name='dog', bbox=[50, 10, 90, 70])]
    images = [
        'not an image entry',
        dict(width=10, height=10),
        dict(file_name='a.jpg', id='x/y'),
        dict(file_name='a.jpg', split='holdout'),
        dict(file_name='missing.jpg'),
        dict(file_name='broken.jpg'),
        dict(file_name='b.jpg', width=60, height=50),
        dict(file_name='a.jpg', width=100, height=80, split='train', objects=good_objects + [
            'not an object', dict(id='p', name='cat', bbox=[1, 1, 5, 5]), dict(bbox=[1, 1, 5, 5]),
            dict(id='u', name='unicorn', bbox=[1, 1, 5, 5]), dict(id='v', name='cat', bbox=[1, 1, 5]),
            dict(id='w', name='dog', bbox=[200, 200, 300, 300]), dict(id='z', name='dog', bbox=[-10, 30, 20, 90])],
            relations=[dict(subject='p', object='q', predicate='on'), 'no', dict(subject='p', object='q'),
                       dict(subject='p', object='q', predicate='eats'), dict(subject='p', object='nobody',
                                                                             predicate='on'),
                       dict(subject='u', object='q', predicate='on'), dict(subject='q', object='q', predicate='on'),
                       dict(subject='p', object='q', predicate='on'), dict(subject='z', object='p', predicate='near')]),
        dict(file_name='c.jpg', id='a'),  # id 'a' is taken by a.jpg (its file stem)
        dict(file_name='d.jpg', id=7, split='test', objects=[dict(name='dog', bbox=[5, 5, 20, 20])]),
    ]
    path = tmp_path / 'sg.json'
    path.write_text(json.dumps(dict(classes=['cat', 'dog'], predicates=['near', 'on'], images=images)))
    report = scene_graph_json.json_to_vg(str(path), str(tmp_path / 'out'), str(tmp_path / 'img'))
    dropped = {reason: entry['count'] for reason, entry in report['dropped'].items()}
    assert dropped == {
        'image: not an object': 1, 'image: no file_name': 1, 'image: bad id': 1, 'image: bad split': 1,
        'image: missing file': 1, 'image: unreadable file': 1, 'image: size mismatch': 1,
        'image: duplicate id': 1, 'object: not an object': 1, 'object: duplicate id': 1, 'object: no name': 1,
        'object: unknown class': 1, 'object: bad bbox': 1, 'object: empty bbox': 1,
        'relation: not an object': 1, 'relation: missing field': 1, 'relation: unknown predicate': 1,
        'relation: unknown object id': 1, 'relation: uses a dropped object': 1, 'relation: self relation': 1,
        'relation: duplicate': 1}
    # The exclude list and relation scores have their own tests (tests/test_datasets_relation_scores.py).
    assert set(dropped) == set(scene_graph_json.DROP_REASONS) - {'image: bad size', 'image: excluded',
                                                                 'relation: bad score'}
    assert report['counts']['clipped_bbox'] == 1
    assert (report['counts']['images_kept'], report['counts']['objects_kept'],
            report['counts']['relations_kept']) == (2, 4, 2)
    assert report['splits'] == {'train': 1, 'val': 0, 'test': 1}
    kept = records(dataset(tmp_path / 'out', 'train'))
    assert len(kept) == 1 and kept[0]['img_id'] == 'a'
    boxes = np.array([i['bbox'] for i in kept[0]['instances']])
    assert np.allclose(boxes[2], [0, 30, 20, 80], atol=100 / 1024 + 1e-9)  # clipped to the 100 x 80 image
    assert kept[0]['relations'].tolist() == [[0, 1, 1], [2, 0, 0]]
    assert 'object: unknown class' in report['text'] and "'unicorn'" in report['text']


def test_sizes_are_needed_without_an_image_folder(tmp_path):
    path = tmp_path / 'sg.json'
    path.write_text(json.dumps(dict(images=[
        dict(file_name='a.png', objects=[dict(name='cat', bbox=[0, 0, 5, 5])]),
        dict(file_name='b.png', width=20, height=10, objects=[dict(name='cat', bbox=[0, 0, 5, 5]),
                                                               dict(name='dog', bbox=[10, 0, 15, 5])],
             relations=[dict(subject=0, object=1, predicate='near')])])))
    report = scene_graph_json.json_to_vg(str(path), str(tmp_path / 'out'))
    assert {r: e['count'] for r, e in report['dropped'].items()} == {'image: bad size': 1}
    assert report['image_mode'] == 'none' and any('--image-dir' in note for note in report['notes'])
    assert os.listdir(tmp_path / 'out' / 'VG_100K') == []
    # Names found in the file, sorted: the VG dicts order.
    assert report['vocabulary']['classes'] == ['cat', 'dog'] and report['vocabulary']['predicates'] == ['near']


def test_xywh_boxes_mixed_suffixes_and_val_split(tmp_path):
    write_images(tmp_path / 'img', {'one.jpg': (40, 30), 'two.png': (40, 30)})
    objects = [dict(name='cat', bbox=[2, 3, 10, 20]), dict(name='dog', bbox=[20, 5, 15, 10])]
    relations = [dict(subject=0, object=1, predicate='near')]
    path = tmp_path / 'sg.json'
    path.write_text(json.dumps(dict(bbox_format='xywh', images=[
        dict(file_name='one.jpg', split='train', objects=objects, relations=relations),
        dict(file_name='two.png', split='val', objects=objects, relations=relations)])))
    report = scene_graph_json.json_to_vg(str(path), str(tmp_path / 'out'), str(tmp_path / 'img'),
                                         image_mode='copy')
    assert report['dataset'] == dict(data_root=str(tmp_path / 'out'), img_suffix='', use_h5_val_split=True)
    assert any('use_h5_val_split=True' in note for note in report['notes'])
    assert any('several suffixes' in note for note in report['notes'])
    assert sorted(os.listdir(tmp_path / 'out' / 'VG_100K')) == ['one.jpg', 'two.png']
    val = records(dataset(tmp_path / 'out', 'val', img_suffix='', use_h5_val_split=True))
    assert len(val) == 1 and val[0]['img_id'] == 'two.png' and osp.isfile(val[0]['img_path'])
    assert np.allclose([i['bbox'] for i in val[0]['instances']], [[2, 3, 12, 23], [20, 5, 35, 15]],
                       atol=40 / 1024 + 1e-9)


def test_vocabulary_file_wins_and_strict_fails_on_drops(tmp_path, toy_run):
    path = tmp_path / 'sg.json'
    path.write_text(json.dumps(dict(classes=['zebra'], predicates=['eats'], images=[dict(
        file_name='a.jpg', width=10, height=10, objects=[dict(name='circle', bbox=[0, 0, 4, 4]),
                                                         dict(name='zebra', bbox=[5, 5, 9, 9])])])))
    vocab = osp.join(toy_run.real_root, 'VG-SGG-dicts-with-attri.json')
    with pytest.raises(SystemExit, match='--strict: 1 items were dropped'):
        json_to_vg_tool.main([str(path), str(tmp_path / 'out'), '--vocab', vocab, '--strict'])
    with open(tmp_path / 'out' / 'conversion_report.json') as file:
        written = json.load(file)
    assert written['vocabulary']['classes'][0] == 'circle'
    assert list(written['dropped']) == ['object: unknown class']
    assert any('train split has no relations' in note for note in written['notes'])


def test_file_level_errors_name_the_file_and_field(tmp_path):
    cases = {'list.json': ([1, 2], 'list "images"'),
             'classes.json': (dict(classes=['a', 'a'], images=[]), 'field "classes"'),
             'format.json': (dict(bbox_format='cxcywh', images=[]), 'field "bbox_format"'),
             'nothing.json': (dict(classes=['a'], predicates=['b'], images=[dict(width=1)]), 'no usable image')}
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(json.dumps(content))
        with pytest.raises(ValueError, match=message):
            scene_graph_json.json_to_vg(str(tmp_path / name), str(tmp_path / 'out'))
    (tmp_path / 'bad.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='bad.json: not valid JSON'):
        scene_graph_json.json_to_vg(str(tmp_path / 'bad.json'), str(tmp_path / 'out'))
    with pytest.raises(FileNotFoundError, match='cannot read'):
        scene_graph_json.json_to_vg(str(tmp_path / 'none.json'), str(tmp_path / 'out'))
    with pytest.raises(ValueError, match='--image-mode'):
        scene_graph_json.json_to_vg(str(tmp_path / 'list.json'), str(tmp_path / 'out'), image_mode='move')
    with pytest.raises(FileNotFoundError, match='--image-dir'):
        scene_graph_json.json_to_vg(str(tmp_path / 'list.json'), str(tmp_path / 'out'), str(tmp_path / 'none'))


def test_export_of_one_split(tmp_path, toy_run):
    result = vg_to_json_tool.main([toy_run.real_root, str(tmp_path / 'test.json'), '--split', 'test'])
    content = json.loads((tmp_path / 'test.json').read_text())
    assert result['images'] == 6 and {image['split'] for image in content['images']} == {'test'}
    with pytest.raises(FileNotFoundError, match='ann_file'):
        vg_to_json_tool.main([str(tmp_path), str(tmp_path / 'x.json')])
