"""Run a scene graph model on your own images: draws each scene graph and writes its triplets as JSON.

    python tools/demo/image_demo.py IMAGE_OR_FOLDER CONFIG CHECKPOINT --out-dir DIR [--topk 20]
        [--score-thr 0.0] [--device cpu]

IMAGE_OR_FOLDER is one image or a folder of them (JPEG, PNG, BMP, GIF, TIFF, WebP; any size, grey or
RGBA too; EXIF orientation is applied). No dataset files are needed: the class and predicate names come
from the checkpoint (mmengine saves the training set's metainfo in ``meta.dataset_meta``), or else from the
config (``test_dataloader.dataset.metainfo`` with ``classes`` and ``predicates``, or the dicts json the
test dataset names, when it exists). Images go through the config's test pipeline without its annotation
loading.

For every image ``<name>.<ext>`` the out dir receives ``<name>.png`` (the image with the boxes of the
entities used by the top triplets, and the graph beside it) and ``<name>.json``::

    {"image": ..., "width": W, "height": H,
     "entities": [{"id": 0, "label": 3, "name": "square", "score": 0.91, "bbox": [x1, y1, x2, y2]}, ...],
     "triplets": [{"rank": 0, "subject": 0, "object": 1, "predicate": 2, "subject_name": ...,
                   "predicate_name": "left of", "object_name": ..., "score": 0.42,
                   "predicate_score": 0.77, "query_id": 17}, ...]}

Entity ids are local to the file and match the numbers in the drawing; boxes are in original-image pixels;
``score`` is the triplet score (subject x object x predicate). ``summary.json`` lists every image processed
and every file skipped.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp')
# Annotation loaders of test pipelines; a photo has no annotations.
ANNOTATION_LOADERS = ('SGGLoadAnnotations', 'LoadAnnotations')


def list_images(path: str) -> List[str]:
    """One image, or the images of a folder (not its subfolders) sorted by name."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'IMAGE_OR_FOLDER {path}: no such file or folder')
    images = sorted(osp.join(path, name) for name in os.listdir(path)
                    if name.lower().endswith(IMAGE_SUFFIXES) and osp.isfile(osp.join(path, name)))
    if not images:
        raise FileNotFoundError(f'IMAGE_OR_FOLDER {path}: no images ({", ".join(IMAGE_SUFFIXES)}) in the folder')
    return images


def load_image_rgb(path: str) -> np.ndarray:
    """The image as (H, W, 3) uint8 RGB, upright (EXIF orientation applied), whatever its mode."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ('RGBA', 'LA') or (image.mode == 'P' and 'transparency' in image.info):
                # Transparent pixels on white, as image viewers show them.
                background = Image.new('RGBA', image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image.convert('RGBA'))
            return np.asarray(image.convert('RGB'))
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f'{path}: cannot read the image ({error})') from error


def output_stems(images: Sequence[str]) -> List[str]:
    """Output names: the file name without its extension, or with it when two inputs share a stem."""
    stems = [osp.splitext(osp.basename(path))[0] for path in images]
    return [osp.basename(path).replace('.', '_') if stems.count(stem) > 1 else stem
            for path, stem in zip(images, stems)]


def _dataset_cfg(cfg):
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    return dataset.get('datasets', [dataset])[0] if 'datasets' in dataset else dataset


def vocabulary(model_meta: Optional[dict], cfg, checkpoint: str, config: str) -> Tuple[tuple, tuple, str]:
    """(classes, predicates, where they came from): the checkpoint's metainfo first, then the config."""
    meta = model_meta or {}
    if meta.get('classes') is not None and meta.get('predicates') is not None:
        return tuple(meta['classes']), tuple(meta['predicates']), f'checkpoint {checkpoint}'
    dataset = _dataset_cfg(cfg)
    given = dataset.get('metainfo') or {}
    if given.get('classes') and given.get('predicates'):
        return tuple(given['classes']), tuple(given['predicates']), f'config {config} (metainfo)'
    dicts_file = dataset.get('dicts_file')
    if dicts_file:
        path = dicts_file if osp.isabs(dicts_file) else osp.join(dataset.get('data_root') or '', dicts_file)
        if osp.isfile(path):
            from speaq_mm.datasets.vg_format import read_vg_dicts
            classes, predicates = read_vg_dicts(path)
            return classes, predicates, f'config {config} (dicts_file {path})'
    raise KeyError(
        f'class and predicate names: checkpoint {checkpoint} has no meta.dataset_meta with "classes" and '
        f'"predicates", and config {config} has neither test_dataloader.dataset.metainfo with both nor an '
        'existing dicts_file; add metainfo=dict(classes=[...], predicates=[...]) to the test dataset')


def inference_pipeline(cfg):
    """The config's test pipeline reading an in-memory image and loading no annotations (for
    ``mmdet.apis.inference_detector``, whose own pipeline would load the annotations a photo does not have)."""
    from mmcv.transforms import Compose
    steps = []
    for step in _dataset_cfg(cfg).get('pipeline', []):
        name = str(step['type']).split('.')[-1]
        if name in ANNOTATION_LOADERS:
            continue
        steps.append(dict(type='mmdet.LoadImageFromNDArray') if name.startswith('LoadImageFrom') else step)
    if not steps:
        raise KeyError('the config has no test_dataloader.dataset.pipeline to prepare the images with')
    return Compose(steps)


def triplet_records(sample, classes: Sequence[str], predicates: Sequence[str], topk: int,
                    score_thr: float) -> dict:
    """The ``entities`` and ``triplets`` of the JSON file, numbered as in the drawing."""
    from speaq_mm.evaluation.records import to_numpy
    from speaq_mm.visualization import graph_from_data_sample, select_triplets

    relations = sample.pred_relations
    pairs = to_numpy(relations.pairs).reshape(-1, 2)
    triplet_scores = to_numpy(relations.triplet_scores).reshape(-1)
    keep = select_triplets(pairs, topk, triplet_scores, score_thr)
    graph = graph_from_data_sample(sample, 'pred', topk, score_thr)
    rows = to_numpy(relations.scores)[keep]
    query_ids = to_numpy(relations.query_ids)[keep] if 'query_ids' in relations else np.full(len(keep), -1)
    entities = [dict(id=k, label=int(label), name=classes[label], score=round(float(score), 5),
                     bbox=[round(float(v), 2) for v in box])
                for k, (label, score, box) in enumerate(zip(graph.labels, graph.entity_scores, graph.boxes))]
    triplets = []
    for rank, ((subject, obj), predicate) in enumerate(zip(graph.pairs.tolist(), graph.predicates.tolist())):
        triplets.append(dict(rank=rank, subject=subject, object=obj, predicate=predicate,
                             subject_name=classes[graph.labels[subject]], predicate_name=predicates[predicate],
                             object_name=classes[graph.labels[obj]],
                             score=round(float(graph.triplet_scores[rank]), 6),
                             predicate_score=round(float(rows[rank, predicate]), 5),
                             query_id=int(query_ids[rank])))
    return dict(entities=entities, triplets=triplets)


def load_checked_model(config: str, checkpoint: str, device: str):
    """``mmdet.apis.init_detector`` with the checkpoint checked against the model first: every tensor of the
    model must come from it (``speaq_mm.engine.check_checkpoint_complete``)."""
    import warnings

    from mmdet.apis import init_detector
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    from speaq_mm.engine import check_checkpoint_complete
    from speaq_mm.utils import load_torch_file
    with warnings.catch_warnings():  # init_detector warns that, without a checkpoint, it assumes COCO classes
        warnings.simplefilter('ignore')
        # A palette given here keeps init_detector from building the test dataset (whose files we do not need).
        model = init_detector(config, None, device='cpu', palette='random')
    loaded = load_torch_file(checkpoint, map_location='cpu')
    check_checkpoint_complete(model, loaded, f'checkpoint {checkpoint}')
    _load_checkpoint_to_model(model, loaded)
    model.dataset_meta = {key.lower(): value for key, value in loaded.get('meta', {}).get('dataset_meta', {}).items()}
    return model.to(device).eval()


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', metavar='IMAGE_OR_FOLDER', help='an image or a folder of images')
    parser.add_argument('config', help='the model config')
    parser.add_argument('checkpoint', help='the checkpoint (.pth)')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the drawings and JSON files (not the folder of the images)')
    parser.add_argument('--topk', type=int, default=20, help='triplets drawn and written per image (0: all)')
    parser.add_argument('--score-thr', type=float, default=0.0, help='minimum triplet score')
    parser.add_argument('--device', default=None, help='cuda:0, cpu, ... (default: cuda:0 when available)')
    from speaq_mm.utils import add_trust_argument
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Run the demo; return the summary written to ``summary.json``."""
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    images = list_images(args.inputs)
    from speaq_mm.utils.output_guard import refuse_outputs_among_inputs
    refuse_outputs_among_inputs(args.out_dir, images)
    import torch
    from mmdet.apis import inference_detector
    from mmdet.utils import register_all_modules

    from speaq_mm.utils import trust_files_from_args
    from speaq_mm.utils.atomic_io import atomic_dump
    from speaq_mm.visualization import SGGLocalVisualizer

    trust_files_from_args(args)
    register_all_modules(init_default_scope=True)
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    model = load_checked_model(args.config, args.checkpoint, device)
    classes, predicates, names_from = vocabulary(getattr(model, 'dataset_meta', None), model.cfg,
                                                 args.checkpoint, args.config)
    head = model.bbox_head
    if (len(classes), len(predicates)) != (head.num_entity_classes, head.num_predicates):
        raise ValueError(f'{names_from}: {len(classes)} classes and {len(predicates)} predicates, but the model '
                         f'predicts {head.num_entity_classes} and {head.num_predicates}')
    pipeline = inference_pipeline(model.cfg)
    visualizer = SGGLocalVisualizer(name='image_demo', topk=args.topk, score_thr=args.score_thr)
    visualizer.dataset_meta = dict(classes=classes, predicates=predicates)
    os.makedirs(args.out_dir, exist_ok=True)
    summary = dict(names_from=names_from, checkpoint=args.checkpoint, images=[], skipped=[])
    print(f'class and predicate names from {names_from}; {len(images)} image(s)')
    for path, stem in zip(images, output_stems(images)):
        try:
            image = load_image_rgb(path)
        except ValueError as error:
            if len(images) == 1:
                raise
            print(f'skipped: {error}')
            summary['skipped'].append(dict(image=path, reason=str(error)))
            continue
        sample = inference_detector(model, np.ascontiguousarray(image[..., ::-1]), test_pipeline=pipeline)
        drawing_path = osp.join(args.out_dir, f'{stem}.png')
        visualizer.add_datasample(stem, image, sample, draw_gt=False, out_file=drawing_path)
        record = dict(image=path, width=int(image.shape[1]), height=int(image.shape[0]),
                      **triplet_records(sample, classes, predicates, args.topk, args.score_thr))
        json_path = osp.join(args.out_dir, f'{stem}.json')
        atomic_dump(record, json_path)
        best = record['triplets'][0] if record['triplets'] else None
        print(f'{path}: {image.shape[1]}x{image.shape[0]}, {len(record["triplets"])} triplets' +
              (f', best: {best["subject_name"]} --{best["predicate_name"]}--> {best["object_name"]} '
               f'({best["score"]:.3g})' if best else ''))
        summary['images'].append(dict(image=path, drawing=drawing_path, json=json_path,
                                      triplets=len(record['triplets'])))
    atomic_dump(summary, osp.join(args.out_dir, 'summary.json'))
    print(f'wrote {len(summary["images"])} drawing(s) and JSON file(s) to {args.out_dir}')
    return summary


if __name__ == '__main__':
    main()
