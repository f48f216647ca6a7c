"""The importers from other SGG layouts (COCO-style + rel.json, PSG, GQA-200) and the COCO-style exporter, on
small hand-written file sets with every defect the formats allow: an image without relations, a relation
pointing past the image's annotations, a degenerate box, an unknown category (and more)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from speaq_mm.datasets.scene_graph_json import gqa
from tests.datasets_fixtures import REPO_ROOT, load_tool

coco_rel_tool = load_tool('tools/dataset_converters/coco_rel_to_json.py')
psg_tool = load_tool('tools/dataset_converters/psg_to_json.py')
gqa_tool = load_tool('tools/dataset_converters/gqa_to_json.py')
export_tool = load_tool('tools/dataset_converters/json_to_coco_rel.py')
json_to_vg_tool = load_tool('tools/dataset_converters/json_to_vg.py')
vg_to_json_tool = load_tool('tools/dataset_converters/vg_to_json.py')


def write(path, content):
    with open(path, 'w') as file:
        json.dump(content, file)
    return str(path)


def read(path):
    with open(path) as file:
        return json.load(file)


def dropped(report):
    return {reason: entry['count'] for reason, entry in report['dropped'].items()}


# ----------------------------------------------------------------------------------------------------------
# COCO-style layout (RelTR / EGTR)
# ----------------------------------------------------------------------------------------------------------
CATEGORIES = [dict(id=0, name='N/A'), dict(id=1, name='person'), dict(id=2, name='horse'), dict(id=3, name='hat')]
REL_CATEGORIES = ['__background__', 'riding', 'wearing', 'near']


def annotation(image_id, category_id, bbox, **extra):
    return dict(image_id=image_id, category_id=category_id, bbox=bbox, area=bbox[2] * bbox[3], **extra)


def write_coco_rel(folder):
    """The hand-written set; returns the valid content it must keep: image id -> (boxes xywh, class names,
    relations as (subject, object, predicate name) over the kept annotations)."""
    train = dict(categories=CATEGORIES, images=[
        dict(id=1, file_name='a/1.jpg', width=100, height=80),
        dict(id=2, file_name='a/2.jpg', width=50, height=50)], annotations=[
        annotation(1, 1, [10, 10, 30, 40]),  # 0
        annotation(1, 2, [5, 20, 60, 50]),  # 1
        annotation(99, 1, [1, 1, 5, 5]),  # an image that does not exist (not indexed)
        annotation(1, 3, [12, 5, 10, 8]),  # 2
        annotation(1, 9, [1, 1, 10, 10]),  # 3: unknown category
        annotation(1, 1, [50, 50, 0, 10]),  # 4: degenerate box (no width)
        annotation(2, 1, [5, 5, 20, 20])])
    val = dict(categories=CATEGORIES, images=[dict(id=3, file_name='a/3.jpg', width=64, height=48)],
               annotations=[annotation(3, 1, [1, 2, 30, 40]), annotation(3, 2, [10, 8, 40, 30])])
    test = dict(categories=CATEGORIES, images=[dict(id=4, file_name='a/4.jpg', width=64, height=64)], annotations=[
        annotation(4, 3, [3, 3, 10, 10]),
        annotation(4, 1, [0, 0, 64, 64], iscrowd=1),  # removed before indexing, as RelTR's loader does
        annotation(4, 2, [20, 20, 30, 30])])
    rel = {'rel_categories': REL_CATEGORIES,
           'train': {'1': [[0, 1, 1], [0, 2, 2],
                           [0, 7, 3],  # points past the image's 5 annotations
                           [0, 3, 3],  # the unknown-category annotation
                           [1, 4, 3],  # the degenerate box
                           [0, 1, 1],  # duplicate
                           [1, 1, 3],  # self relation
                           [0, 1, 0]],  # background predicate
                     '2': []},  # an image without relations
           'val': {'3': [[1, 0, 3]]},
           'test': {'4': [[0, 1, 3]], '77': [[0, 1, 1]]}}  # 77: no such image
    for name, content in (('train.json', train), ('val.json', val), ('test.json', test), ('rel.json', rel)):
        write(osp.join(folder, name), content)
    return {1: ([[10, 10, 30, 40], [5, 20, 60, 50], [12, 5, 10, 8]], ['person', 'horse', 'hat'],
                [(0, 1, 'riding'), (0, 2, 'wearing')]),
            2: ([[5, 5, 20, 20]], ['person'], []),
            3: ([[1, 2, 30, 40], [10, 8, 40, 30]], ['person', 'horse'], [(1, 0, 'near')]),
            4: ([[3, 3, 10, 10], [20, 20, 30, 30]], ['hat', 'horse'], [(0, 1, 'near')])}


def coco_content(folder):
    """image id -> (boxes, names, relations), as in :func:`write_coco_rel`, read back from a COCO-style folder."""
    rel = read(osp.join(folder, 'rel.json'))
    content, splits = {}, {}
    for split in ('train', 'val', 'test'):
        detection = read(osp.join(folder, f'{split}.json'))
        names = {c['id']: c['name'] for c in detection['categories']}
        for image in detection['images']:
            annotations = [a for a in detection['annotations'] if a['image_id'] == image['id']]
            content[image['id']] = ([a['bbox'] for a in annotations], [names[a['category_id']] for a in annotations],
                                    [(s, o, rel['rel_categories'][p]) for s, o, p in rel[split][str(image['id'])]])
            splits[image['id']] = split
    return content, splits


def test_coco_rel_import_counts_every_drop_by_reason(tmp_path):
    write_coco_rel(str(tmp_path))
    out = str(tmp_path / 'ours.json')
    report = coco_rel_tool.main([str(tmp_path), out])
    assert report['counts'] == dict(images_in=4, images_kept=4, objects_in=12, objects_kept=8, relations_in=11,
                                    relations_kept=4)
    assert dropped(report) == {
        'object: unknown image': 1, 'object: crowd': 1, 'object: unknown category': 1, 'object: empty bbox': 1,
        'relation: unknown image': 1, 'relation: index out of range': 1, 'relation: uses a dropped object': 2,
        'relation: duplicate': 1, 'relation: self relation': 1, 'relation: background predicate': 1}
    assert report['splits'] == dict(train=2, val=1, test=1)
    content = read(out)
    assert content['classes'] == ['person', 'horse', 'hat'] and content['predicates'] == ['riding', 'wearing', 'near']
    assert read(str(tmp_path / 'ours.report.json'))['counts'] == report['counts']
    # The crowd annotation is not indexed: relation [0, 1] of image 4 is hat -> horse.
    image4 = next(image for image in content['images'] if image['id'] == 4)
    assert [o['name'] for o in image4['objects']] == ['hat', 'horse']
    assert image4['relations'] == [dict(subject=0, object=1, predicate='near')]
    # The output is clean: json_to_vg drops nothing more.
    assert json_to_vg_tool.main([out, str(tmp_path / 'vg')])['dropped'] == {}


def test_coco_rel_round_trip_keeps_every_valid_box_label_and_relation(tmp_path):
    (tmp_path / 'coco').mkdir()
    expected = write_coco_rel(str(tmp_path / 'coco'))
    ours = str(tmp_path / 'ours.json')
    coco_rel_tool.main([str(tmp_path / 'coco'), ours])
    json_to_vg_tool.main([ours, str(tmp_path / 'vg')])  # through the h5 (boxes rounded to its 1024 frame)
    back = str(tmp_path / 'back.json')
    vg_to_json_tool.main([str(tmp_path / 'vg'), back])
    export = export_tool.main([back, str(tmp_path / 'coco_again')])
    assert export['dropped'] == {}
    content, splits = coco_content(str(tmp_path / 'coco_again'))
    assert splits == {1: 'train', 2: 'train', 3: 'val', 4: 'test'}
    assert set(content) == set(expected)
    images = {image['id']: image for image in read(str(tmp_path / 'coco_again' / 'train.json'))['images']}
    for image_id, (boxes, names, relations) in expected.items():
        got_boxes, got_names, got_relations = content[image_id]
        assert got_names == names and got_relations == relations, image_id
        size = max(images[image_id]['width'], images[image_id]['height']) if image_id in images else 64
        tolerance = 2 * size / 1024 + 0.02  # x2 and y2 each within one h5 unit, and 2 decimals of vg_to_json
        assert len(got_boxes) == len(boxes)
        for got, want in zip(got_boxes, boxes):
            assert got == pytest.approx(want, abs=tolerance), (image_id, got, want)
    assert read(str(tmp_path / 'coco_again' / 'rel.json'))['rel_categories'] == REL_CATEGORIES
    categories = read(str(tmp_path / 'coco_again' / 'test.json'))['categories']
    assert [(c['id'], c['name']) for c in categories] == [(1, 'person'), (2, 'horse'), (3, 'hat')]


def test_importers_and_exporter_refuse_to_overwrite(tmp_path):
    write_coco_rel(str(tmp_path))
    out = tmp_path / 'ours.json'
    out.write_text('mine')
    with pytest.raises(FileExistsError, match='--overwrite'):
        coco_rel_tool.main([str(tmp_path), str(out)])
    assert out.read_text() == 'mine'
    coco_rel_tool.main([str(tmp_path), str(out), '--overwrite'])
    assert read(str(out))['classes'] == ['person', 'horse', 'hat']
    (tmp_path / 'export').mkdir()
    (tmp_path / 'export' / 'rel.json').write_text('mine')
    with pytest.raises(FileExistsError, match='--overwrite'):
        export_tool.main([str(out), str(tmp_path / 'export')])
    assert (tmp_path / 'export' / 'rel.json').read_text() == 'mine'
    assert not (tmp_path / 'export' / 'train.json').exists()


def test_coco_rel_import_refuses_splits_with_other_categories(tmp_path):
    write_coco_rel(str(tmp_path))
    val = read(str(tmp_path / 'val.json'))
    val['categories'] = CATEGORIES[:3]
    write(tmp_path / 'val.json', val)
    with pytest.raises(ValueError, match='val.json: its categories differ'):
        coco_rel_tool.main([str(tmp_path), str(tmp_path / 'ours.json')])
    assert not (tmp_path / 'ours.json').exists()


# ----------------------------------------------------------------------------------------------------------
# PSG (OpenPSG)
# ----------------------------------------------------------------------------------------------------------
def write_psg(path):
    def image(image_id, size, annotations, relations):
        return dict(file_name=f'train2017/{image_id:012d}.jpg', image_id=image_id, width=size, height=size,
                    pan_seg_file_name=f'{image_id}.png', segments_info=[], relations=relations,
                    annotations=[dict(bbox=bbox, category_id=category, bbox_mode=0) for bbox, category in annotations])
    return write(path, dict(
        thing_classes=['person', 'horse'], stuff_classes=['grass'], predicate_classes=['on', 'riding'],
        test_image_ids=[2],
        data=[image(1, 100, [([10, 10, 40, 60], 0), ([20, 30, 90, 90], 1), ([0, 80, 100, 100], 2),
                             ([1, 1, 5, 5], 7),  # unknown category
                             ([50, 50, 50, 70], 0)],  # degenerate box
                    [[0, 1, 1], [1, 2, 0], [0, 9, 0], [0, 3, 0], [0, 1, 1]]),
              image(2, 50, [([1, 1, 20, 20], 0), ([0, 30, 50, 50], 2)], [[0, 1, 0]]),
              image(3, 50, [([1, 1, 20, 20], 0)], [])]))  # no relations: the loader skips it


def test_psg_import_counts_every_drop_by_reason(tmp_path):
    out = str(tmp_path / 'psg_ours.json')
    report = psg_tool.main([write_psg(tmp_path / 'psg.json'), out])
    assert report['counts'] == dict(images_in=3, images_kept=2, objects_in=8, objects_kept=5, relations_in=6,
                                    relations_kept=3)
    assert dropped(report) == {'image: no relations': 1, 'object: unknown category': 1, 'object: empty bbox': 1,
                               'relation: index out of range': 1, 'relation: uses a dropped object': 1,
                               'relation: duplicate': 1}
    assert report['splits'] == dict(train=1, val=0, test=1)
    content = read(out)
    assert content['classes'] == ['person', 'horse', 'grass'] and content['predicates'] == ['on', 'riding']
    first = content['images'][0]
    assert [(o['id'], o['name'], o['bbox']) for o in first['objects']] == [
        (0, 'person', [10, 10, 40, 60]), (1, 'horse', [20, 30, 90, 90]), (2, 'grass', [0, 80, 100, 100])]
    assert first['relations'] == [dict(subject=0, object=1, predicate='riding'),
                                  dict(subject=1, object=2, predicate='on')]
    kept_empty = psg_tool.main([str(tmp_path / 'psg.json'), str(tmp_path / 'all.json'), '--keep-empty'])
    assert kept_empty['counts']['images_kept'] == 3 and 'image: no relations' not in kept_empty['dropped']
    assert json_to_vg_tool.main([out, str(tmp_path / 'vg')])['dropped'] == {}


# ----------------------------------------------------------------------------------------------------------
# GQA-200 (SHA-GCL-for-SGG)
# ----------------------------------------------------------------------------------------------------------
def graphs(items):
    return dict(filenames_all=[f'{i[0]}.jpg' for i in items],
                img_info_all=[dict(image_id=i[0], width=100, height=100) for i in items],
                gt_boxes_all=[i[1] for i in items], gt_classes_all=[i[2] for i in items],
                relationships_all=[i[3] for i in items])


def write_gqa(folder):
    pair = ([[10, 10, 50, 90], [20, 20, 40, 50]], [1, 2], [[0, 1, 1]])
    dict_file = write(osp.join(folder, 'GQA_200_ID_Info.json'), dict(
        ind_to_classes=['__background__', 'man', 'shirt', 'tree'],
        ind_to_predicates=['__background__', 'wearing', 'near']))
    train = write(osp.join(folder, 'GQA_200_Train.json'), graphs([
        (1, [[10, 10, 50, 90], [20, 20, 40, 50], [0, 0, 0, 10], [60, 10, 90, 90]], [1, 2, 3, 9],  # degenerate, unknown
         [[0, 1, 1], [0, 5, 2], [0, 2, 2], [0, 1, 1], [0, 3, 2]]),  # past, dropped object, duplicate, dropped object
        (2, [[1, 1, 5, 5]], [3], [])]))  # no relations
    test = write(osp.join(folder, 'GQA_200_Test.json'), graphs([
        (1, *pair),  # the id of a train image: the loader's val keeps it, the import drops it
        (11, [], [], [[0, 1, 1]]),  # no objects
        (12, *pair),  # the item the loader skips (5580 in the real file, 3 here)
        (13, *pair), (14, *pair)]))
    return dict_file, train, test


def test_gqa_import_reproduces_the_reference_splits_and_skips(tmp_path, monkeypatch):
    assert (gqa.SKIPPED_TEST_ITEM, gqa.NUM_VAL_IMAGES) == (5580, 5000)  # the reference loader's constants
    monkeypatch.setattr(gqa, 'SKIPPED_TEST_ITEM', 3)  # scaled down to a five-item test file
    monkeypatch.setattr(gqa, 'NUM_VAL_IMAGES', 2)
    out = str(tmp_path / 'gqa_ours.json')
    report = gqa_tool.main([*write_gqa(str(tmp_path)), out])
    assert dropped(report) == {'image: no relations': 1, 'image: no objects': 1, 'image: duplicate id': 1,
                               'image: skipped by the reference loader': 1, 'object: empty bbox': 1,
                               'object: unknown category': 1, 'relation: index out of range': 1,
                               'relation: uses a dropped object': 2, 'relation: duplicate': 1}
    assert report['counts'] == dict(images_in=7, images_kept=3, objects_in=13, objects_kept=6, relations_in=10,
                                    relations_kept=3)
    content = read(out)
    assert content['classes'] == ['man', 'shirt', 'tree'] and content['predicates'] == ['wearing', 'near']
    # val: the loader's first two test images (1 and 13), of which the import keeps 13.
    assert [(image['id'], image['split']) for image in content['images']] == [
        (1, 'train'), (13, 'test'), (14, 'test'), ('13_val', 'val')]
    assert content['images'][-1]['file_name'] == '13.jpg'
    assert report['splits'] == dict(train=1, val=1, test=2)
    without_val = gqa_tool.main([*write_gqa(str(tmp_path)), str(tmp_path / 'no_val.json'), '--val', 'none'])
    assert without_val['splits'] == dict(train=1, val=0, test=2)
    converted = json_to_vg_tool.main([out, str(tmp_path / 'vg')])
    assert converted['dropped'] == {} and converted['dataset']['use_h5_val_split']


@pytest.mark.parametrize('tool', ['coco_rel_to_json.py', 'psg_to_json.py', 'gqa_to_json.py', 'json_to_coco_rel.py'])
def test_tool_help(tool):
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'dataset_converters', tool), '--help'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '--overwrite' in result.stdout
