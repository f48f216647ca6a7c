"""The COCO-style scene-graph layout of RelTR and EGTR, to and from the JSON scene-graph format.

The layout (as RelTR's ``datasets/coco.py`` reads it; docs/own_data.md): a folder with

* ``train.json``, ``val.json``, ``test.json``: COCO detection files (``images`` with ``id``, ``file_name``,
  ``width``, ``height``; ``annotations`` with ``image_id``, ``category_id``, ``bbox`` as x, y, width, height
  and optional ``iscrowd``; ``categories`` with ``id`` and ``name``). The loader uses ``category_id`` itself
  as the label, so the published VG files number the classes from 1 (and may list ``N/A`` as id 0);
* ``rel.json``: ``{"train": {image id as a string: [[subject, object, predicate], ...]}, "val": ..., "test":
  ..., "rel_categories": [predicate names]}``. Subject and object index the image's annotations in file order
  after crowd annotations are removed (pycocotools returns an image's annotations in file order, and the loader
  removes ``iscrowd`` ones before indexing); predicate indexes ``rel_categories``, whose entry 0 is
  ``__background__`` in the published files.

:func:`coco_rel_to_json` imports all three splits in one call (each image keeps its split; class names from
``categories``, predicate names from ``rel_categories``, background entries left out); :func:`json_to_coco_rel`
writes a JSON scene-graph file in this layout (class ids from 1, ``rel_categories`` starting with
``__background__``), so that a speaq-mm dataset can be fed to those toolkits.
"""
import os
import os.path as osp
from collections import defaultdict
from typing import Optional

from ...utils.atomic_io import atomic_dump
from .importing import (
    BACKGROUND_NAMES,
    foreground_names,
    import_image,
    import_report,
    refuse_existing,
    write_scene_graph_json,
    xyxy_box,
)
from .validation import (
    SPLIT_CODES,
    ConversionReport,
    load_json_file,
    read_scene_graph_json,
    resolve_vocabulary,
    validate_images,
)

COCO_REL_FILES = dict(train='train.json', val='val.json', test='test.json', relations='rel.json')


def _categories(detection: dict, path: str):
    """(class names ordered by category id without background entries, category id -> name)."""
    categories = detection.get('categories')
    if not isinstance(categories, list) or not all(
            isinstance(c, dict) and isinstance(c.get('id'), int) and isinstance(c.get('name'), str)
            for c in categories):
        raise ValueError(f'{path}: field "categories" must be a list of {{"id": int, "name": str}}')
    by_id = {c['id']: c['name'] for c in categories}
    if len(by_id) != len(categories):
        raise ValueError(f'{path}: field "categories" repeats an id')
    classes = [by_id[i] for i in sorted(by_id) if by_id[i] not in BACKGROUND_NAMES]
    if len(set(classes)) != len(classes):
        raise ValueError(f'{path}: field "categories" repeats a name')
    return classes, by_id


def coco_rel_to_json(ann_dir: str, out_path: str, overwrite: bool = False) -> dict:
    """Convert ``ann_dir`` (train/val/test.json + rel.json) into one JSON scene-graph file.

    Returns:
        dict: the report (``counts``, ``dropped`` by reason with examples, ``notes``, ``splits``, ``text``);
        also written to ``<out_path without extension>.report.json``.
    """
    refuse_existing(out_path, overwrite)
    rel_path = osp.join(ann_dir, COCO_REL_FILES['relations'])
    relations = load_json_file(rel_path)
    if not isinstance(relations, dict) or 'rel_categories' not in relations:
        raise ValueError(f'{rel_path}: expected an object with "rel_categories" and the splits\' relations')
    predicates, predicate_index = foreground_names(relations['rel_categories'], '"rel_categories"', rel_path)
    background_predicates = {0} if 0 not in predicate_index else set()
    report = import_report(ann_dir)
    classes, images, seen_ids = None, [], set()
    for split in SPLIT_CODES:
        path = osp.join(ann_dir, COCO_REL_FILES[split])
        if not osp.isfile(path):
            report.notes.append(f'no {COCO_REL_FILES[split]}: split {split} is empty')
            continue
        detection = load_json_file(path)
        if not isinstance(detection, dict) or not isinstance(detection.get('images'), list) or not isinstance(
                detection.get('annotations'), list):
            raise ValueError(f'{path}: expected a COCO detection file ("images", "annotations", "categories")')
        split_classes, category_names = _categories(detection, path)
        if classes is None:
            classes = split_classes
        elif split_classes != classes:
            raise ValueError(f'{path}: its categories differ from the earlier split\'s; the splits must share them')
        split_relations = relations.get(split) or {}
        if not isinstance(split_relations, dict):
            raise ValueError(f'{rel_path}: field "{split}" must map image ids (strings) to relation lists')
        images.extend(_import_split(detection, split_relations, split, category_names, predicate_index,
                                    background_predicates, report, path, seen_ids))
    if classes is None:
        raise FileNotFoundError(f'{ann_dir}: none of train.json, val.json, test.json exists')
    return write_scene_graph_json(out_path, classes, predicates, images, report, overwrite)


def _import_split(detection, split_relations, split, category_names, predicate_index, background_predicates,
                  report: ConversionReport, path, seen_ids):
    """The images of one split (annotations in file order, crowd ones removed as the loader does)."""
    image_ids = {image.get('id') for image in detection['images'] if isinstance(image, dict)}
    annotations = defaultdict(list)
    for position, annotation in enumerate(detection['annotations']):
        if not isinstance(annotation, dict) or annotation.get('image_id') not in image_ids:
            report.counts['objects_in'] += 1
            report.drop('object: unknown image', f'{path} annotations[{position}]',
                        repr(annotation.get('image_id') if isinstance(annotation, dict) else annotation))
            continue
        if annotation.get('iscrowd', 0):
            report.counts['objects_in'] += 1
            report.drop('object: crowd', f'{path} annotations[{position}]')
            continue
        annotations[annotation['image_id']].append(annotation)
    known = {str(image_id) for image_id in image_ids}
    for key, entries in split_relations.items():
        if key not in known:
            count = len(entries) if isinstance(entries, list) else 1
            report.counts['relations_in'] += count
            for _ in range(count):
                report.drop('relation: unknown image', f'rel.json {split}', repr(key))
    without_entry = 0
    for position, image in enumerate(detection['images']):
        where = f'{path} images[{position}]'
        if not isinstance(image, dict):
            report.counts['images_in'] += 1
            report.drop('image: not an object', where)
            continue
        objects = []
        for annotation in annotations.get(image.get('id'), []):
            category = annotation.get('category_id')
            name = category_names.get(category)
            if name is None:
                objects.append((None, 'object: unknown category', repr(category)))
            elif name in BACKGROUND_NAMES:
                objects.append((None, 'object: background category', repr(category)))
            else:
                objects.append((name, xyxy_box(annotation.get('bbox'), xywh=True)))
        rels = split_relations.get(str(image.get('id')))
        if rels is None:
            without_entry += 1
        header = dict(file_name=image.get('file_name'), id=image.get('id'), width=image.get('width'),
                      height=image.get('height'), split=split)
        entry = import_image(report, where, header, objects, rels if isinstance(rels, list) else [],
                             predicate_index, background_predicates, seen_ids)
        if entry is not None:
            yield entry
    if without_entry:
        report.notes.append(f'{split}: {without_entry} images have no entry in rel.json (kept, without relations)')


def json_to_coco_rel(json_path: str, out_dir: str, vocab_file: Optional[str] = None,
                     overwrite: bool = False) -> dict:
    """Write a JSON scene-graph file as ``out_dir``/train.json, val.json, test.json and rel.json.

    The JSON is validated as ``json_to_vg`` does (drops counted by reason; image files are not checked). Class
    ``i`` (0-based) becomes category id ``i + 1`` and predicate ``p`` entry ``p + 1`` of ``rel_categories``
    (entry 0 ``__background__``), the convention of the published VG files. Integer image ids are kept; other
    ids are replaced by their 1-based position (the mapping is in ``coco_rel_report.json``).

    Returns:
        dict: the report (also ``out_dir``/coco_rel_report.json).
    """
    outputs = [osp.join(out_dir, name) for name in list(COCO_REL_FILES.values()) + ['coco_rel_report.json']]
    existing = [path for path in outputs if osp.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f'{", ".join(existing)} exist(s); nothing was written. Pass --overwrite to replace')
    data = read_scene_graph_json(json_path)
    classes, predicates, vocabulary_from = resolve_vocabulary(data, vocab_file, json_path)
    report = ConversionReport(json_path)
    images = validate_images(data, classes, predicates, report)
    if not images:
        raise ValueError(f'{json_path}: no usable image; nothing written.\n{report.text()}')
    keep_ids = all(isinstance(image['id'], int) for image in images)
    renamed = {} if keep_ids else {index + 1: image['id'] for index, image in enumerate(images)}
    if renamed:
        report.notes.append('image ids are not all integers: they were replaced by their 1-based position '
                            '(coco_rel_report.json: "renamed_ids")')
    categories = [dict(id=index + 1, name=name, supercategory='none') for index, name in enumerate(classes)]
    splits = {split: dict(images=[], annotations=[], categories=categories) for split in SPLIT_CODES}
    split_names = {code: name for name, code in SPLIT_CODES.items()}
    rel = {split: {} for split in SPLIT_CODES}
    annotation_id = 0
    for position, image in enumerate(images):
        split = split_names[image['split']]
        image_id = image['id'] if keep_ids else position + 1
        splits[split]['images'].append(dict(id=image_id, file_name=image['file'], width=image['width'],
                                            height=image['height']))
        for box, label in zip(image['boxes'].tolist(), image['labels'].tolist()):
            annotation_id += 1
            width, height = box[2] - box[0], box[3] - box[1]
            splits[split]['annotations'].append(dict(
                id=annotation_id, image_id=image_id, category_id=label + 1, bbox=[box[0], box[1], width, height],
                area=width * height, iscrowd=0))
        rel[split][str(image_id)] = [[s, o, p + 1] for s, o, p in image['relations'].tolist()]
    rel['rel_categories'] = ['__background__'] + list(predicates)
    os.makedirs(out_dir, exist_ok=True)
    for split in SPLIT_CODES:
        atomic_dump(splits[split], osp.join(out_dir, COCO_REL_FILES[split]))
    atomic_dump(rel, osp.join(out_dir, COCO_REL_FILES['relations']))
    result = dict(report.to_dict(), vocabulary=dict(classes=list(classes), predicates=list(predicates),
                                                   source=vocabulary_from),
                  splits={split: len(content['images']) for split, content in splits.items()},
                  renamed_ids={str(k): v for k, v in renamed.items()})
    atomic_dump(result, outputs[-1])
    result['text'] = report.text()
    return result
