"""GQA-200 (the GQA split of the long-tail SGG papers) imported into the JSON scene-graph format.

The files (as ``maskrcnn_benchmark/data/datasets/gqa.py`` of SHA-GCL-for-SGG reads them; docs/own_data.md):

* a dict file with ``ind_to_classes`` and ``ind_to_predicates`` (name lists indexed by label, entry 0
  ``__background__``);
* a train file and a test file, each with the parallel lists ``filenames_all`` (image file names),
  ``img_info_all`` (dicts with ``width`` and ``height``), ``gt_boxes_all`` (per image, boxes x1, y1, x2, y2 in
  image pixels), ``gt_classes_all`` (per image, labels) and ``relationships_all`` (per image,
  ``[subject, object, predicate]`` with indices into the image's boxes and ``ind_to_predicates``).

The reference loader's splits, reproduced exactly by :func:`gqa_to_json`:

* train: every item of the train file with at least one relation and one box;
* test: the items of the test file with at least one relation and one box, except the 5580th item of the
  file (1-based; position 5579), which the loader always skips for val and test;
* val: the first 5000 test images (after those skips): a subset of test, not separate images. The JSON format
  gives each image one split, so with ``val='reference'`` (default) these 5000 images appear a second time
  with the id ``<id>_val`` and split val (``json_to_vg`` links the same file under that name, and
  ``use_h5_val_split=True`` reads them); ``val='none'`` leaves val empty.

Where the import differs from the loader: it drops boxes that are empty inside their image, and the relations
that use them (the loader keeps them at test time and removes the boxes but not their relations at train
time), and exact duplicate triplets (the loader samples one predicate per pair when training); each such drop
is counted by reason.
"""
import os.path as osp

from ..vg_format import PLAIN_IMAGE_ID
from .importing import foreground_names, import_image, import_report, refuse_existing, write_scene_graph_json, xyxy_box
from .validation import load_json_file

# The loader skips this item (1-based) of the test file for val and test.
SKIPPED_TEST_ITEM = 5580
NUM_VAL_IMAGES = 5000
VAL_ID_SUFFIX = '_val'
GRAPH_FIELDS = ('filenames_all', 'img_info_all', 'gt_boxes_all', 'gt_classes_all', 'relationships_all')


def _graphs(path: str):
    graphs = load_json_file(path, f'GQA-200 graph file {path}')
    if not isinstance(graphs, dict) or not all(isinstance(graphs.get(key), list) for key in GRAPH_FIELDS):
        raise ValueError(f'{path}: expected the lists {", ".join(GRAPH_FIELDS)}')
    lengths = {key: len(graphs[key]) for key in GRAPH_FIELDS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f'{path}: the lists must be parallel (same length), got {lengths}')
    return graphs


def _image_id(file_name, info):
    """The file name without its extension (GQA names files by image id), else ``img_info['image_id']``."""
    stem = osp.splitext(osp.basename(file_name))[0] if isinstance(file_name, str) else None
    if stem and PLAIN_IMAGE_ID.fullmatch(stem):
        return int(stem) if stem.isdigit() and not stem.startswith('0') else stem
    return info.get('image_id') if isinstance(info, dict) else None


def gqa_to_json(dict_file: str, train_file: str, test_file: str, out_path: str, val: str = 'reference',
                overwrite: bool = False) -> dict:
    """Convert GQA-200 into a JSON scene-graph file with the reference loader's train / val / test splits.

    Args:
        val (str): ``reference`` (the first 5000 test images again as val, see the module docstring) or
            ``none``.

    Returns:
        dict: the report, also written to ``<out_path without extension>.report.json``.
    """
    if val not in ('reference', 'none'):
        raise ValueError(f"val must be 'reference' or 'none', got {val!r}")
    refuse_existing(out_path, overwrite)
    names = load_json_file(dict_file, f'GQA-200 dict file {dict_file}')
    if not isinstance(names, dict):
        raise ValueError(f'{dict_file}: expected an object with "ind_to_classes" and "ind_to_predicates"')
    classes, class_index = foreground_names(names.get('ind_to_classes'), '"ind_to_classes"', dict_file)
    predicates, predicate_index = foreground_names(names.get('ind_to_predicates'), '"ind_to_predicates"',
                                                   dict_file)
    background_classes = {0} - set(class_index)
    background_predicates = {0} - set(predicate_index)
    report = import_report(f'GQA-200 ({train_file}, {test_file})')
    images, seen_ids, loader_test_images = [], set(), []
    for split, path in (('train', train_file), ('test', test_file)):
        graphs = _graphs(path)
        for position, fields in enumerate(zip(*(graphs[key] for key in GRAPH_FIELDS))):
            file_name, info, boxes, labels, relations = fields
            where = f'{path} item {position + 1}'
            boxes = boxes if isinstance(boxes, list) else []
            relations = relations if isinstance(relations, list) else []
            reason = ('image: skipped by the reference loader' if split == 'test' and position + 1 == SKIPPED_TEST_ITEM
                      else 'image: no relations' if not relations else 'image: no objects' if not boxes else None)
            if reason:
                report.counts.update(images_in=1, objects_in=len(boxes), relations_in=len(relations))
                report.drop(reason, where, repr(file_name))
                continue
            objects = []
            for box, label in zip(boxes, labels if isinstance(labels, list) else []):
                if label in background_classes:
                    objects.append((None, 'object: background category', repr(label)))
                elif label not in class_index:
                    objects.append((None, 'object: unknown category', repr(label)))
                else:
                    objects.append((class_index[label], xyxy_box(box)))
            objects += [(None, 'object: bad bbox', 'no label')] * (len(boxes) - len(objects))
            info = info if isinstance(info, dict) else {}
            header = dict(file_name=file_name, id=_image_id(file_name, info), width=info.get('width'),
                          height=info.get('height'), split=split)
            entry = import_image(report, where, header, objects, relations, predicate_index,
                                 background_predicates, seen_ids)
            if entry is not None:
                images.append(entry)
            if split == 'test':
                loader_test_images.append(entry)
    if val == 'reference':
        # The loader's val: its first 5000 test items, counted before the import's own drops.
        loader_val = loader_test_images[:NUM_VAL_IMAGES]
        images += [dict(image, id=f'{image["id"]}{VAL_ID_SUFFIX}', split='val') for image in loader_val if image]
        report.notes.append(f'val = the first {len(loader_val)} test images of the reference loader, repeated with '
                            f'ids "<id>{VAL_ID_SUFFIX}" (its val is a subset of test); '
                            f'{sum(image is None for image in loader_val)} of them were dropped above')
    return write_scene_graph_json(out_path, classes, predicates, images, report, overwrite)
