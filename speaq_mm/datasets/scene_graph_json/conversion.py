"""Conversion between the JSON scene-graph format (``validation``) and the VG150 h5 + json files."""
import json
import os
import os.path as osp
import shutil
from collections import Counter
from typing import Optional

import numpy as np

from ...utils.atomic_io import atomic_dump, atomic_write
from ..vg_format import VG_FILE_NAMES, load_vg_graphs, read_vg_dicts, write_vg_dataset
from .validation import (
    IMAGE_MODES,
    SPLIT_CODES,
    ConversionReport,
    apply_alias_map,
    read_alias_map,
    read_exclude_list,
    read_scene_graph_json,
    resolve_vocabulary,
    unknown_names,
    validate_images,
)


def json_to_vg(json_path: str, out_dir: str, image_dir: Optional[str] = None, vocab_file: Optional[str] = None,
               image_mode: str = 'symlink', default_split: str = 'train', overwrite: bool = False,
               exclude_file: Optional[str] = None, alias_file: Optional[str] = None) -> dict:
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
        exclude_file (str, optional): images to leave out, one file name or id per line
            (:func:`~.validation.read_exclude_list`); counted as ``image: excluded``.
        alias_file (str, optional): JSON map of free-text class and predicate names to vocabulary names
            (:func:`~.validation.read_alias_map`), applied before validation.

    When any relation has a ``score``, the scores are stored as the h5's ``relationship_scores`` (one float32
    per relation row, 1.0 for relations without one); otherwise the h5 has exactly the VG150 keys.

    Returns:
        dict: the report (``conversion_report.json``), with ``dataset`` holding the settings a
        ``VGH5Dataset`` config needs (``data_root``, ``img_suffix``, ``use_h5_val_split``), ``aliased`` (the
        free-text names the alias map renamed, with counts), ``unmapped`` (the names still outside the
        vocabulary, with counts, most frequent first) and ``relation_scores`` (whether they were stored).
    """
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
    excluded = read_exclude_list(exclude_file) if exclude_file else set()
    alias_map = read_alias_map(alias_file) if alias_file else {'classes': {}, 'predicates': {}}
    data = read_scene_graph_json(json_path)
    aliased = apply_alias_map(data, alias_map)
    classes, predicates, vocabulary_from = resolve_vocabulary(data, vocab_file, json_path)
    for key, names in (('classes', classes), ('predicates', predicates)):
        outside = sorted(set(alias_map[key].values()) - set(names))
        if outside:
            raise ValueError(f'--alias-map {alias_file}: "{key}" maps to {outside}, which are not in the vocabulary '
                             f'({vocabulary_from}); nothing written')
    unmapped = unknown_names(data, classes, predicates)
    has_scores = any(isinstance(relation, dict) and 'score' in relation for image in data['images']
                     if isinstance(image, dict) and isinstance(image.get('relations'), list)
                     for relation in image['relations'])
    report = ConversionReport(json_path)
    images = validate_images(data, classes, predicates, report, image_dir, default_split, excluded)
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
        np.concatenate([image['relations'] for image in images]),
        relation_scores=np.concatenate([image['relation_scores'] for image in images]) if has_scores else None)
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
    for key in ('classes', 'predicates'):
        if unmapped[key]:
            names = ', '.join(f'{name!r} x{count}' for name, count in list(unmapped[key].items())[:10])
            report.notes.append(f'{len(unmapped[key])} {key} names are not in the vocabulary (dropped; map them with '
                                f'--alias-map): {names}' + (' ...' if len(unmapped[key]) > 10 else ''))
    if excluded:
        listed = {image.get('file_name') for image in data['images'] if isinstance(image, dict)}
        listed |= {osp.basename(name) for name in listed if isinstance(name, str)}
        listed |= {str(image['id']) for image in data['images'] if isinstance(image, dict) and 'id' in image}
        unused = sorted(excluded - listed)
        if unused:
            report.notes.append(f'{len(unused)} entries of --exclude {exclude_file} name no image of the file, '
                                f'e.g. {unused[:3]}')
    if len(suffixes) > 1:
        report.notes.append(f'image files have several suffixes ({dict(suffixes)}): ids keep their suffix and '
                            'the dataset needs img_suffix=""')
    result = report.to_dict()
    result.update(vocabulary=dict(classes=list(classes), predicates=list(predicates), source=vocabulary_from),
                  splits={name: splits.get(code, 0) for name, code in SPLIT_CODES.items()},
                  dataset=dict(data_root=osp.abspath(out_dir), img_suffix=img_suffix,
                               use_h5_val_split=bool(splits.get(1))),
                  image_mode=image_mode, relation_scores=has_scores,
                  aliased={key: dict(counter.most_common()) for key, counter in aliased.items()},
                  unmapped=unmapped)
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
        if graphs.relation_scores is not None:
            for relation, score in zip(relations, graphs.relation_scores[r0:r1].tolist()):
                relation['score'] = score
        images.append(dict(file_name=f'{image_id}{img_suffix}', id=image_id, width=int(graphs.width[row]),
                           height=int(graphs.height[row]), split=split_names[code], objects=objects,
                           relations=relations))
        counts.update(images=1, objects=len(objects), relations=len(relations))
    atomic_write(json.dumps(dict(classes=list(classes), predicates=list(predicates), bbox_format='xyxy',
                                 images=images)), out_path)
    return dict(counts, output=out_path)
