"""``SceneGraphInferencer``: scene graphs of images, in batches, as plain dicts (docs/inference.md).

In the conventions of mmdet's ``DetInferencer``: built from a config and a checkpoint (or a built model), called
on an image path, a folder, a list of paths or numpy arrays. Images go through the config's test pipeline
(without its annotation loading) in an mmengine-style DataLoader with workers, are batched by
``pseudo_collate`` and the model's data preprocessor, and every prediction becomes one dict in the JSON
scene-graph format ``tools/dataset_converters/json_to_vg.py`` reads (:func:`scene_graph_from_sample`)::

    {"file_name": "a/b.jpg", "id": "a_b", "width": 640, "height": 480,
     "objects": [{"id": 0, "name": "man", "label": 3, "bbox": [x1, y1, x2, y2], "score": 0.91}, ...],
     "relations": [{"subject": 0, "object": 1, "predicate": "on", "predicate_label": 2, "score": 0.42,
                    "predicate_score": 0.77, "query_id": 17}, ...]}

Why a batch only holds images of one input size: the model's ResNet turns the zero padding of a smaller image
into non-zero activations at its borders (BatchNorm adds its shift to the padded pixels), so a padded image
gets a slightly different graph than the same image alone. Each loaded batch is therefore split by input size
(:func:`groups_by_input_size`) and the graph of an image never depends on its batch; images of one camera or
dataset mostly share a size, so their batches stay full.
"""
import hashlib
import json
import os
import os.path as osp
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from ..datasets.vg_format import read_vg_dicts
from ..engine import check_checkpoint_complete
from ..evaluation.records import to_numpy
from ..utils import load_torch_file, trust_file
from .image_inputs import (
    DEFAULT_MAX_PIXELS,
    UnreadableImageError,
    as_bgr_array,
    collect_image_paths,
    read_image,
    relative_file_name,
    unique_image_ids,
)

# Annotation loaders of test pipelines; a photo has no annotations.
ANNOTATION_LOADERS = ('SGGLoadAnnotations', 'LoadAnnotations')


@dataclass
class ImageItem:
    """One input: a file (``path``) or an in-memory BGR ``array``, and its ``file_name`` and ``id`` in the output."""

    index: int
    file_name: str
    image_id: str
    path: Optional[str] = None
    array: Optional[np.ndarray] = None


@dataclass
class Prediction:
    """What :meth:`SceneGraphInferencer.predict` yields per image: the data sample with ``pred_instances`` and
    ``pred_relations`` (None when the image was skipped, ``error`` then says why) and, on request, the image."""

    item: ImageItem
    sample: object = None
    error: Optional[UnreadableImageError] = None
    image: Optional[np.ndarray] = None
    width: int = 0
    height: int = 0


# ----------------------------------------------------------------------------------------------------------
# Model, checkpoint, vocabulary, pipeline
# ----------------------------------------------------------------------------------------------------------
def load_complete_checkpoint(model: torch.nn.Module, checkpoint: str) -> dict:
    """Load ``checkpoint`` into ``model`` through the safe loader once it gives every model tensor (a missing one
    would keep its random initial value at test time: :func:`speaq_mm.engine.check_checkpoint_complete` stops
    naming it); return the checkpoint's ``meta``."""
    loaded = load_torch_file(checkpoint, map_location='cpu')
    if not isinstance(loaded, dict):
        raise ValueError(f'checkpoint {checkpoint}: no state_dict')
    check_checkpoint_complete(model, loaded, f'checkpoint {checkpoint}')
    # mmengine's loading (strips a DistributedDataParallel "module." prefix; shape mismatches were refused above).
    _load_checkpoint_to_model(model, loaded)
    return loaded.get('meta') or {}


def test_dataset_cfg(cfg) -> dict:
    """The test dataset of ``cfg`` (the first one of a concatenation)."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    return dataset['datasets'][0] if 'datasets' in dataset else dataset


def vocabulary(dataset_meta: Optional[dict], cfg, checkpoint: str, config: str) -> Tuple[tuple, tuple, str]:
    """(classes, predicates, where they came from): the checkpoint's metainfo first, then the config's test
    dataset (``metainfo`` with ``classes`` and ``predicates``, or its ``dicts_file`` when it exists)."""
    meta = dataset_meta or {}
    if meta.get('classes') is not None and meta.get('predicates') is not None:
        return tuple(meta['classes']), tuple(meta['predicates']), f'checkpoint {checkpoint}'
    dataset = test_dataset_cfg(cfg)
    given = dataset.get('metainfo') or {}
    if given.get('classes') and given.get('predicates'):
        return tuple(given['classes']), tuple(given['predicates']), f'config {config} (metainfo)'
    dicts_file = dataset.get('dicts_file')
    if dicts_file:
        path = dicts_file if osp.isabs(dicts_file) else osp.join(dataset.get('data_root') or '', dicts_file)
        if osp.isfile(path):
            classes, predicates = read_vg_dicts(path)
            return classes, predicates, f'config {config} (dicts_file {path})'
    raise KeyError(
        f'class and predicate names: checkpoint {checkpoint} has no meta.dataset_meta with "classes" and '
        f'"predicates", and config {config} has neither test_dataloader.dataset.metainfo with both nor an '
        'existing dicts_file; add metainfo=dict(classes=[...], predicates=[...]) to the test dataset')


def inference_pipeline(cfg):
    """The config's test pipeline reading an in-memory image (``mmdet.LoadImageFromNDArray``) and loading no
    annotations, and the settings of the load step it replaced (its ``imdecode_backend`` and ``backend_args``
    decode the files, so the pixels are those ``tools/test.py`` reads)."""
    from mmcv.transforms import Compose
    steps, load_step = [], {}
    for step in test_dataset_cfg(cfg).get('pipeline', []):
        name = str(step['type']).split('.')[-1]
        if name in ANNOTATION_LOADERS:
            continue
        if name.startswith('LoadImageFrom'):
            load_step = dict(step)
            steps.append(dict(type='mmdet.LoadImageFromNDArray'))
        else:
            steps.append(step)
    if not steps:
        raise KeyError('the config has no test_dataloader.dataset.pipeline to prepare the images with')
    return Compose(steps), load_step


# ----------------------------------------------------------------------------------------------------------
# Data loading
# ----------------------------------------------------------------------------------------------------------
class InferenceImages(torch.utils.data.Dataset):
    """The inputs as a dataset: item ``i`` is the pipeline's output for image ``i`` (read in the DataLoader's
    worker), or the reason it cannot be used."""

    def __init__(self, items: Sequence[ImageItem], pipeline, decode_backend='cv2', backend_args=None,
                 max_pixels=DEFAULT_MAX_PIXELS, keep_images=False):
        self.items = list(items)
        self.pipeline = pipeline
        self.decode_backend = decode_backend
        self.backend_args = backend_args
        self.max_pixels = max_pixels
        self.keep_images = keep_images

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        item = self.items[index]
        try:
            image = item.array if item.path is None else read_image(
                item.path, self.decode_backend, self.max_pixels, self.backend_args)
        except UnreadableImageError as error:
            return dict(item=item, error=error)
        packed = self.pipeline(dict(img=image, img_id=item.image_id))
        packed['data_samples'].set_metainfo(dict(img_path=item.path or item.file_name))
        return dict(item=item, inputs=packed['inputs'], data_samples=packed['data_samples'],
                    image=image if self.keep_images else None, height=image.shape[0], width=image.shape[1])


def collate_images(batch: List[dict]) -> List[dict]:
    """Keep the loaded images as a list (bad ones included); :func:`groups_by_input_size` batches them."""
    return batch


def groups_by_input_size(loaded: List[dict]) -> List[List[int]]:
    """Positions of the loaded images grouped by input (C, H, W) size, in order of first appearance (module
    docstring: a batch without padding keeps every image's graph independent of its batch)."""
    groups = OrderedDict()
    for position, entry in enumerate(loaded):
        if 'inputs' in entry:
            groups.setdefault(tuple(entry['inputs'].shape), []).append(position)
    return list(groups.values())


# ----------------------------------------------------------------------------------------------------------
# Scene graph dicts
# ----------------------------------------------------------------------------------------------------------
def _exact_floats(values) -> list:
    """float32 values as the shortest decimals that read back as the same float32 (short JSON, no loss)."""
    return [float(str(value)) for value in np.asarray(values, dtype=np.float32).reshape(-1)]


def relation_rows(sample, score_thr: float = 0.0, topk: Optional[int] = 100) -> np.ndarray:
    """Positions of the model's triplets (best triplet score first) that make the scene graph: subject and object
    two different entities with boxes of positive area (``json_to_vg`` drops the others), triplet score
    ``>= score_thr``, at most ``topk`` (None or 0: all)."""
    boxes = to_numpy(sample.pred_instances.bboxes).reshape(-1, 4)
    pairs = to_numpy(sample.pred_relations.pairs).reshape(-1, 2)
    triplet_scores = to_numpy(sample.pred_relations.triplet_scores).reshape(-1)
    positive = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    keep = np.flatnonzero((pairs[:, 0] != pairs[:, 1]) & positive[pairs[:, 0]] & positive[pairs[:, 1]]
                          & (triplet_scores >= score_thr))
    return keep[:topk] if topk else keep


def scene_graph_from_sample(sample, file_name: str, image_id: str, width: int, height: int,
                            classes: Sequence[str], predicates: Sequence[str], score_thr: float = 0.0,
                            topk: Optional[int] = 100) -> dict:
    """One prediction as a scene graph dict (the module docstring; docs/inference.md, "Output").

    Relations are those of :func:`relation_rows`, in the model's order; objects are the entities they use,
    numbered from 0 in order of first use (the best relation's subject is 0, as in the drawings of
    ``SGGLocalVisualizer``); boxes are xyxy in original-image pixels.
    """
    instances, relations = sample.pred_instances, sample.pred_relations
    boxes = to_numpy(instances.bboxes).reshape(-1, 4)
    labels = to_numpy(instances.labels).reshape(-1)
    entity_scores = to_numpy(instances.scores).reshape(-1)
    pairs = to_numpy(relations.pairs).reshape(-1, 2)
    predicate_labels = to_numpy(relations.labels).reshape(-1)
    score_rows = to_numpy(relations.scores)
    query_ids = to_numpy(relations.query_ids).reshape(-1) if 'query_ids' in relations else None
    keep = relation_rows(sample, score_thr, topk)
    used, first = np.unique(pairs[keep].reshape(-1), return_index=True)
    used = used[np.argsort(first)]
    new_id = {int(entity): k for k, entity in enumerate(used)}
    objects = [dict(id=k, name=classes[int(labels[entity])], label=int(labels[entity]),
                    bbox=_exact_floats(boxes[entity]), score=_exact_floats(entity_scores[entity])[0])
               for k, entity in enumerate(used)]
    scores = _exact_floats(to_numpy(relations.triplet_scores).reshape(-1)[keep])
    predicate_scores = _exact_floats(score_rows[keep, predicate_labels[keep]]) if len(keep) else []
    graph_relations = []
    for position, row in enumerate(keep):
        predicate = int(predicate_labels[row])
        relation = dict(subject=new_id[int(pairs[row, 0])], object=new_id[int(pairs[row, 1])],
                        predicate=predicates[predicate], predicate_label=predicate, score=scores[position],
                        predicate_score=predicate_scores[position])
        if query_ids is not None:
            relation['query_id'] = int(query_ids[row])
        graph_relations.append(relation)
    return dict(file_name=file_name, id=image_id, width=int(width), height=int(height), objects=objects,
                relations=graph_relations)


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file (identifies the checkpoint an output was made with)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# The inferencer
# ----------------------------------------------------------------------------------------------------------
class SceneGraphInferencer:
    """Scene graphs of images with a trained scene graph model.

    Args:
        config (str | mmengine.Config): the model config (its ``model`` and test pipeline are used).
        checkpoint (str, optional): the checkpoint; loaded with the safe loader, and every tensor of the model
            must come from it. Without one (and without ``model``) the model keeps random weights (for speed
            measurements), with a warning.
        device (str): ``cpu``, ``cuda:0``, ...
        model (torch.nn.Module, optional): an already built (and loaded) model to use instead.
        trust_pickle (Sequence[str]): files to unpickle without restrictions (``--trust-pickle``).
        max_pixels (int): images with more pixels are skipped as ``too large``.

    Attributes:
        classes, predicates (tuple[str]): the vocabularies (checkpoint metainfo first, else the config).
        names_from (str): where they came from.
        last_skipped (list[dict]): the inputs the last call skipped, with ``file_name`` and ``reason``.
    """

    def __init__(self, config, checkpoint: Optional[str] = None, device: str = 'cpu', model=None,
                 trust_pickle: Sequence[str] = (), max_pixels: int = DEFAULT_MAX_PIXELS):
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        import speaq_mm  # noqa: F401  (registers the model parts and installs the safe checkpoint loader)

        for path in trust_pickle:
            trust_file(path)
        self.config_name = config if isinstance(config, str) else (getattr(config, 'filename', None) or '<Config>')
        if isinstance(config, str) and not osp.isfile(config):
            raise FileNotFoundError(f'config file {config} does not exist')
        self.cfg = Config.fromfile(config) if isinstance(config, str) else config
        init_default_scope(self.cfg.get('default_scope', 'mmdet'))
        self.checkpoint = checkpoint
        dataset_meta = None
        if model is None:
            from mmdet.registry import MODELS
            model = MODELS.build(self.cfg.model)
            if checkpoint is None:
                warnings.warn('SceneGraphInferencer: no checkpoint, the model has random weights', stacklevel=2)
            else:
                if not osp.isfile(checkpoint):
                    raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
                meta = load_complete_checkpoint(model, checkpoint)
                dataset_meta = {key.lower(): value for key, value in (meta.get('dataset_meta') or {}).items()}
            model.cfg = self.cfg
        else:
            dataset_meta = getattr(model, 'dataset_meta', None)
        self.model = model.to(device).eval()
        self.device = device
        self.classes, self.predicates, self.names_from = vocabulary(dataset_meta, self.cfg, checkpoint or '(none)',
                                                                    self.config_name)
        self.model.dataset_meta = dict(classes=self.classes, predicates=self.predicates)
        head = getattr(self.model, 'bbox_head', None)
        expected = (getattr(head, 'num_entity_classes', None), getattr(head, 'num_predicates', None))
        if None not in expected and (len(self.classes), len(self.predicates)) != expected:
            raise ValueError(f'{self.names_from}: {len(self.classes)} classes and {len(self.predicates)} predicates, '
                             f'but the model predicts {expected[0]} and {expected[1]}')
        self.pipeline, load_step = inference_pipeline(self.cfg)
        self.decode_backend = load_step.get('imdecode_backend', 'cv2')
        self.backend_args = load_step.get('backend_args')
        self.max_pixels = max_pixels
        self.last_skipped: List[dict] = []
        self.visualizer = None

    def model_identity(self) -> dict:
        """What decides the graphs besides the images: the checkpoint's hash and the model and test pipeline
        config (the extraction tool refuses to append to an output made with another)."""
        pipeline = [step for step in test_dataset_cfg(self.cfg).get('pipeline', [])]
        described = json.dumps(dict(model=self.cfg.model, pipeline=pipeline), sort_keys=True, default=str)
        return dict(checkpoint=self.checkpoint, config=self.config_name,
                    checkpoint_sha256=file_sha256(self.checkpoint) if self.checkpoint else None,
                    model_sha256=hashlib.sha256(described.encode()).hexdigest())

    def prepare_inputs(self, inputs, recursive: bool = False) -> List[ImageItem]:
        """The images of ``inputs`` (an image path, a folder, a list file, a list of paths, an array or a list
        of arrays) as :class:`ImageItem` with their output ``file_name`` and ``id``.

        File names are relative to the folder (or the list file's folder, or each image's own folder for a
        list of paths); arrays are named ``array_<i>``.
        """
        if isinstance(inputs, (str, np.ndarray)) or not isinstance(inputs, Sequence):
            inputs = [inputs]
        entries = []  # (path, array, file_name)
        for position, source in enumerate(inputs):
            if isinstance(source, np.ndarray):
                entries.append((None, as_bgr_array(source, f'input {position}'), f'array_{position}'))
            elif not osp.exists(source):
                raise FileNotFoundError(f'{source}: no such image, folder or list file')
            elif osp.isdir(source) or str(source).lower().endswith(('.txt', '.lst')):
                root, paths = collect_image_paths(source, recursive)
                entries += [(path, None, relative_file_name(path, root)) for path in paths]
            else:
                entries.append((source, None, osp.basename(source) if len(inputs) == 1 else source))
        ids = unique_image_ids([file_name for _, _, file_name in entries])
        return [ImageItem(index=k, file_name=file_name, image_id=image_id, path=path, array=array)
                for k, ((path, array, file_name), image_id) in enumerate(zip(entries, ids))]

    def dataloader(self, items: Sequence[ImageItem], batch_size: int = 1, num_workers: int = 0, sampler=None,
                   keep_images: bool = False):
        """A DataLoader over ``items`` yielding lists of loaded images (``sampler``: e.g. mmengine's
        ``DefaultSampler`` to split them over ranks; default: all of them in order)."""
        from torch.utils.data import DataLoader
        dataset = InferenceImages(items, self.pipeline, self.decode_backend, self.backend_args, self.max_pixels,
                                  keep_images)
        return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, sampler=sampler,
                          shuffle=False, collate_fn=collate_images, persistent_workers=False)

    @torch.no_grad()
    def predict(self, items: Sequence[ImageItem], batch_size: int = 1, num_workers: int = 0, sampler=None,
                keep_images: bool = False) -> Iterator[Prediction]:
        """Yield a :class:`Prediction` per image, in the loader's order."""
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        from mmengine.dataset import pseudo_collate
        for loaded in self.dataloader(items, batch_size, num_workers, sampler, keep_images):
            samples = [None] * len(loaded)
            for positions in groups_by_input_size(loaded):
                batch = pseudo_collate([dict(inputs=loaded[p]['inputs'], data_samples=loaded[p]['data_samples'])
                                        for p in positions])
                for position, sample in zip(positions, self.model.test_step(batch)):
                    samples[position] = sample
            for entry, sample in zip(loaded, samples):
                yield Prediction(item=entry['item'], sample=sample, error=entry.get('error'),
                                 image=entry.get('image'), width=entry.get('width', 0),
                                 height=entry.get('height', 0))

    def to_scene_graph(self, prediction: Prediction, score_thr: float = 0.0, topk: Optional[int] = 100) -> dict:
        """The scene graph dict of one prediction (:func:`scene_graph_from_sample`)."""
        item = prediction.item
        return scene_graph_from_sample(prediction.sample, item.file_name, item.image_id, prediction.width,
                                       prediction.height, self.classes, self.predicates, score_thr, topk)

    def draw(self, prediction: Prediction, out_file: str, score_thr: float = 0.0, topk: Optional[int] = 100) -> None:
        """Draw the scene graph of ``prediction`` (made with ``keep_images=True``) to ``out_file`` with the
        registered ``SGGLocalVisualizer``: exactly the relations :meth:`to_scene_graph` writes, numbered as its
        objects."""
        if prediction.image is None:
            raise ValueError('draw needs the image: predict(..., keep_images=True)')
        if self.visualizer is None:
            from mmdet.registry import VISUALIZERS
            self.visualizer = VISUALIZERS.build(dict(type='SGGLocalVisualizer', topk=0,
                                                     name=f'scene_graph_inferencer_{id(self)}'))
            self.visualizer.dataset_meta = dict(classes=self.classes, predicates=self.predicates)
        sample = prediction.sample.clone()
        sample.pred_relations = sample.pred_relations[relation_rows(sample, score_thr, topk)]
        self.visualizer.add_datasample(prediction.item.image_id, prediction.image[..., ::-1], sample,
                                       draw_gt=False, out_file=out_file)

    def __call__(self, inputs, batch_size: int = 1, score_thr: float = 0.0, topk: Optional[int] = 100,
                 num_workers: int = 0, on_unreadable: str = 'skip', progress: bool = False,
                 draw_dir: Optional[str] = None) -> List[dict]:
        """Scene graphs of ``inputs`` (see :meth:`prepare_inputs`), one dict per image in input order.

        Args:
            batch_size (int): images per loaded batch (split by input size, module docstring).
            score_thr (float): minimum triplet score of a relation.
            topk (int | None): at most this many relations per image (None or 0: all).
            num_workers (int): DataLoader worker processes reading and preparing images.
            on_unreadable (str): ``'skip'`` leaves an unreadable image out of the result with a warning (listed
                in :attr:`last_skipped`); ``'error'`` raises :class:`UnreadableImageError`.
            progress (bool): show an mmengine progress bar.
            draw_dir (str, optional): also draw every graph to ``<draw_dir>/<id>.png`` (:meth:`draw`).
        """
        if on_unreadable not in ('skip', 'error'):
            raise ValueError(f"on_unreadable must be 'skip' or 'error', got {on_unreadable!r}")
        items = self.prepare_inputs(inputs)
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(len(items))
        graphs, self.last_skipped = [], []
        if draw_dir is not None:
            os.makedirs(draw_dir, exist_ok=True)
        for prediction in self.predict(items, batch_size, num_workers, keep_images=draw_dir is not None):
            if bar is not None:
                bar.update()
            if prediction.error is not None:
                if on_unreadable == 'error':
                    raise prediction.error
                warnings.warn(f'skipped {prediction.error}', stacklevel=2)
                self.last_skipped.append(dict(file_name=prediction.item.file_name,
                                              reason=prediction.error.reason, detail=prediction.error.detail))
                continue
            graphs.append(self.to_scene_graph(prediction, score_thr, topk))
            if draw_dir is not None:
                self.draw(prediction, osp.join(draw_dir, f'{prediction.item.image_id}.png'), score_thr, topk)
        return graphs

