"""The PSG (panoptic scene graph) json of OpenPSG, imported as boxes into the JSON scene-graph format.

The layout (as OpenPSG's ``openpsg/datasets/psg.py`` reads it; docs/own_data.md): one json with
``thing_classes``, ``stuff_classes`` and ``predicate_classes`` (name lists, 0-based), ``test_image_ids`` and
``data``, a list of images with ``file_name``, ``image_id``, ``width``, ``height``, ``annotations`` (``bbox`` as
x1, y1, x2, y2 and ``category_id`` indexing things then stuff), ``segments_info`` (the panoptic segments, not
used here) and ``relations`` (``[subject, object, predicate]``, indices into ``annotations`` and
``predicate_classes``).

:func:`psg_to_json` keeps the boxes of things and stuff (the loader's ``all_bboxes=True``; the masks are not
part of the JSON format), puts the images listed in ``test_image_ids`` in the test split and the others in
train (the loader has no val split), and, like the loader, leaves out images without relations. The loader
samples one predicate per (subject, object) pair at every training epoch; the import keeps all distinct
triplets, and exact duplicates are dropped (counted).
"""
from typing import Optional

from .importing import foreground_names, import_image, import_report, refuse_existing, write_scene_graph_json, xyxy_box
from .validation import load_json_file


def psg_to_json(psg_path: str, out_path: str, overwrite: bool = False, keep_empty: bool = False) -> dict:
    """Convert the PSG json ``psg_path`` into a JSON scene-graph file.

    Args:
        keep_empty (bool): keep images without relations (the loader skips them: counted as
            ``image: no relations``).

    Returns:
        dict: the report, also written to ``<out_path without extension>.report.json``.
    """
    refuse_existing(out_path, overwrite)
    psg = load_json_file(psg_path)
    for key in ('thing_classes', 'stuff_classes', 'predicate_classes', 'data'):
        if not isinstance(psg, dict) or not isinstance(psg.get(key), list):
            raise ValueError(f'{psg_path}: field "{key}" must be a list')
    classes, class_index = foreground_names(psg['thing_classes'] + psg['stuff_classes'],
                                            '"thing_classes" + "stuff_classes"', psg_path)
    predicates, predicate_index = foreground_names(psg['predicate_classes'], '"predicate_classes"', psg_path)
    test_ids = {str(image_id) for image_id in psg.get('test_image_ids') or []}
    report = import_report(psg_path)
    images, seen_ids = [], set()
    for position, image in enumerate(psg['data']):
        where = f'{psg_path} data[{position}]'
        entry = _image(image, where, class_index, predicate_index, test_ids, keep_empty, report, seen_ids)
        if entry is not None:
            images.append(entry)
    return write_scene_graph_json(out_path, classes, predicates, images, report, overwrite)


def _image(image, where, class_index, predicate_index, test_ids, keep_empty, report, seen_ids) -> Optional[dict]:
    if not isinstance(image, dict):
        report.counts['images_in'] += 1
        report.drop('image: not an object', where)
        return None
    annotations = image.get('annotations') if isinstance(image.get('annotations'), list) else []
    relations = image.get('relations') if isinstance(image.get('relations'), list) else []
    if not relations and not keep_empty:
        report.counts.update(images_in=1, objects_in=len(annotations))
        report.drop('image: no relations', where, repr(image.get('image_id')))
        return None
    objects = []
    for annotation in annotations:
        category = annotation.get('category_id') if isinstance(annotation, dict) else None
        if category not in class_index:
            objects.append((None, 'object: unknown category', repr(category)))
        else:
            objects.append((class_index[category], xyxy_box(annotation.get('bbox'))))
    image_id = image.get('image_id')
    header = dict(file_name=image.get('file_name'), id=image_id, width=image.get('width'),
                  height=image.get('height'), split='test' if str(image_id) in test_ids else 'train')
    return import_image(report, where, header, objects, relations, predicate_index, seen_ids=seen_ids)
