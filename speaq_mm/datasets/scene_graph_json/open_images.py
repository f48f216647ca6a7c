"""Open Images V6 relations (PySGG's preprocessed annotation files) to the JSON scene-graph format
(``validation``), which ``json_to_vg`` turns into the VG files ``VGH5Dataset`` reads. docs/open_images.md
describes the data preparation; ``tools/dataset_converters/oi_to_json.py`` is the command line.

The input folder holds what the field's OI V6 release (the one BGNN and PySGG use) ships:

* ``categories_dict.json``: ``{"obj": [class names], "rel": [predicate names]}``; list position = 0-based id;
* ``vrd-train-anno.json``, ``vrd-val-anno.json``, ``vrd-test-anno.json``: a list of images, each with
  ``img_fn`` (file name without ``.jpg``), ``img_size`` ([width, height]), ``bbox`` ([[x1, y1, x2, y2], ...]
  in pixels), ``det_labels`` (one 0-based class id per box) and ``rel`` ([[subject box, object box,
  0-based predicate id], ...]).

Every image of the three files becomes one JSON entry with its split; what cannot be represented is dropped
and counted by reason (:data:`OI_DROP_REASONS`), an image taking its boxes and relations with it, a box its
relations. Everything else (boxes outside the image, empty boxes, repeated relations) is passed on as it is:
``json_to_vg`` validates geometry and reports its own drops.
"""
import json
import math
import os.path as osp
from collections import OrderedDict

from ...utils.atomic_io import atomic_dump
from .validation import ConversionReport

OI_SPLITS = ('train', 'val', 'test')
OI_ANNOTATION_FILES = {split: f'vrd-{split}-anno.json' for split in OI_SPLITS}
OI_CATEGORIES_FILE = 'categories_dict.json'
OI_DROP_REASONS = OrderedDict([
    ('image: not an object', 'the entry is not a JSON object'),
    ('image: no img_fn', '"img_fn" is missing or not a plain name'),
    ('image: repeated img_fn', 'an earlier entry (of any split) has the same "img_fn"'),
    ('image: bad img_size', '"img_size" is not two positive integers [width, height]'),
    ('image: boxes and labels differ', '"bbox" and "det_labels" are not lists of the same length'),
    ('box: bad bbox', 'the box is not 4 finite numbers'),
    ('box: unknown class', 'the label is not an index into categories_dict.json "obj"'),
    ('relation: bad entry', 'the relation is not 3 integers [subject, object, predicate]'),
    ('relation: unknown box', 'subject or object is not an index into the image\'s boxes'),
    ('relation: uses a dropped box', 'its subject or object box was dropped'),
    ('relation: unknown predicate', 'the predicate is not an index into categories_dict.json "rel"'),
])


class OIDropReport(ConversionReport):
    """What was read, kept and dropped, by reason with the first examples, counted per split."""

    def __init__(self, source):
        super().__init__(source, OI_DROP_REASONS)

    def to_dict(self):
        """JSON-ready content (no notes: the Open Images import makes none)."""
        content = super().to_dict()
        del content['notes']
        return content

    def text(self):
        """A readable summary: per split and level, read and kept; then the drops by reason."""
        lines = [f'{self.source}:']
        for split in OI_SPLITS:
            lines.append(f'  {split}: ' + ', '.join(
                f'{self.counts.get(f"{split}_{level}_in", 0)} {level} read, '
                f'{self.counts.get(f"{split}_{level}_kept", 0)} kept' for level in ('images', 'boxes', 'relations')))
        return '\n'.join(lines + self.drop_lines())


def _load_json(path, what):
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: the {what} does not exist')
    try:
        with open(path, encoding='utf-8') as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not valid JSON ({error})') from error


def read_oi_categories(path):
    """(class names, predicate names) of ``categories_dict.json``; errors name the file and the field."""
    data = _load_json(path, 'category file')
    names = {}
    for key in ('obj', 'rel'):
        values = data.get(key) if isinstance(data, dict) else None
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values) \
                or len(set(values)) != len(values):
            raise ValueError(f'{path}: field "{key}" must be a non-empty list of distinct names')
        names[key] = values
    return names['obj'], names['rel']


def _is_index(value, size):
    return type(value) is int and 0 <= value < size


def _plain_name(value):
    from ..vg_format import PLAIN_IMAGE_ID
    return isinstance(value, str) and PLAIN_IMAGE_ID.fullmatch(value) is not None


def _image_entry(entry, where, split, classes, predicates, seen, report):
    """The JSON scene-graph entry of one OI image, or None if the image is dropped."""
    if not isinstance(entry, dict):
        report.drop('image: not an object', where)
        return None
    name = entry.get('img_fn')
    if not _plain_name(name):
        report.drop('image: no img_fn', where, repr(name))
        return None
    where = f'{where} ({name})'
    if name in seen:
        report.drop('image: repeated img_fn', where, f'first in {seen[name]}')
        return None
    size = entry.get('img_size')
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(type(v) is int and v > 0 for v in size)):
        report.drop('image: bad img_size', where, repr(size))
        return None
    boxes, labels = entry.get('bbox'), entry.get('det_labels')
    if not isinstance(boxes, list) or not isinstance(labels, list) or len(boxes) != len(labels):
        report.drop('image: boxes and labels differ', where)
        return None
    seen[name] = where
    objects, dropped = [], set()
    for index, (box, label) in enumerate(zip(boxes, labels)):
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
            report.drop('box: bad bbox', f'{where} bbox[{index}]', repr(box))
            dropped.add(index)
        elif not _is_index(label, len(classes)):
            report.drop('box: unknown class', f'{where} det_labels[{index}]', repr(label))
            dropped.add(index)
        else:
            objects.append({'id': index, 'name': classes[label], 'bbox': [float(v) for v in box]})
    relations = []
    for index, relation in enumerate(entry.get('rel') if isinstance(entry.get('rel'), list) else []):
        place = f'{where} rel[{index}]'
        if not (isinstance(relation, (list, tuple)) and len(relation) == 3 and all(type(v) is int for v in relation)):
            report.drop('relation: bad entry', place, repr(relation))
        elif not (_is_index(relation[0], len(boxes)) and _is_index(relation[1], len(boxes))):
            report.drop('relation: unknown box', place, repr(relation))
        elif relation[0] in dropped or relation[1] in dropped:
            report.drop('relation: uses a dropped box', place, repr(relation))
        elif not _is_index(relation[2], len(predicates)):
            report.drop('relation: unknown predicate', place, repr(relation))
        else:
            relations.append({'subject': relation[0], 'object': relation[1], 'predicate': predicates[relation[2]]})
    report.counts.update({f'{split}_images_kept': 1, f'{split}_boxes_kept': len(objects),
                          f'{split}_relations_kept': len(relations)})
    return {'file_name': f'{name}.jpg', 'id': name, 'width': size[0], 'height': size[1], 'split': split,
            'objects': objects, 'relations': relations}


def oi_to_scene_graph_json(ann_dir, out_path, overwrite=False):
    """Convert the OI V6 annotation folder ``ann_dir`` (module docstring) into one scene graph JSON file.

    Args:
        ann_dir (str): holds ``categories_dict.json`` and ``vrd-{train,val,test}-anno.json``.
        out_path (str): the JSON file to write (atomically).
        overwrite (bool): replace ``out_path`` if it exists; refused otherwise, before anything is read.

    Returns:
        OIDropReport: the counts (``<split>_<images|boxes|relations>_<in|kept>``) and drops by reason.
    """
    if osp.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; nothing was written. Pass --overwrite to replace it')
    if not osp.isdir(ann_dir):
        raise FileNotFoundError(f'{ann_dir}: no such folder')
    classes, predicates = read_oi_categories(osp.join(ann_dir, OI_CATEGORIES_FILE))
    report = OIDropReport(ann_dir)
    images, seen = [], {}
    for split in OI_SPLITS:
        path = osp.join(ann_dir, OI_ANNOTATION_FILES[split])
        entries = _load_json(path, f'{split} annotation file')
        if not isinstance(entries, list):
            raise ValueError(f'{path}: the top level must be a list of images')
        for position, entry in enumerate(entries):
            report.counts[f'{split}_images_in'] += 1
            if isinstance(entry, dict):
                for level, key in (('boxes', 'bbox'), ('relations', 'rel')):
                    if isinstance(entry.get(key), list):
                        report.counts[f'{split}_{level}_in'] += len(entry[key])
            image = _image_entry(entry, f'{OI_ANNOTATION_FILES[split]}[{position}]', split, classes, predicates,
                                 seen, report)
            if image is not None:
                images.append(image)
    if not images:
        raise ValueError(f'{ann_dir}: no usable image; nothing written.\n{report.text()}')
    atomic_dump({'classes': list(classes), 'predicates': list(predicates), 'bbox_format': 'xyxy',
                 'images': images}, out_path, file_format='json')
    return report
