"""Splits of a VG file and their statistics: which h5 rows form train / val / test, and the counts the model's
frequency bias and the metrics' zero-shot triplets are computed from.
"""
import os
import os.path as osp
import weakref
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .vg_format.reading import (
    SPLITS,
    VG_CORRUPTED_IMAGE_IDS,
    VGGraphs,
    concat_ranges,
    load_vg_graphs,
    offsets_from_counts,
)


@dataclass
class SplitSelection:
    """Images of one split: h5 rows, plus a keep mask over their relations when some were filtered."""

    rows: np.ndarray
    rel_keep: Optional[np.ndarray] = None


def select_split(graphs: VGGraphs, split: str, num_val_images: int = 5000, filter_empty_rels: bool = True,
                 filter_non_overlap: bool = False, use_h5_val_split: bool = False) -> SplitSelection:
    """Pick the images of a split with the reference protocol (docs/dataset_format.md, section 2).

    Train/val: images with ``split == 0`` that have boxes (and relations when ``filter_empty_rels``);
    val is the first ``num_val_images`` of them and train the rest, unless ``use_h5_val_split`` reads
    val from the rows with ``split == 1``. Test: ``split == 2``. ``filter_non_overlap`` (train only) keeps
    relations whose two boxes intersect with a positive area and drops images left without one.

    Returns:
        SplitSelection: the selected h5 rows in file order.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    code = {'train': 0, 'val': 1 if use_h5_val_split else 0, 'test': 2}[split]
    mask = (graphs.split == code) & (graphs.num_boxes > 0)
    if filter_empty_rels:
        mask &= graphs.num_rels > 0
    rows = np.flatnonzero(mask)
    if not use_h5_val_split and split != 'test':
        rows = rows[:num_val_images] if split == 'val' else rows[num_val_images:]
    if not (filter_non_overlap and split == 'train'):
        return SplitSelection(rows)
    rel_index = concat_ranges(graphs.rel_ptr[rows], graphs.num_rels[rows])
    rel_image = np.repeat(rows, graphs.num_rels[rows])
    subject = graphs.boxes[graphs.box_ptr[rel_image] + graphs.relations[rel_index, 0]]
    obj = graphs.boxes[graphs.box_ptr[rel_image] + graphs.relations[rel_index, 1]]
    overlap = np.minimum(subject[:, 2:], obj[:, 2:]) - np.maximum(subject[:, :2], obj[:, :2])
    rel_keep = (overlap > 0).all(axis=1)
    image_keep = np.bincount(np.searchsorted(rows, rel_image[rel_keep]), minlength=len(rows)) > 0
    rel_keep = rel_keep[np.repeat(image_keep, graphs.num_rels[rows])]
    return SplitSelection(rows[image_keep], rel_keep)


def _selected_relations(graphs: VGGraphs, selection: SplitSelection) -> Tuple[np.ndarray, np.ndarray]:
    """Relation rows (into ``graphs.relations``) of a selection and the selected image of each."""
    counts = graphs.num_rels[selection.rows]
    index = concat_ranges(graphs.rel_ptr[selection.rows], counts)
    position = np.repeat(np.arange(len(selection.rows)), counts)
    if selection.rel_keep is not None:
        index, position = index[selection.rel_keep], position[selection.rel_keep]
    return index, position


def split_counts(graphs: VGGraphs, selection: SplitSelection) -> Dict[str, int]:
    """Images, objects and relations of a split selection."""
    return dict(images=len(selection.rows), objects=int(graphs.num_boxes[selection.rows].sum()),
                relations=len(_selected_relations(graphs, selection)[0]))


def compute_statistics(graphs: VGGraphs, selection: SplitSelection, num_classes: int, num_predicates: int,
                       source: str = '') -> Dict[str, np.ndarray]:
    """Per-predicate and per-class counts and the triplet set of a split (the train split in practice).

    Returns:
        dict: ``fg_rel_count`` int64 (num_predicates,), ``obj_count`` int64 (num_classes,), ``triplets``
        int64 (T, 3) unique (subject class, object class, predicate) rows, sorted.
    """
    rel_index, position = _selected_relations(graphs, selection)
    if len(rel_index) == 0:
        raise ValueError(f'{source}: the split has no relations, so the predicate statistics (fg_rel_count, '
                         'triplets) cannot be computed; check the split and the filters or set '
                         'with_statistics=False')
    box_first = graphs.box_ptr[selection.rows][position]
    relations = graphs.relations[rel_index]
    box_index = concat_ranges(graphs.box_ptr[selection.rows], graphs.num_boxes[selection.rows])
    obj_count = np.bincount(graphs.labels[box_index], minlength=num_classes).astype(np.int64)
    fg_rel_count = np.bincount(relations[:, 2], minlength=num_predicates).astype(np.int64)
    subject = graphs.labels[box_first + relations[:, 0]]
    obj = graphs.labels[box_first + relations[:, 1]]
    keys = np.sort((subject.astype(np.int64) * num_classes + obj) * num_predicates + relations[:, 2])
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    triplets = np.column_stack([keys // num_predicates // num_classes, keys // num_predicates % num_classes,
                                keys % num_predicates]).astype(np.int64)
    return dict(fg_rel_count=fg_rel_count, obj_count=obj_count, triplets=triplets)


@dataclass
class SplitView:
    """The images of one split inside a :class:`VGGraphs`; what ``VGH5Dataset`` holds.

    Only indices are stored: the boxes stay in the shared whole-file arrays and are rescaled to pixels when a
    record is built, so the train, val and test datasets of one file hold a single copy of the data.
    """

    graphs: VGGraphs
    rows: np.ndarray
    rel_ptr: np.ndarray
    rel_index: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_selection(cls, graphs: VGGraphs, selection: SplitSelection) -> 'SplitView':
        """The view of a split selection."""
        rel_index, position = _selected_relations(graphs, selection)
        return cls(graphs, selection.rows, offsets_from_counts(np.bincount(position, minlength=len(selection.rows))),
                   rel_index)

    def take(self, positions: np.ndarray) -> 'SplitView':
        """A view holding the given images (positions into this view) in the given order."""
        counts = np.diff(self.rel_ptr)[positions]
        return SplitView(self.graphs, self.rows[positions], offsets_from_counts(counts),
                         self.rel_index[concat_ranges(self.rel_ptr[positions], counts)])

    def image(self, position: int) -> Tuple[Union[int, str], int, int, List[List[float]], List[int], np.ndarray]:
        """Image id, width, height, pixel boxes (x1, y1, x2, y2 lists), labels and relations (R, 3) int64."""
        graphs, row = self.graphs, self.rows[position]
        image_id = graphs.image_id[row]
        image_id = image_id.item() if isinstance(image_id, np.generic) else image_id
        width, height = int(graphs.width[row]), int(graphs.height[row])
        first, last = graphs.box_ptr[row], graphs.box_ptr[row + 1]
        # The same double-precision operations in the same order as the reference (box / scale * longer side),
        # so the records match it bit for bit; plain floats are faster than numpy for a dozen boxes.
        scale, longer = graphs.box_scale, max(width, height)
        boxes = [[value / scale * longer for value in box] for box in graphs.boxes[first:last].tolist()]
        relations = graphs.relations[self.rel_index[self.rel_ptr[position]:self.rel_ptr[position + 1]]]
        return image_id, width, height, boxes, graphs.labels[first:last].tolist(), relations.astype(np.int64)

    def relation_scores(self, position: int) -> Optional[np.ndarray]:
        """The ``relationship_scores`` of the relations :meth:`image` returns (float32, same order), or None
        when the file has none."""
        if self.graphs.relation_scores is None:
            return None
        return self.graphs.relation_scores[self.rel_index[self.rel_ptr[position]:self.rel_ptr[position + 1]]]


_SHARED_GRAPHS: 'weakref.WeakValueDictionary' = weakref.WeakValueDictionary()


def _file_identity(path: str) -> Tuple[str, int, int]:
    stat = os.stat(path)
    return osp.realpath(path), stat.st_size, stat.st_mtime_ns


def shared_vg_graphs(h5_path: str, image_data_path: str, num_classes: int, num_predicates: int,
                     box_scale: int = 1024, box_decode: str = 'truncate',
                     skip_image_ids: Sequence[Union[int, str]] = VG_CORRUPTED_IMAGE_IDS) -> VGGraphs:
    """:func:`load_vg_graphs`, loaded once for every dataset of this process that reads the same files.

    Train, val and test of one file then share the arrays (and the file is read once). The entry is keyed by
    path, size and modification time of both files and by the options, so an edited file is read again, and
    it disappears with the last dataset that holds it (nothing is written to disk).
    """
    key = (_file_identity(h5_path), _file_identity(image_data_path), num_classes, num_predicates, box_scale,
           box_decode, tuple(str(image_id) for image_id in skip_image_ids))
    graphs = _SHARED_GRAPHS.get(key)
    if graphs is None:
        graphs = load_vg_graphs(h5_path, image_data_path, num_classes, num_predicates, box_scale, box_decode,
                                skip_image_ids)
        _SHARED_GRAPHS[key] = graphs
    return graphs
