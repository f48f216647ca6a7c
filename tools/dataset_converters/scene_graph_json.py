"""A simple JSON scene-graph format, its validation, and conversion to and from the VG150 h5 + json files.

The format is the shape most annotation tools and image-generation pipelines emit: a list of images, each
with its objects (class name and box) and the relations between them. ``json_to_vg.py`` and ``vg_to_json.py``
beside this file are the command lines; docs/tools.md shows both.

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

* ``images`` (required): one entry per image.

  - ``file_name`` (required): the image file, relative to ``--image-dir`` (or absolute);
  - ``id`` (optional, int or plain name: letters, digits, ``_``, ``-``, ``.``, not starting with ``.``): unique
    image id, default the file name without extension;
  - ``width``, ``height`` (positive integers): required unless ``--image-dir`` lets the converter read them
    from the file; when both exist they must agree;
  - ``split`` (optional): ``train``, ``val`` or ``test`` (default ``--default-split``);
  - ``objects``: ``name`` (a class name) and ``bbox`` (4 numbers in image pixels), optional ``id`` (any
    JSON scalar unique in the image, default the object's position in the list);
  - ``relations``: ``subject`` and ``object`` (object ids) and ``predicate`` (a predicate name).
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
import os
import os.path as osp
import shutil
import sys
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

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
    ('object: not an object', 'the entry of "objects" is not a JSON object'),
    ('object: duplicate id', 'an earlier object of the image has the same id'),
    ('object: no name', 'the object has no "name"'),
    ('object: unknown class', 'the name is not in the class vocabulary'),
    ('object: bad bbox', '"bbox" is not 4 finite numbers'),
    ('object: empty bbox', 'the box has no area (inside the image)'),
    ('relation: not an object', 'the entry of "relations" is not a JSON object'),
    ('relation: missing field', 'no "subject", "object" or "predicate"'),
    ('relation: unknown predicate', 'the predicate is not in the predicate vocabulary'),
    ('relation: unknown object id', 'subject or object names no object of the image'),
    ('relation: uses a dropped object', 'its subject or object was dropped'),
    ('relation: self relation', 'subject and object are the same object'),
    ('relation: duplicate', 'the same (subject, object, predicate) appears earlier in the image'),
])
MAX_EXAMPLES = 5


class ConversionReport:
    """Counts of what was read, kept and dropped (by reason, with the first examples of each)."""

    def __init__(self, source: str):
        self.source = source
        self.counts = Counter()
        self.dropped = Counter()
        self.examples: Dict[str, List[str]] = {}
        self.notes: List[str] = []

    def drop(self, reason: str, where: str, detail: str = '') -> None:
        """Count one dropped item; keep the first examples."""
        if reason not in DROP_REASONS:
            raise KeyError(f'unknown drop reason {reason!r}')
        self.dropped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(f'{where}: {detail}' if detail else where)

    def to_dict(self) -> dict:
        """JSON-ready content."""
        return dict(source=self.source, counts=dict(self.counts),
                    dropped={reason: dict(count=count, meaning=DROP_REASONS[reason],
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
        if self.dropped:
            lines.append('  dropped:')
            for reason, count in self.dropped.items():
                lines.append(f'    {reason}: {count} ({DROP_REASONS[reason]}); e.g. '
                             + '; '.join(self.examples.get(reason, [])[:2]))
        else:
            lines.append('  nothing dropped')
        lines += [f'  note: {note}' for note in self.notes]
        return '\n'.join(lines)


# ----------------------------------------------------------------------------------------------------------
# Reading and validating the JSON format
# ----------------------------------------------------------------------------------------------------------
def read_scene_graph_json(path: str) -> dict:
    """Load the file and check its top level (errors name the file and the field)."""
    try:
        with open(path, encoding='utf-8') as file:
            data = json.load(file)
    except OSError as error:
        raise FileNotFoundError(f'{path}: cannot read the scene graph JSON ({error})') from error
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not valid JSON ({error})') from error
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


def resolve_vocabulary(data: dict, vocab_file: Optional[str], path: str) -> Tuple[tuple, tuple, str]:
    """(classes, predicates, where they came from): ``--vocab``, then the JSON's lists, then the sorted names
    found in the file."""
    if vocab_file:
        from speaq_mm.datasets.vg_h5 import read_vg_dicts
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
    from PIL import Image
    with Image.open(file_path) as image:
        return image.size


def _valid_id(value) -> bool:
    """The ids ``VGH5Dataset`` accepts (``PLAIN_IMAGE_ID``): they name files inside the image folder."""
    from speaq_mm.datasets.vg_h5 import PLAIN_IMAGE_ID
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
                  report: ConversionReport) -> Optional[dict]:
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
               report: ConversionReport) -> np.ndarray:
    """(R, 3) (subject, object, predicate) of the usable relations, indices into the kept objects."""
    triplets = []
    for index, relation in enumerate(relations if isinstance(relations, list) else []):
        where = f'{image["where"]} relations[{index}]'
        if not isinstance(relation, dict):
            report.drop('relation: not an object', where)
            continue
        if any(key not in relation for key in ('subject', 'object', 'predicate')):
            report.drop('relation: missing field', where)
            continue
        ends = [json.dumps(relation['subject']), json.dumps(relation['object'])]
        if relation['predicate'] not in predicate_index:
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
    return np.array(triplets, np.int64).reshape(-1, 3)


def validate_images(data: dict, classes: Sequence[str], predicates: Sequence[str], report: ConversionReport,
                    image_dir: Optional[str] = None, default_split: str = 'train') -> List[dict]:
    """The usable images, each as ``id``, ``file``, ``suffix``, ``width``, ``height``, ``split`` (code),
    ``boxes`` (K, 4) xyxy clipped, ``labels`` (K,) and ``relations`` (R, 3) local indices; every drop is
    counted in ``report``."""
    class_index = {name: i for i, name in enumerate(classes)}
    predicate_index = {name: i for i, name in enumerate(predicates)}
    seen_ids, images = set(), []
    for position, entry in enumerate(data['images']):
        report.counts['images_in'] += 1
        image = _image_header(entry, position, seen_ids, image_dir, default_split, report)
        if image is None:
            continue
        boxes, labels, kept, dropped = _objects(entry.get('objects'), image, class_index,
                                                data.get('bbox_format', 'xyxy'), report)
        relations = _relations(entry.get('relations'), image, kept, dropped, predicate_index, report)
        report.counts.update(images_kept=1, objects_kept=len(boxes), relations_kept=len(relations))
        images.append(dict(image, boxes=boxes, labels=labels, relations=relations))
    return images


# ----------------------------------------------------------------------------------------------------------
# JSON -> VG
# ----------------------------------------------------------------------------------------------------------
def json_to_vg(json_path: str, out_dir: str, image_dir: Optional[str] = None, vocab_file: Optional[str] = None,
               image_mode: str = 'symlink', default_split: str = 'train', overwrite: bool = False) -> dict:
    """Convert a scene graph JSON file into the VG layout under ``out_dir``.

    Args:
        json_path (str): the JSON file (module docstring).
        out_dir (str): receives ``VG-SGG-with-attri.h5``, ``image_data.json``, ``VG-SGG-dicts-with-attri.json``,
            ``VG_100K/`` and ``conversion_report.json``.
        image_dir (str, optional): where ``file_name`` is relative to; without it image files are neither
            checked nor placed.
        vocab_file (str, optional): a VG dicts json giving the vocabulary (see :func:`resolve_vocabulary`).
        image_mode (str): how images reach ``VG_100K/<id><suffix>``: ``symlink``, ``copy`` or ``none``.
        default_split (str): split of images without ``split``.
        overwrite (bool): write into a non-empty ``out_dir`` (replacing its VG files and same-named images);
            without it such a folder is refused and left untouched.

    Returns:
        dict: the report (``conversion_report.json``), with ``dataset`` holding the settings a
        ``VGH5Dataset`` config needs (``data_root``, ``img_suffix``, ``use_h5_val_split``).
    """
    from speaq_mm.datasets.vg_h5 import VG_FILE_NAMES, write_vg_dataset
    from speaq_mm.engine.atomic_io import atomic_dump
    if osp.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f'{out_dir} is not empty; nothing was written. Choose an empty or new folder, or pass '
                              '--overwrite to replace its VG files and same-named images')
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'{out_dir} exists and is not a folder')
    if image_mode not in IMAGE_MODES:
        raise ValueError(f'--image-mode must be one of {IMAGE_MODES}, got {image_mode!r}')
    if default_split not in SPLIT_CODES:
        raise ValueError(f'--default-split must be one of {tuple(SPLIT_CODES)}, got {default_split!r}')
    if image_dir is not None and not osp.isdir(image_dir):
        raise FileNotFoundError(f'--image-dir {image_dir}: no such folder')
    data = read_scene_graph_json(json_path)
    classes, predicates, vocabulary_from = resolve_vocabulary(data, vocab_file, json_path)
    report = ConversionReport(json_path)
    images = validate_images(data, classes, predicates, report, image_dir, default_split)
    if not images:
        raise ValueError(f'{json_path}: no usable image; nothing written.\n{report.text()}')
    suffixes = Counter(image['suffix'] for image in images)
    # VGH5Dataset reads <image_id><img_suffix>; mixed suffixes keep them in the id and use img_suffix=''.
    img_suffix = next(iter(suffixes)) if len(suffixes) == 1 else ''
    image_ids = [image['id'] if img_suffix else f'{image["id"]}{image["suffix"]}' for image in images]
    if image_dir is None:
        image_mode = 'none'
        report.notes.append('no --image-dir: image files were neither checked nor placed in VG_100K')
    os.makedirs(out_dir, exist_ok=True)
    write_vg_dataset(
        out_dir, classes, predicates, np.array([image['split'] for image in images]),
        np.array([image['width'] for image in images]), np.array([image['height'] for image in images]),
        image_ids, np.array([len(image['boxes']) for image in images]),
        np.concatenate([image['boxes'] for image in images]), np.concatenate([image['labels'] for image in images]),
        np.array([len(image['relations']) for image in images]),
        np.concatenate([image['relations'] for image in images]))
    img_dir = osp.join(out_dir, VG_FILE_NAMES['img_dir'])
    for image, image_id in zip(images, image_ids):
        if image_mode == 'none':
            break
        target = osp.join(img_dir, f'{image_id}{img_suffix}')
        if osp.lexists(target):
            os.remove(target)
        if image_mode == 'copy':
            shutil.copyfile(image['file'], target)
        else:
            os.symlink(osp.abspath(image['file']), target)
    splits = Counter(image['split'] for image in images)
    train_relations = sum(len(image['relations']) for image in images if image['split'] == 0)
    if splits.get(1):
        report.notes.append(f'{splits[1]} images have split "val": set use_h5_val_split=True in the dataset config '
                            '(otherwise val is carved out of train by num_val_images)')
    if not train_relations:
        report.notes.append('the train split has no relations: VGH5Dataset computes its statistics from it, so '
                            'set with_statistics=False or add train images')
    if len(suffixes) > 1:
        report.notes.append(f'image files have several suffixes ({dict(suffixes)}): ids keep their suffix and '
                            'the dataset needs img_suffix=""')
    result = report.to_dict()
    result.update(vocabulary=dict(classes=list(classes), predicates=list(predicates), source=vocabulary_from),
                  splits={name: splits.get(code, 0) for name, code in SPLIT_CODES.items()},
                  dataset=dict(data_root=osp.abspath(out_dir), img_suffix=img_suffix,
                               use_h5_val_split=bool(splits.get(1))),
                  image_mode=image_mode)
    atomic_dump(result, osp.join(out_dir, 'conversion_report.json'))
    result['text'] = report.text()
    return result


# ----------------------------------------------------------------------------------------------------------
# VG -> JSON
# ----------------------------------------------------------------------------------------------------------
def vg_to_json(vg_dir: str, out_path: str, split: str = 'all', img_suffix: str = '.jpg', box_scale: int = 1024,
               ann_file: Optional[str] = None, image_data_file: Optional[str] = None,
               dicts_file: Optional[str] = None, overwrite: bool = False) -> dict:
    """Write the images of a VG-layout dataset as a scene graph JSON file (boxes xyxy in original pixels).

    Args:
        vg_dir (str): folder with the three VG files (their standard names unless given).
        out_path (str): the JSON file to write.
        split (str): ``all``, or ``train``/``val``/``test`` for the h5 rows of split code 0/1/2.
        img_suffix (str): ``file_name`` = ``<image id><img_suffix>`` (the files of ``VG_100K``).
        box_scale (int): which ``boxes_<box_scale>`` to read.
        overwrite (bool): replace ``out_path`` if it exists (refused otherwise).

    Returns:
        dict: counts (``images``, ``objects``, ``relations``) and the output path.
    """
    from speaq_mm.datasets.vg_h5 import VG_FILE_NAMES, load_vg_graphs, read_vg_dicts
    from speaq_mm.engine.atomic_io import atomic_write
    if osp.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; pass --overwrite to replace it')
    if split != 'all' and split not in SPLIT_CODES:
        raise ValueError(f'--split must be all or one of {tuple(SPLIT_CODES)}, got {split!r}')
    paths = {key: value or osp.join(vg_dir, VG_FILE_NAMES[key]) for key, value in
             (('ann_file', ann_file), ('image_data_file', image_data_file), ('dicts_file', dicts_file))}
    for key, path in paths.items():
        if not osp.isfile(path):
            raise FileNotFoundError(f'{key} {path} does not exist')
    classes, predicates = read_vg_dicts(paths['dicts_file'])
    graphs = load_vg_graphs(paths['ann_file'], paths['image_data_file'], len(classes), len(predicates),
                            box_scale=box_scale, box_decode='float')
    split_names = {code: name for name, code in SPLIT_CODES.items()}
    images = []
    counts = Counter()
    for row in range(len(graphs.split)):
        code = int(graphs.split[row])
        if (split != 'all' and code != SPLIT_CODES[split]) or code not in split_names:
            continue
        image_id = graphs.image_id[row]
        image_id = image_id.item() if hasattr(image_id, 'item') else image_id
        scale = max(int(graphs.width[row]), int(graphs.height[row])) / graphs.box_scale
        b0, b1 = graphs.box_ptr[row], graphs.box_ptr[row + 1]
        r0, r1 = graphs.rel_ptr[row], graphs.rel_ptr[row + 1]
        objects = [dict(id=k, name=classes[label], bbox=[round(float(v) * scale, 2) for v in box])
                   for k, (box, label) in enumerate(zip(graphs.boxes[b0:b1], graphs.labels[b0:b1]))]
        relations = [dict(subject=int(s), object=int(o), predicate=predicates[p])
                     for s, o, p in graphs.relations[r0:r1].tolist()]
        images.append(dict(file_name=f'{image_id}{img_suffix}', id=image_id, width=int(graphs.width[row]),
                           height=int(graphs.height[row]), split=split_names[code], objects=objects,
                           relations=relations))
        counts.update(images=1, objects=len(objects), relations=len(relations))
    atomic_write(json.dumps(dict(classes=list(classes), predicates=list(predicates), bbox_format='xyxy',
                                 images=images)), out_path)
    return dict(counts, output=out_path)
