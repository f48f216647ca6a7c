"""A simple JSON scene-graph format and its validation (conversion to and from the VG150 files: ``conversion``).

The format is the shape most annotation tools and image-generation pipelines emit: a list of images, each
with its objects (class name and box) and the relations between them. ``tools/dataset_converters/json_to_vg.py`` and
``vg_to_json.py`` are the command lines; docs/tools.md shows both.

.. code-block:: json

    {
      "classes": ["circle", "square"],
      "predicates": ["left of", "on"],
      "bbox_format": "xyxy",
      "images": [
        {"file_name": "scene_001.jpg", "id": "scene_001", "width": 640, "height": 480, "split": "train",
         "objects": [{"id": "a", "name": "circle", "bbox": [10, 20, 110, 120]},
                     {"id": "b", "name": "square", "bbox": [300, 40, 400, 140]}],
         "relations": [{"subject": "a", "object": "b", "predicate": "left of"}]}
      ]
    }

A ``.jsonl`` file (JSON Lines, what ``tools/extract_scene_graphs.py`` writes) holds one image entry per line;
``classes``, ``predicates`` and ``bbox_format`` then come from its sidecar ``<file>.jsonl.meta.json``, if any.

* ``images`` (required): one entry per image.

  - ``file_name`` (required): the image file, relative to ``--image-dir`` (or absolute);
  - ``id`` (optional, int or plain name: letters, digits, ``_``, ``-``, ``.``, not starting with ``.``): unique
    image id, default the file name without extension;
  - ``width``, ``height`` (positive integers): required unless ``--image-dir`` lets the converter read them
    from the file; when both exist they must agree;
  - ``split`` (optional): ``train``, ``val`` or ``test`` (default ``--default-split``);
  - ``objects``: ``name`` (a class name) and ``bbox`` (4 numbers in image pixels), optional ``id`` (any
    JSON scalar unique in the image, default the object's position in the list);
  - ``relations``: ``subject`` and ``object`` (object ids) and ``predicate`` (a predicate name), optional
    ``score`` (a confidence in [0, 1], e.g. of a pseudo-label): when any relation of the file has one, the
    converter stores them in the h5's ``relationship_scores`` (relations without one get 1.0). Objects may
    carry a ``score`` and other fields too; they are not stored.
* ``classes``, ``predicates`` (optional): the vocabularies, index = 0-based label. ``--vocab`` (a VG dicts
  json, e.g. the real dataset's, so that labels agree when the two are mixed) takes precedence; without
  either, the names found are sorted alphabetically, as the VG files order them.
* ``bbox_format`` (optional): ``xyxy`` (x1, y1, x2, y2; default) or ``xywh`` (x, y, width, height, as COCO).

Validation drops what cannot be used and counts every drop by reason (:data:`DROP_REASONS`). A dropped image
takes its objects and relations with it, a dropped object its relations. Boxes partly outside the image are
clipped to it (counted as ``clipped_bbox``). The VG h5 stores boxes as integers in a 1024 (and 512) pixel
frame, so a converted box moves by at most max(width, height) / 1024 pixels.
"""
import json
import math
import os.path as osp
from collections import Counter, OrderedDict
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..vg_format import PLAIN_IMAGE_ID, read_vg_dicts

SPLIT_CODES = {'train': 0, 'val': 1, 'test': 2}
BBOX_FORMATS = ('xyxy', 'xywh')
IMAGE_MODES = ('symlink', 'copy', 'none')
# reason -> what it means; the level (image/object/relation) is the first word.
DROP_REASONS = OrderedDict([
    ('image: not an object', 'the entry of "images" is not a JSON object'),
    ('image: no file_name', 'the image has no "file_name"'),
    ('image: bad id', 'the "id" is not an int or a plain name (letters, digits, "_", "-", ".", not starting '
                      'with ".")'),
    ('image: duplicate id', 'an earlier image has the same id'),
    ('image: bad split', 'the "split" is not train, val or test'),
    ('image: missing file', 'the file is not in --image-dir'),
    ('image: unreadable file', 'the file cannot be opened as an image'),
    ('image: bad size', '"width"/"height" are missing or not positive integers (and no file to read)'),
    ('image: size mismatch', '"width"/"height" differ from the image file'),
    ('image: excluded', 'the image is on the --exclude list'),
    ('object: not an object', 'the entry of "objects" is not a JSON object'),
    ('object: duplicate id', 'an earlier object of the image has the same id'),
    ('object: no name', 'the object has no "name"'),
    ('object: unknown class', 'the name is not in the class vocabulary'),
    ('object: bad bbox', '"bbox" is not 4 finite numbers'),
    ('object: empty bbox', 'the box has no area (inside the image)'),
    ('relation: not an object', 'the entry of "relations" is not a JSON object'),
    ('relation: missing field', 'no "subject", "object" or "predicate"'),
    ('relation: unknown predicate', 'the predicate is not in the predicate vocabulary'),
    ('relation: bad score', '"score" is not a number in [0, 1]'),
    ('relation: unknown object id', 'subject or object names no object of the image'),
    ('relation: uses a dropped object', 'its subject or object was dropped'),
    ('relation: self relation', 'subject and object are the same object'),
    ('relation: duplicate', 'the same (subject, object, predicate) appears earlier in the image'),
])
MAX_EXAMPLES = 5
# A JSON Lines file's sidecar is the file name plus this suffix (jsonl_meta_path).
JSONL_META_SUFFIX = '.meta.json'


class ConversionReport:
    """Counts of what was read, kept and dropped (by reason, with the first examples of each).

    ``reasons`` (reason -> meaning) are the drop reasons allowed; the importers of other formats
    (``scene_graph_json.importing``) extend :data:`DROP_REASONS` with their own.
    """

    def __init__(self, source: str, reasons: Dict[str, str] = DROP_REASONS):
        self.source = source
        self.reasons = reasons
        self.counts = Counter()
        self.dropped = Counter()
        self.examples: Dict[str, List[str]] = {}
        self.notes: List[str] = []

    def drop(self, reason: str, where: str, detail: str = '') -> None:
        """Count one dropped item; keep the first examples."""
        if reason not in self.reasons:
            raise KeyError(f'unknown drop reason {reason!r}')
        self.dropped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(f'{where}: {detail}' if detail else where)

    def to_dict(self) -> dict:
        """JSON-ready content."""
        return dict(source=self.source, counts=dict(self.counts),
                    dropped={reason: dict(count=count, meaning=self.reasons[reason],
                                          examples=self.examples.get(reason, []))
                             for reason, count in self.dropped.items()},
                    notes=self.notes)

    def text(self) -> str:
        """A readable summary."""
        lines = [f'{self.source}:']
        for level in ('images', 'objects', 'relations'):
            lines.append(f'  {level}: {self.counts.get(level + "_in", 0)} read, '
                         f'{self.counts.get(level + "_kept", 0)} kept')
        if self.counts.get('clipped_bbox'):
            lines.append(f'  boxes clipped to their image: {self.counts["clipped_bbox"]}')
        lines += self.drop_lines()
        lines += [f'  note: {note}' for note in self.notes]
        return '\n'.join(lines)

    def drop_lines(self) -> List[str]:
        """The summary's lines on the drops: each reason with its count, meaning and first examples."""
        if not self.dropped:
            return ['  nothing dropped']
        return ['  dropped:'] + [f'    {reason}: {count} ({self.reasons[reason]}); e.g. '
                                 + '; '.join(self.examples.get(reason, [])[:2])
                                 for reason, count in self.dropped.items()]


# ----------------------------------------------------------------------------------------------------------
# Reading and validating the JSON format
# ----------------------------------------------------------------------------------------------------------
@contextmanager
def json_read_errors(where: str, what: str = ''):
    """Turn a file that cannot be read or parsed inside the block into a clear error that begins with ``where``
    (``f'{where}: cannot read {what} (...)'``, ``f'{where}: not valid JSON (...)'``)."""
    try:
        yield
    except OSError as error:
        raise FileNotFoundError(f'{where}: cannot read {what + " " if what else ""}({error})') from error
    except json.JSONDecodeError as error:
        raise ValueError(f'{where}: not valid JSON ({error})') from error


def load_json_file(path: str, where: Optional[str] = None, what: str = ''):
    """The content of a JSON file; errors as :func:`json_read_errors` makes them (``where`` defaults to the
    path)."""
    with json_read_errors(path if where is None else where, what):
        with open(path, encoding='utf-8') as file:
            return json.load(file)


def jsonl_meta_path(path: str) -> str:
    """The sidecar of a JSON Lines scene graph file: its vocabularies and how it was made."""
    return path + JSONL_META_SUFFIX


def read_scene_graph_jsonl(path: str) -> dict:
    """A JSON Lines scene graph file (one image entry per line, as ``tools/extract_scene_graphs.py`` writes)
    as the JSON format's top level: ``images`` from the lines, ``classes``, ``predicates`` and ``bbox_format``
    from the sidecar (:func:`jsonl_meta_path`) when there is one."""
    images = []
    with open(path, encoding='utf-8') as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                images.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f'{path} line {number}: not valid JSON ({error})') from error
    data = dict(images=images)
    meta_path = jsonl_meta_path(path)
    if osp.isfile(meta_path):
        with open(meta_path, encoding='utf-8') as file:
            meta = json.load(file)
        data.update({key: meta[key] for key in ('classes', 'predicates', 'bbox_format') if key in meta})
    return data


def read_scene_graph_json(path: str) -> dict:
    """Load the file (JSON, or JSON Lines when it ends with ``.jsonl``) and check its top level (errors name
    the file and the field)."""
    with json_read_errors(path, 'the scene graph JSON'):
        if path.endswith('.jsonl'):
            data = read_scene_graph_jsonl(path)
        else:
            with open(path, encoding='utf-8') as file:
                data = json.load(file)
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise ValueError(f'{path}: the top level must be an object with a list "images"')
    for key in ('classes', 'predicates'):
        names = data.get(key)
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
                                  or len(set(names)) != len(names)):
            raise ValueError(f'{path}: field "{key}" must be a list of distinct strings')
    if data.get('bbox_format', 'xyxy') not in BBOX_FORMATS:
        raise ValueError(f'{path}: field "bbox_format" must be one of {BBOX_FORMATS}, got {data["bbox_format"]!r}')
    return data


def read_exclude_list(path: str) -> set:
    """The images of an exclude list: one file name or image id per line; blank lines and ``#`` comments are
    skipped. An image matches by its ``file_name``, the file name's base name, or its ``id``."""
    try:
        with open(path, encoding='utf-8') as file:
            lines = file.read().splitlines()
    except OSError as error:
        raise FileNotFoundError(f'--exclude {path}: cannot read the exclude list ({error})') from error
    return {line.split('#', 1)[0].strip() for line in lines} - {''}


def is_excluded(entry: dict, excluded: set) -> Optional[str]:
    """The exclude-list line that names this image entry (see :func:`read_exclude_list`), or None."""
    file_name = entry.get('file_name')
    for key in (file_name, osp.basename(file_name) if isinstance(file_name, str) else None,
                None if entry.get('id') is None else str(entry['id'])):
        if key is not None and key in excluded:
            return key
    return None


def read_alias_map(path: str) -> Dict[str, Dict[str, str]]:
    """An alias map: ``{"classes": {free-text name: vocabulary name}, "predicates": {...}}`` (either part may
    be left out), e.g. ``{"predicates": {"sitting on top of": "sitting on"}}``."""
    content = load_json_file(path, f'--alias-map {path}', 'the alias map')
    if not isinstance(content, dict) or set(content) - {'classes', 'predicates'}:
        raise ValueError(f'--alias-map {path}: the top level must be an object with the keys "classes" and/or '
                         f'"predicates", got {sorted(content) if isinstance(content, dict) else type(content)}')
    for key, mapping in content.items():
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in mapping.items()):
            raise ValueError(f'--alias-map {path}: "{key}" must map names (strings) to vocabulary names (strings)')
    return {key: dict(content.get(key, {})) for key in ('classes', 'predicates')}


def _named_items(data: dict):
    """Yield ``(vocabulary, name field, item)`` for every object (``'classes'``, ``'name'``) and relation
    (``'predicates'``, ``'predicate'``) of ``data`` whose name is a string; malformed entries are passed over
    (validation reports them)."""
    for image in data['images']:
        if not isinstance(image, dict):
            continue
        for key, field, items in (('classes', 'name', image.get('objects')),
                                  ('predicates', 'predicate', image.get('relations'))):
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and isinstance(item.get(field), str):
                    yield key, field, item


def apply_alias_map(data: dict, alias_map: Dict[str, Dict[str, str]]) -> Dict[str, Counter]:
    """Rename the objects' and relations' names of ``data`` in place through ``alias_map``.

    Returns:
        dict: ``classes`` and ``predicates``, each a Counter of the free-text names that were renamed.
    """
    renamed = {'classes': Counter(), 'predicates': Counter()}
    for key, field, item in _named_items(data):
        if item[field] in alias_map[key]:
            renamed[key][item[field]] += 1
            item[field] = alias_map[key][item[field]]
    return renamed


def unknown_names(data: dict, classes: Sequence[str], predicates: Sequence[str]) -> Dict[str, Dict[str, int]]:
    """Names of objects and relations that are not in the vocabulary, with their counts (most frequent first):
    the names an alias map still has to cover."""
    known = {'classes': set(classes), 'predicates': set(predicates)}
    counts = {'classes': Counter(), 'predicates': Counter()}
    for key, field, item in _named_items(data):
        if item[field] not in known[key]:
            counts[key][item[field]] += 1
    return {key: dict(counter.most_common()) for key, counter in counts.items()}


def resolve_vocabulary(data: dict, vocab_file: Optional[str], path: str) -> Tuple[tuple, tuple, str]:
    """(classes, predicates, where they came from): ``--vocab``, then the JSON's lists, then the sorted names
    found in the file."""
    if vocab_file:
        classes, predicates = read_vg_dicts(vocab_file)
        return classes, predicates, f'--vocab {vocab_file}'
    if data.get('classes') and data.get('predicates'):
        return tuple(data['classes']), tuple(data['predicates']), f'the "classes"/"predicates" lists of {path}'
    names, predicates = set(), set()
    for image in data['images']:
        if not isinstance(image, dict):
            continue
        names.update(o['name'] for o in image.get('objects') or [] if isinstance(o, dict)
                     and isinstance(o.get('name'), str))
        predicates.update(r['predicate'] for r in image.get('relations') or [] if isinstance(r, dict)
                          and isinstance(r.get('predicate'), str))
    classes = tuple(data['classes']) if data.get('classes') else tuple(sorted(names))
    predicate_names = tuple(data['predicates']) if data.get('predicates') else tuple(sorted(predicates))
    if not classes or not predicate_names:
        raise ValueError(f'{path}: no class or predicate names found; give --vocab or "classes"/"predicates"')
    return classes, predicate_names, f'the names found in {path} (sorted)'


def _image_size(file_path: str) -> Tuple[int, int]:
    with Image.open(file_path) as image:
        return image.size


def _valid_id(value) -> bool:
    """The ids ``VGH5Dataset`` accepts (``PLAIN_IMAGE_ID``): they name files inside the image folder."""
    return type(value) is int or (isinstance(value, str) and PLAIN_IMAGE_ID.fullmatch(value) is not None)


def _box(raw, bbox_format: str) -> Optional[np.ndarray]:
    if not isinstance(raw, (list, tuple)) or len(raw) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw):
        return None
    box = np.array(raw, np.float64)
    if bbox_format == 'xywh':
        box[2:] += box[:2]
    return box


def _image_header(entry, position: int, seen_ids: set, image_dir: Optional[str], default_split: str,
                  report: ConversionReport, excluded: set = frozenset()) -> Optional[dict]:
    """``id``, ``file``, ``suffix``, ``width``, ``height`` and ``split`` (code) of one image entry, or None
    (counted in ``report``) when the image cannot be used."""
    where = f'images[{position}]'
    if not isinstance(entry, dict):
        report.drop('image: not an object', where)
        return None
    for key in ('objects', 'relations'):
        items = entry.get(key)
        report.counts[f'{key}_in'] += len(items) if isinstance(items, list) else 0
    file_name = entry.get('file_name')
    if not isinstance(file_name, str) or not file_name:
        report.drop('image: no file_name', where)
        return None
    where = f'images[{position}] ({file_name})'
    listed = is_excluded(entry, excluded)
    if listed is not None:
        report.drop('image: excluded', where, f'listed as {listed!r}')
        return None
    image_id = entry.get('id', osp.splitext(osp.basename(file_name))[0])
    split = entry.get('split', default_split)
    if not _valid_id(image_id):
        report.drop('image: bad id', where, repr(image_id))
        return None
    if str(image_id) in seen_ids:
        report.drop('image: duplicate id', where, repr(image_id))
        return None
    if split not in SPLIT_CODES:
        report.drop('image: bad split', where, repr(split))
        return None
    width, height = entry.get('width'), entry.get('height')
    file_path = file_name if osp.isabs(file_name) or image_dir is None else osp.join(image_dir, file_name)
    if image_dir is not None:
        if not osp.isfile(file_path):
            report.drop('image: missing file', where, file_path)
            return None
        try:
            file_size = _image_size(file_path)
        except OSError as error:
            report.drop('image: unreadable file', where, str(error))
            return None
        if width is None and height is None:
            width, height = file_size
        elif (width, height) != file_size:
            report.drop('image: size mismatch', where, f'JSON {width}x{height}, file {file_size[0]}x{file_size[1]}')
            return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        report.drop('image: bad size', where, f'width={width!r}, height={height!r}')
        return None
    seen_ids.add(str(image_id))
    return dict(id=image_id, file=file_path, suffix=osp.splitext(file_name)[1], width=width, height=height,
                split=SPLIT_CODES[split], where=where)


def _objects(objects, image: dict, class_index: Dict[str, int], bbox_format: str, report: ConversionReport):
    """(boxes (K, 4) clipped xyxy, labels (K,), object key -> kept index, keys of dropped objects)."""
    boxes, labels, kept, dropped = [], [], {}, set()
    width, height = image['width'], image['height']
    for index, obj in enumerate(objects if isinstance(objects, list) else []):
        where = f'{image["where"]} objects[{index}]'
        if not isinstance(obj, dict):
            report.drop('object: not an object', where)
            continue
        object_id = obj.get('id', index)
        key = json.dumps(object_id)
        if key in kept or key in dropped:
            report.drop('object: duplicate id', where, repr(object_id))
            continue
        reason, detail = None, ''
        box = _box(obj.get('bbox'), bbox_format)
        if not isinstance(obj.get('name'), str):
            reason = 'object: no name'
        elif obj['name'] not in class_index:
            reason, detail = 'object: unknown class', repr(obj['name'])
        elif box is None:
            reason, detail = 'object: bad bbox', repr(obj.get('bbox'))
        else:
            clipped = box.clip([0, 0, 0, 0], [width, height, width, height])
            if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
                reason, detail = 'object: empty bbox', f'{box.tolist()} in {width}x{height}'
            elif not np.array_equal(clipped, box):
                report.counts['clipped_bbox'] += 1
            box = clipped
        if reason:
            report.drop(reason, where, detail)
            dropped.add(key)
            continue
        kept[key] = len(boxes)
        boxes.append(box)
        labels.append(class_index[obj['name']])
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(labels, np.int64), kept, dropped


def _relations(relations, image: dict, kept: Dict[str, int], dropped: set, predicate_index: Dict[str, int],
               report: ConversionReport) -> Tuple[np.ndarray, np.ndarray]:
    """(R, 3) (subject, object, predicate) of the usable relations, indices into the kept objects, and their
    (R,) scores (1.0 where a relation has none)."""
    triplets, scores = [], []
    for index, relation in enumerate(relations if isinstance(relations, list) else []):
        where = f'{image["where"]} relations[{index}]'
        if not isinstance(relation, dict):
            report.drop('relation: not an object', where)
            continue
        if any(key not in relation for key in ('subject', 'object', 'predicate')):
            report.drop('relation: missing field', where)
            continue
        ends = [json.dumps(relation['subject']), json.dumps(relation['object'])]
        score = relation.get('score', 1.0)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            report.drop('relation: bad score', where, repr(score))
        elif relation['predicate'] not in predicate_index:
            report.drop('relation: unknown predicate', where, repr(relation['predicate']))
        elif any(end in dropped for end in ends):
            report.drop('relation: uses a dropped object', where)
        elif any(end not in kept for end in ends):
            report.drop('relation: unknown object id', where,
                        f'subject {relation["subject"]!r}, object {relation["object"]!r}')
        elif ends[0] == ends[1]:
            report.drop('relation: self relation', where, repr(relation['subject']))
        elif (kept[ends[0]], kept[ends[1]], predicate_index[relation['predicate']]) in triplets:
            report.drop('relation: duplicate', where)
        else:
            triplets.append((kept[ends[0]], kept[ends[1]], predicate_index[relation['predicate']]))
            scores.append(float(score))
    return np.array(triplets, np.int64).reshape(-1, 3), np.array(scores, np.float32)


def validate_images(data: dict, classes: Sequence[str], predicates: Sequence[str], report: ConversionReport,
                    image_dir: Optional[str] = None, default_split: str = 'train',
                    excluded: set = frozenset()) -> List[dict]:
    """The usable images, each as ``id``, ``file``, ``suffix``, ``width``, ``height``, ``split`` (code),
    ``boxes`` (K, 4) xyxy clipped, ``labels`` (K,), ``relations`` (R, 3) local indices and
    ``relation_scores`` (R,); every drop is counted in ``report``. Images named in ``excluded``
    (:func:`read_exclude_list`) are dropped."""
    class_index = {name: i for i, name in enumerate(classes)}
    predicate_index = {name: i for i, name in enumerate(predicates)}
    seen_ids, images = set(), []
    for position, entry in enumerate(data['images']):
        report.counts['images_in'] += 1
        image = _image_header(entry, position, seen_ids, image_dir, default_split, report, excluded)
        if image is None:
            continue
        boxes, labels, kept, dropped = _objects(entry.get('objects'), image, class_index,
                                                data.get('bbox_format', 'xyxy'), report)
        relations, scores = _relations(entry.get('relations'), image, kept, dropped, predicate_index, report)
        report.counts.update(images_kept=1, objects_kept=len(boxes), relations_kept=len(relations))
        images.append(dict(image, boxes=boxes, labels=labels, relations=relations, relation_scores=scores))
    return images


# ----------------------------------------------------------------------------------------------------------
# JSON -> VG
# ----------------------------------------------------------------------------------------------------------
