"""Shared parts of the importers from other scene-graph formats into the JSON scene-graph format.

Every importer (``coco_rel``, ``psg``, ``gqa``) reads its format into images whose objects are a list (the
format's annotation order) and whose relations index that list, and hands each image to :func:`import_image`,
which keeps what the JSON format and ``json_to_vg`` accept and counts everything else in an
:class:`~.validation.ConversionReport` by reason (:data:`IMPORT_DROP_REASONS`: the JSON validation's
:data:`~.validation.DROP_REASONS` plus the ones only index-based formats have). The output of an importer
passes ``json_to_vg`` without further drops, except boxes clipped to their image (counted there).

Objects keep their position in the source list as ``id``, so that a relation of the output names the same
annotation as the source's index did. :func:`write_scene_graph_json` writes the result atomically and refuses
to replace a file without ``overwrite``.
"""
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from ...utils.atomic_io import atomic_dump
from .validation import DROP_REASONS, SPLIT_CODES, ConversionReport, _valid_id

# The names some formats give their label 0 (a background entry rather than a class or predicate).
BACKGROUND_NAMES = ('__background__', 'N/A')

IMPORT_DROP_REASONS = OrderedDict(DROP_REASONS)
IMPORT_DROP_REASONS.update([
    ('image: no relations', 'the reference loader skips images without relations (PSG, GQA-200)'),
    ('image: no objects', 'the reference loader skips images without objects (GQA-200)'),
    ('image: skipped by the reference loader', 'a fixed item the reference loader leaves out (GQA-200)'),
    ('object: unknown image', 'the annotation\'s image_id names no image of the file'),
    ('object: crowd', 'iscrowd=1: the reference loader removes crowd annotations before indexing'),
    ('object: unknown category', 'the category id or label is not in the file\'s category list'),
    ('object: background category', 'the label is the background entry (label 0 / "N/A" / "__background__")'),
    ('relation: unknown image', 'the relation list names an image id absent from the split\'s images'),
    ('relation: bad entry', 'not a list of 3 integers [subject index, object index, predicate index]'),
    ('relation: index out of range', 'the subject or object index points past the image\'s annotations'),
    ('relation: background predicate', 'the predicate index is the background entry'),
])


def import_report(source: str) -> ConversionReport:
    """A report that accepts :data:`IMPORT_DROP_REASONS`."""
    return ConversionReport(source, IMPORT_DROP_REASONS)


def foreground_names(names: Sequence[str], what: str, path: str) -> Tuple[List[str], Dict[int, str]]:
    """(vocabulary without background entries, source index -> name) of a name list indexed by label.

    A background name (:data:`BACKGROUND_NAMES`) is only accepted at index 0, where formats put it."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f'{path}: {what} must be a list of names')
    if any(name in BACKGROUND_NAMES for name in names[1:]):
        raise ValueError(f'{path}: {what} has a background entry after index 0')
    index = {i: name for i, name in enumerate(names) if not (i == 0 and name in BACKGROUND_NAMES)}
    vocabulary = list(index.values())
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError(f'{path}: {what} lists a name twice')
    return vocabulary, index


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def xyxy_box(raw, xywh: bool = False) -> Optional[List[float]]:
    """A box as 4 finite floats x1, y1, x2, y2 (from x, y, w, h with ``xywh``), or None."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw):
        return None
    x1, y1, a, b = (float(v) for v in raw)
    return [x1, y1, x1 + a, y1 + b] if xywh else [x1, y1, a, b]


def import_image(report: ConversionReport, where: str, header: dict, objects: Sequence[Tuple],
                 relations: Sequence, predicates: Dict[int, str], background_predicates=(),
                 seen_ids: Optional[set] = None) -> Optional[dict]:
    """One image of the JSON format, or None (counted) when it cannot be used.

    Args:
        report (ConversionReport): from :func:`import_report`.
        where (str): names the image in the report's examples.
        header (dict): ``file_name``, ``id``, ``width``, ``height``, ``split``.
        objects (list): per source annotation, ``(name, xyxy box)`` or ``(None, drop reason, detail)``.
        relations (list): ``[subject index, object index, predicate index]`` into ``objects``.
        predicates (dict): predicate index -> name.
        background_predicates (tuple): predicate indices that mean "no relation".
        seen_ids (set, optional): ids of the images kept so far (a repeated id is dropped); updated.
    """
    report.counts['images_in'] += 1
    report.counts['objects_in'] += len(objects)
    report.counts['relations_in'] += len(relations)
    width, height = header.get('width'), header.get('height')
    if not isinstance(header.get('file_name'), str) or not header['file_name']:
        report.drop('image: no file_name', where)
        return None
    if not _valid_id(header.get('id')):
        report.drop('image: bad id', where, repr(header.get('id')))
        return None
    if seen_ids is not None and str(header['id']) in seen_ids:
        report.drop('image: duplicate id', where, repr(header['id']))
        return None
    if header.get('split') not in SPLIT_CODES:
        report.drop('image: bad split', where, repr(header.get('split')))
        return None
    if not all(_is_index(v) and v > 0 for v in (width, height)):
        report.drop('image: bad size', where, f'width={width!r}, height={height!r}')
        return None
    kept, dropped, out_objects = set(), set(), []
    for index, obj in enumerate(objects):
        place = f'{where} annotation {index}'
        if obj[0] is None:
            report.drop(obj[1], place, obj[2] if len(obj) > 2 else '')
            dropped.add(index)
            continue
        name, box = obj
        if box is None:
            report.drop('object: bad bbox', place)
            dropped.add(index)
            continue
        x1, y1, x2, y2 = max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height)
        if x2 <= x1 or y2 <= y1:
            report.drop('object: empty bbox', place, f'{box} in {width}x{height}')
            dropped.add(index)
            continue
        kept.add(index)
        out_objects.append(dict(id=index, name=name, bbox=[round(v, 4) for v in box]))
    out_relations, seen = [], set()
    for position, relation in enumerate(relations):
        place = f'{where} relation {position}'
        if not isinstance(relation, (list, tuple)) or len(relation) != 3 or not all(map(_is_index, relation)):
            report.drop('relation: bad entry', place, repr(relation))
            continue
        subject, obj, predicate = relation
        if any(end < 0 or end >= len(objects) for end in (subject, obj)):
            report.drop('relation: index out of range', place, f'{relation} with {len(objects)} annotations')
        elif predicate in background_predicates:
            report.drop('relation: background predicate', place, repr(relation))
        elif predicate not in predicates:
            report.drop('relation: unknown predicate', place, repr(relation))
        elif subject in dropped or obj in dropped:
            report.drop('relation: uses a dropped object', place, repr(relation))
        elif subject == obj:
            report.drop('relation: self relation', place, repr(relation))
        elif (subject, obj, predicate) in seen:
            report.drop('relation: duplicate', place, repr(relation))
        else:
            seen.add((subject, obj, predicate))
            out_relations.append(dict(subject=subject, object=obj, predicate=predicates[predicate]))
    report.counts.update(images_kept=1, objects_kept=len(out_objects), relations_kept=len(out_relations))
    if seen_ids is not None:
        seen_ids.add(str(header['id']))
    return dict(file_name=header['file_name'], id=header['id'], width=width, height=height, split=header['split'],
                objects=out_objects, relations=out_relations)


def print_import_result(result: dict, strict: bool = False) -> None:
    """What an importer's command line prints: the report, the splits and the next step; with ``strict``,
    exit with status 1 when anything was dropped (after writing)."""
    print(result['text'])
    print(f'splits: {result["splits"]}; wrote {result["output"]} and {report_path(result["output"])}')
    print(f'next: python tools/dataset_converters/json_to_vg.py {result["output"]} DATA_DIR --image-dir IMAGE_DIR '
          '(docs/own_data.md)')
    if strict and result['dropped']:
        raise SystemExit(f'--strict: {sum(d["count"] for d in result["dropped"].values())} items were dropped')


def report_path(out_path: str) -> str:
    """Where the drop report of ``out_path`` goes: ``<out without extension>.report.json``."""
    return osp.splitext(out_path)[0] + '.report.json'


def refuse_existing(out_path: str, overwrite: bool) -> None:
    """Refuse to replace ``out_path`` or its report unless ``overwrite`` (call it before any work)."""
    for path in (out_path, report_path(out_path)):
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; nothing was written. Pass --overwrite to replace it')


def write_scene_graph_json(out_path: str, classes: Sequence[str], predicates: Sequence[str], images: List[dict],
                           report: ConversionReport, overwrite: bool = False, **extra) -> dict:
    """Write the JSON scene-graph file (boxes xyxy) and ``<out>.report.json``; return the report dict."""
    refuse_existing(out_path, overwrite)
    if not images:
        raise ValueError(f'{report.source}: no usable image; nothing written.\n{report.text()}')
    atomic_dump(dict(classes=list(classes), predicates=list(predicates), bbox_format='xyxy', images=images),
                out_path)
    result = dict(report.to_dict(), output=out_path, **extra)
    result['splits'] = {name: sum(image['split'] == name for image in images) for name in SPLIT_CODES}
    atomic_dump(result, report_path(out_path))
    result['text'] = report.text()
    return result
