"""A ConcatDataset of scene-graph sources with a sample weight per source, whose train statistics come from the
sources you choose.

The loss reweighting reads ``fg_rel_count`` (and the groupwise queries read the same counts) from the training
dataset's metainfo. mmengine's ``ConcatDataset`` keeps only the first dataset's metainfo and refuses sources
whose statistics differ, so it can neither leave the synthetic counts out on purpose nor add them in; this
subclass makes that an explicit choice (``statistics_sources``).
"""
import numpy as np
from mmdet.registry import DATASETS
from mmengine.dataset import ConcatDataset

from .seeded_draws import fetch_seeded
from .vg_format import STATISTICS_KEYS


def source_names(dataset):
    """The ``source`` name of each sub-dataset of a ConcatDataset (a one-item list for a plain dataset).

    Args:
        dataset: a ConcatDataset of datasets with a ``source`` attribute (``VGH5Dataset``), or one such
            dataset.

    Returns:
        list[str]: one name per sub-dataset, in order.
    """
    parts = getattr(dataset, 'datasets', [dataset])
    missing = [type(part).__name__ for part in parts if not isinstance(getattr(part, 'source', None), str)]
    if missing:
        raise AttributeError(f'dataset(s) {missing} have no "source" name; give every dataset of the mix a '
                             'source (VGH5Dataset(source=...))')
    return [part.source for part in parts]


def combine_statistics(metainfos):
    """Train statistics of several sources as if they were one dataset.

    Counts add up (``fg_rel_count``, ``obj_count``, every number in ``split_counts``) and ``triplets`` is the
    sorted union of the sources' triplet sets.

    Args:
        metainfos (Sequence[dict]): metainfo of each source, each holding every key of
            ``speaq_mm.datasets.vg_format.STATISTICS_KEYS``.

    Returns:
        dict: the combined value of each statistics key.
    """
    unknown = set(STATISTICS_KEYS) - {'fg_rel_count', 'obj_count', 'triplets', 'split_counts'}
    if unknown:
        raise NotImplementedError(f'combine_statistics does not know how to combine {sorted(unknown)}')
    return dict(
        fg_rel_count=np.sum([m['fg_rel_count'] for m in metainfos], axis=0).astype(np.int64),
        obj_count=np.sum([m['obj_count'] for m in metainfos], axis=0).astype(np.int64),
        triplets=np.unique(np.concatenate([m['triplets'] for m in metainfos]), axis=0).astype(np.int64),
        split_counts={split: {key: sum(m['split_counts'][split][key] for m in metainfos) for key in counts}
                      for split, counts in metainfos[0]['split_counts'].items()})


@DATASETS.register_module()
class SGGConcatDataset(ConcatDataset):
    """mmengine's ConcatDataset with per-source sample weights, whose metainfo statistics combine the sources
    named in ``statistics_sources``.

    ``sample_weights`` is the one way to set the ``sample_weight`` of the samples of a source (every loss term of a
    sample is multiplied by it, docs/multi_dataset.md): it is written into that source's dataset, whose records
    carry it to the packed sample's metainfo. Sources it does not name train at 1.0, as a dataset trained on its
    own does.

    The vocabulary (``classes``, ``predicates``) must still match across sources; the statistics keys
    (``speaq_mm.datasets.vg_format.STATISTICS_KEYS``) may differ and are replaced, in ``metainfo``, by
    :func:`combine_statistics` over the chosen sources. A model reads them exactly as it reads a single
    dataset's.

    Args:
        datasets (Sequence[dict | BaseDataset]): the sources, each with a ``source`` name.
        sample_weights (dict[str, float], optional): source name -> sample weight (finite, >= 0), e.g.
            ``dict(real=1.0, synthetic=0.5)``. A name that matches no source is an error listing the sources.
        relation_weights (dict[str, dict], optional): source name -> the map from its h5's relation scores to
            per-relation loss weights (``speaq_mm.datasets.relation_weights``), e.g.
            ``dict(synthetic=dict(power=2.0, floor=0.1))``; each GT relation's weight multiplies every loss
            term of the queries matched to it, on top of the sample weight. Sources it does not name train
            every relation at weight 1.
        statistics_sources (Sequence[str]): source names whose train statistics enter the metainfo.
            Defaults to ``('real',)``: the synthetic set's predicate counts do not change the loss
            reweighting.
        lazy_init (bool): as in mmengine's ConcatDataset.
        ignore_keys (list[str], optional): further metainfo keys allowed to differ between sources.
    """

    def __init__(self, datasets, sample_weights=None, statistics_sources=('real',), lazy_init=False,
                 ignore_keys=None, relation_weights=None):
        if isinstance(statistics_sources, str) or not statistics_sources:
            raise ValueError('SGGConcatDataset: statistics_sources must be a non-empty list of source names, '
                             f'got {statistics_sources!r}')
        self.statistics_sources = tuple(statistics_sources)
        ignore_keys = [ignore_keys] if isinstance(ignore_keys, str) else list(ignore_keys or [])
        super().__init__(datasets, lazy_init=lazy_init, ignore_keys=ignore_keys + list(STATISTICS_KEYS))
        self.sample_weights = dict(sample_weights or {})
        self._apply_sample_weights()
        self.relation_weights = dict(relation_weights or {})
        self._apply_relation_weights()

    def _apply_sample_weights(self):
        """Give every sub-dataset of a source named in ``sample_weights`` that weight (its records read it)."""
        names = source_names(self)
        unknown = sorted(set(self.sample_weights) - set(names))
        if unknown:
            raise ValueError(f'SGGConcatDataset: sample_weights {unknown} match no dataset; the sources are {names}')
        for name, part in zip(names, self.datasets):
            if name not in self.sample_weights:
                continue
            weight = self.sample_weights[name]
            if not isinstance(weight, (int, float)) or not (0 <= weight < float('inf')):
                raise ValueError(f'SGGConcatDataset: sample_weights[{name!r}] must be a finite number >= 0, got '
                                 f'{weight!r}')
            part.sample_weight = float(weight)

    def _apply_relation_weights(self):
        """Give every sub-dataset of a source named in ``relation_weights`` its score-to-weight map."""
        names = source_names(self)
        unknown = sorted(set(self.relation_weights) - set(names))
        if unknown:
            raise ValueError(f'SGGConcatDataset: relation_weights {unknown} match no dataset; the sources are '
                             f'{names}')
        for name, part in zip(names, self.datasets):
            if name in self.relation_weights:
                if not hasattr(part, 'set_relation_weight'):
                    raise TypeError(f'SGGConcatDataset: relation_weights[{name!r}]: {type(part).__name__} has no '
                                    'relation scores (use VGH5Dataset)')
                part.set_relation_weight(self.relation_weights[name])

    def __getitem__(self, idx):
        """The sample, loaded and augmented under the seed of a ``SeededIndex`` (``seeded_draws``)."""
        return fetch_seeded(idx, super().__getitem__)

    def full_init(self):
        """Initialise every source, then set the combined statistics of ``statistics_sources``."""
        if self._fully_initialized:
            return
        super().full_init()
        names = source_names(self)
        unknown = sorted(set(self.statistics_sources) - set(names))
        if unknown:
            raise ValueError(f'SGGConcatDataset: statistics_sources {unknown} match no dataset; the sources '
                             f'are {names}')
        chosen = [(name, part.metainfo) for name, part in zip(names, self.datasets)
                  if name in self.statistics_sources]
        for name, metainfo in chosen:
            missing = [key for key in STATISTICS_KEYS if key not in metainfo]
            if missing:
                raise ValueError(f'SGGConcatDataset: source "{name}" has no {missing} in its metainfo; build '
                                 'it with with_statistics=True or leave it out of statistics_sources')
        self._metainfo.update(combine_statistics([metainfo for _, metainfo in chosen]))
