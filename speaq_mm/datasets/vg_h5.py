"""``VGH5Dataset``: scene graphs in the Visual Genome h5 layout as an mmdet dataset.

Records are kept as flat arrays plus per-image offsets (``vg_splits.SplitView``) and materialised only when
``get_data_info`` asks for one.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.dataset import force_full_init

from ..utils import reject_unknown_kwargs
from .relation_weights import check_relation_weight, relation_weights_from_scores
from .seeded_draws import fetch_seeded
from .vg_format.reading import BOX_DECODES, SPLITS, VG_CORRUPTED_IMAGE_IDS, VG_FILE_NAMES, read_vg_dicts
from .vg_splits import SplitView, compute_statistics, select_split, shared_vg_graphs, split_counts


@DATASETS.register_module()
class VGH5Dataset(BaseDetDataset):
    """Scene graphs in the Visual Genome h5 layout (VG150, or synthetic/custom data in the same format).

    Records follow docs/structures.md: ``img_path``, ``img_id``, ``height``, ``width``, ``instances``
    (``bbox`` x1y1x2y2 in original pixels, ``bbox_label`` 0-based, ``ignore_flag`` 0), ``relations``
    (R, 3) int64 (subject, object, predicate), ``source`` and ``sample_weight``; when the h5 has
    ``relationship_scores``, also ``relation_scores`` (R,) float32, and with a ``relation_weight`` map
    ``relation_weights`` (R,) float32, both aligned with ``relations``. Metainfo holds ``classes``
    and ``predicates`` (from the dicts json) and the train-split statistics (see :data:`STATISTICS_KEYS`).

    Args:
        ann_file (str): the h5 file (``VG-SGG-with-attri.h5``), relative to ``data_root``.
        image_data_file (str): the image-data json, relative to ``data_root``.
        dicts_file (str): the dicts json with ``label_to_idx``/``predicate_to_idx``, relative to
            ``data_root``.
        data_prefix (dict, optional): ``img``: the image folder, relative to ``data_root``
            (default ``VG_100K``).
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        num_val_images (int): val = the first N filtered train images, train = the rest.
        use_h5_val_split (bool): take val from the h5 rows with ``split == 1`` instead (custom files).
        filter_empty_rels (bool): drop images without relations.
        filter_non_overlap (bool): train only: keep relations whose boxes intersect, drop images left
            without relations.
        box_scale (int): frame of the stored boxes (reads ``boxes_<box_scale>``).
        box_decode (str): ``'truncate'`` (reference behaviour, default) or ``'float'``.
        img_suffix (str): image file = ``<image_id><img_suffix>`` inside the image folder.
        skip_image_ids (Sequence): json image ids dropped when the json is longer than the h5.
        with_statistics (bool): compute the train-split statistics into the metainfo.
        source (str): name of the data source copied into every record (e.g. ``'real'``, ``'synthetic'``).
        relation_weight (dict, optional): the map from the h5's ``relationship_scores`` to per-relation loss
            weights (``speaq_mm.datasets.relation_weights``: ``dict()`` identity, ``dict(power=2.0)``,
            ``dict(floor=0.2)``); needs a file with scores. None (default): every relation weighs 1. In a mix,
            ``SGGConcatDataset(relation_weights=...)`` sets it per source.

    Every record also carries the dataset's ``sample_weight``, the loss weight of its samples: 1.0, unless
    ``SGGConcatDataset(sample_weights=...)`` gives the dataset's source another (the one way to set it,
    docs/multi_dataset.md).
    """

    METAINFO = dict(classes=(), predicates=())
    sample_weight = 1.0

    def __init__(self,
                 ann_file: str = VG_FILE_NAMES['ann_file'],
                 image_data_file: str = VG_FILE_NAMES['image_data_file'],
                 dicts_file: str = VG_FILE_NAMES['dicts_file'],
                 data_prefix: Optional[dict] = None,
                 split: str = 'train',
                 num_val_images: int = 5000,
                 use_h5_val_split: bool = False,
                 filter_empty_rels: bool = True,
                 filter_non_overlap: bool = False,
                 box_scale: int = 1024,
                 box_decode: str = 'truncate',
                 img_suffix: str = '.jpg',
                 skip_image_ids: Sequence[Union[int, str]] = VG_CORRUPTED_IMAGE_IDS,
                 with_statistics: bool = True,
                 source: str = 'real',
                 relation_weight: Optional[dict] = None,
                 lazy_init: bool = False,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'VGH5Dataset: split must be one of {SPLITS}, got {split!r}')
        if box_decode not in BOX_DECODES:
            raise ValueError(f'VGH5Dataset: box_decode must be one of {BOX_DECODES}, got {box_decode!r}')
        if not isinstance(num_val_images, int) or num_val_images < 0:
            raise ValueError(f'VGH5Dataset: num_val_images must be an int >= 0, got {num_val_images!r}')
        if 'sample_weight' in kwargs:
            raise TypeError('VGH5Dataset: sample_weight is not a dataset argument; set it per source with '
                            'SGGConcatDataset(sample_weights=dict(<source>=<weight>)) (docs/multi_dataset.md)')
        reject_unknown_kwargs(type(self).__name__, BaseDetDataset, kwargs)
        if kwargs.get('filter_cfg'):
            raise ValueError('VGH5Dataset: filter_cfg is not supported; use filter_empty_rels / '
                             'filter_non_overlap')
        data_prefix = dict(img=VG_FILE_NAMES['img_dir']) if data_prefix is None else data_prefix
        if 'img' not in data_prefix:
            raise ValueError(
                f'VGH5Dataset: data_prefix must name the image folder as "img", got {data_prefix}')
        self.split = split
        self.num_val_images = num_val_images
        self.use_h5_val_split = use_h5_val_split
        self.filter_empty_rels = filter_empty_rels
        self.filter_non_overlap = filter_non_overlap
        self.box_scale = box_scale
        self.box_decode = box_decode
        self.img_suffix = img_suffix
        self.skip_image_ids = tuple(skip_image_ids)
        self.with_statistics = with_statistics
        self.source = str(source)
        self.relation_weight = check_relation_weight(relation_weight, 'VGH5Dataset: relation_weight')
        self._view: Optional[SplitView] = None
        # mmengine joins data_root with ann_file and data_prefix; the two json files follow the same rule.
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, lazy_init=True, **kwargs)
        self.image_data_file = self._under_root(image_data_file)
        self.dicts_file = self._under_root(dicts_file)
        for key, path in (('ann_file', self.ann_file), ('image_data_file', self.image_data_file),
                          ('dicts_file', self.dicts_file)):
            if not osp.isfile(path):
                raise FileNotFoundError(f'VGH5Dataset: {key} "{path}" does not exist (data_root='
                                        f'"{self.data_root}")')
        if not osp.isdir(self.data_prefix['img']):
            raise FileNotFoundError(f'VGH5Dataset: data_prefix.img folder "{self.data_prefix["img"]}" does '
                                    f'not exist (data_root="{self.data_root}")')
        classes, predicates = read_vg_dicts(self.dicts_file)
        for key, names in (('classes', classes), ('predicates', predicates)):
            given = self._metainfo.get(key)
            if given and tuple(given) != names:
                raise ValueError(f'VGH5Dataset: metainfo.{key} differs from the names in {self.dicts_file}; '
                                 f'the dicts json defines the vocabulary, leave metainfo.{key} unset')
        self._metainfo.update(classes=classes, predicates=predicates)
        if not lazy_init:
            self.full_init()

    def _under_root(self, path: str) -> str:
        return osp.join(self.data_root, path) if self.data_root and not osp.isabs(path) else path

    def full_init(self) -> None:
        """Load the h5 and json files, select the split, compute the statistics (once)."""
        if self._fully_initialized:
            return
        num_classes, num_predicates = len(self._metainfo['classes']), len(self._metainfo['predicates'])
        graphs = shared_vg_graphs(self.ann_file, self.image_data_file, num_classes, num_predicates,
                                  box_scale=self.box_scale, box_decode=self.box_decode,
                                  skip_image_ids=self.skip_image_ids)
        selections = {split: select_split(graphs, split, self.num_val_images, self.filter_empty_rels,
                                          self.filter_non_overlap, self.use_h5_val_split) for split in SPLITS}
        train_needed = self.split == 'train' or self.with_statistics
        if train_needed and len(selections['train'].rows) == 0 and not self.use_h5_val_split and len(
                selections['val'].rows) > 0:
            raise ValueError(
                f'VGH5Dataset: num_val_images={self.num_val_images} takes all {len(selections["val"].rows)} usable '
                f'split-0 images of {self.ann_file} for val and leaves none to train on (or to compute the train '
                'statistics from). Set num_val_images below that (0: no val carve-out), or give the file split-1 '
                'rows and use_h5_val_split=True.')
        if len(selections[self.split].rows) == 0:
            raise ValueError(
                f'VGH5Dataset: split "{self.split}" of {self.ann_file} is empty (h5 split codes present: '
                f'{np.unique(graphs.split).tolist()}, num_val_images={self.num_val_images}, '
                f'use_h5_val_split={self.use_h5_val_split}, filter_empty_rels={self.filter_empty_rels}, '
                f'filter_non_overlap={self.filter_non_overlap})')
        if self.with_statistics:
            # Train, val and test datasets of one file share the arrays, so the statistics are computed once.
            options = (self.num_val_images, self.filter_empty_rels, self.filter_non_overlap, self.use_h5_val_split)
            if options not in graphs.statistics:
                statistics = compute_statistics(graphs, selections['train'], num_classes, num_predicates,
                                                source=f'VGH5Dataset: train split of {self.ann_file}')
                statistics['split_counts'] = {split: split_counts(graphs, selection)
                                              for split, selection in selections.items()}
                graphs.statistics[options] = statistics
            self._metainfo.update(copy.deepcopy(graphs.statistics[options]))
        if self.relation_weight is not None and graphs.relation_scores is None:
            raise ValueError(self._no_scores_message())
        self._view = SplitView.from_selection(graphs, selections[self.split])
        if self._indices is not None:
            self._view = self._view.take(self._positions(self._indices))
        self._fully_initialized = True

    def _no_scores_message(self) -> str:
        return (f'VGH5Dataset (source={self.source!r}): relation_weight={self.relation_weight} maps relation scores '
                f'to weights, but {self.ann_file} has no "relationship_scores" dataset; convert the pseudo-labels '
                'with json_to_vg (which stores their scores) or drop the relation weight of this source')

    def set_relation_weight(self, spec: Optional[dict]) -> None:
        """Set the score-to-weight map (see the class docstring); ``SGGConcatDataset`` calls it per source."""
        self.relation_weight = check_relation_weight(spec, f'relation_weights[{self.source!r}]')
        if self.relation_weight is not None and self._fully_initialized and \
                self._view.graphs.relation_scores is None:
            raise ValueError(self._no_scores_message())

    def load_data_list(self) -> List[dict]:
        """Every record of the split as a list (handy for small data; the dataset itself stays compact)."""
        return [self.get_data_info(i) for i in range(len(self))]

    def _positions(self, indices: Union[int, Sequence[int]]) -> np.ndarray:
        count = len(self._view)
        if isinstance(indices, int):
            return np.arange(count)[:indices] if indices >= 0 else np.arange(count)[indices:]
        positions = np.asarray(indices, dtype=np.int64)
        if positions.size and (positions.max() >= count or positions.min() < -count):
            raise IndexError(f'VGH5Dataset: indices must lie in [-{count}, {count}), got {indices}')
        return positions % max(count, 1)

    @force_full_init
    def __len__(self) -> int:
        return len(self._view)

    def __getitem__(self, idx):
        """The sample after the pipeline, under the seed of a ``SeededIndex`` (``seeded_draws``)."""
        return fetch_seeded(idx, super().__getitem__)

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The record of image ``idx`` (see the class docstring), built from the compact arrays."""
        if not -len(self._view) <= idx < len(self._view):
            raise IndexError(f'VGH5Dataset: index {idx} out of range for {len(self._view)} images')
        idx = int(idx) % len(self._view)
        image_id, width, height, boxes, labels, relations = self._view.image(idx)
        instances = [dict(bbox=bbox, bbox_label=label, ignore_flag=0) for bbox, label in zip(boxes, labels)]
        record = dict(img_path=osp.join(self.data_prefix['img'], f'{image_id}{self.img_suffix}'),
                      img_id=image_id, height=height, width=width, instances=instances, relations=relations,
                      source=self.source, sample_weight=self.sample_weight, sample_idx=idx)
        scores = self._view.relation_scores(idx)
        if scores is not None:
            record['relation_scores'] = scores
            if self.relation_weight is not None:
                record['relation_weights'] = relation_weights_from_scores(scores, self.relation_weight)
        return record

    @force_full_init
    def get_subset_(self, indices: Union[int, Sequence[int]]) -> None:
        """Keep only the given images (same semantics as mmengine's ``BaseDataset.get_subset_``)."""
        self._view = self._view.take(self._positions(indices))

    @force_full_init
    def get_subset(self, indices: Union[int, Sequence[int]]) -> 'VGH5Dataset':
        """A copy holding only the given images (same semantics as mmengine's ``BaseDataset.get_subset``)."""
        subset = copy.copy(self)
        subset._metainfo = copy.deepcopy(self._metainfo)
        subset._view = self._view.take(self._positions(indices))
        return subset
