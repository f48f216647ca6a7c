"""Draw scene graphs: the image with labelled entity boxes, and beside it the graph of the triplets.

``SGGLocalVisualizer`` extends mmdet's ``DetLocalVisualizer`` (its vis backends, ``dataset_meta`` and
``add_datasample`` call convention), so mmdet's ``DetVisualizationHook`` drives it during ``tools/test.py
--show-dir`` and validation, and ``tools/demo/image_demo.py`` calls it directly. mmdet's own drawing colours
boxes by class and labels them with the class only; a scene graph needs the same colour and number on a box
and on its graph node, so that two "circle" entities can be told apart in the graph, hence the drawing here.

A drawing is a grid of panels separated by gutters of :data:`GUTTER_COLOUR`: one row per drawn graph (ground
truth above the prediction when both are drawn), each row the image panel then the graph panel.
"""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from matplotlib import colormaps
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer

from speaq_mm.evaluation.records import to_numpy

GUTTER_COLOUR = (40, 40, 40)
GUTTER_WIDTH = 6
GRAPH_BACKGROUND = (250, 250, 250)


@dataclass
class SceneGraphDrawing:
    """One graph to draw; entity indices are local to this graph (only entities used by a triplet).

    Attributes:
        boxes (np.ndarray): (N, 4) xyxy in the pixels of the image it is drawn on.
        labels (np.ndarray): (N,) 0-based classes.
        entity_scores (np.ndarray | None): (N,) detection scores (None for ground truth).
        pairs (np.ndarray): (R, 2) subject/object indices into ``boxes``.
        predicates (np.ndarray): (R,) 0-based predicates.
        triplet_scores (np.ndarray | None): (R,) triplet scores (None for ground truth).
        title (str): the text above the graph.
    """

    boxes: np.ndarray
    labels: np.ndarray
    entity_scores: Optional[np.ndarray]
    pairs: np.ndarray
    predicates: np.ndarray
    triplet_scores: Optional[np.ndarray]
    title: str


def select_triplets(pairs: np.ndarray, topk: int, triplet_scores: Optional[np.ndarray] = None,
                    score_thr: float = 0.0) -> np.ndarray:
    """Positions of the triplets to draw: those scoring at least ``score_thr``, the first ``topk`` of them.

    Triplets keep their given order (the model sorts them by triplet score, docs/structures.md).

    Args:
        pairs (np.ndarray): (R, 2) subject/object indices.
        topk (int): at most this many triplets (0 or less: no limit).
        triplet_scores (np.ndarray, optional): (R,) scores; without them only ``topk`` applies.
        score_thr (float): minimum triplet score.

    Returns:
        np.ndarray: int64 positions into the R triplets.
    """
    keep = np.arange(len(pairs))
    if triplet_scores is not None:
        keep = keep[np.asarray(triplet_scores)[keep] >= score_thr]
    return keep[:topk] if topk > 0 else keep


def compact_graph(boxes: np.ndarray, labels: np.ndarray, entity_scores: Optional[np.ndarray],
                  pairs: np.ndarray, predicates: np.ndarray, triplet_scores: Optional[np.ndarray],
                  keep: np.ndarray, title: str) -> SceneGraphDrawing:
    """The drawing of the triplets at ``keep``, holding only the entities they use (renumbered 0..N-1 in
    order of first use, so the best triplet's subject is entity 0)."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)[keep]
    used, first = np.unique(pairs.reshape(-1), return_index=True)
    used = used[np.argsort(first)]
    local = np.full(len(boxes), -1, np.int64)
    local[used] = np.arange(len(used))
    return SceneGraphDrawing(
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4)[used], labels=np.asarray(labels, np.int64)[used],
        entity_scores=None if entity_scores is None else np.asarray(entity_scores, np.float64)[used],
        pairs=local[pairs], predicates=np.asarray(predicates, np.int64)[keep],
        triplet_scores=None if triplet_scores is None else np.asarray(triplet_scores, np.float64)[keep],
        title=title)


def graph_from_data_sample(data_sample, kind: str, topk: int, score_thr: float = 0.0) -> Optional[SceneGraphDrawing]:
    """The ground-truth (``kind='gt'``) or predicted (``'pred'``) graph of a ``DetDataSample`` (fields of
    docs/structures.md), or None when the sample has no such graph."""
    if kind == 'gt':
        if 'gt_instances' not in data_sample or 'gt_relations' not in data_sample:
            return None
        instances, relations = data_sample.gt_instances, data_sample.gt_relations
        pairs, predicates = to_numpy(relations.pairs).reshape(-1, 2), to_numpy(relations.labels).reshape(-1)
        keep = select_triplets(pairs, topk)
        title = f'ground truth: {len(keep)} of {len(pairs)} relations' if len(keep) < len(pairs) else \
            f'ground truth: {len(pairs)} relations'
        return compact_graph(to_numpy(instances.bboxes), to_numpy(instances.labels), None, pairs, predicates,
                             None, keep, title)
    if kind != 'pred':
        raise ValueError(f"kind must be 'gt' or 'pred', got {kind!r}")
    if 'pred_instances' not in data_sample or 'pred_relations' not in data_sample:
        return None
    instances, relations = data_sample.pred_instances, data_sample.pred_relations
    pairs = to_numpy(relations.pairs).reshape(-1, 2)
    triplet_scores = to_numpy(relations.triplet_scores).reshape(-1) if 'triplet_scores' in relations else None
    keep = select_triplets(pairs, topk, triplet_scores, score_thr)
    title = f'prediction: top {len(keep)} of {len(pairs)} triplets'
    if score_thr > 0:
        title += f' (score >= {score_thr:g})'
    return compact_graph(to_numpy(instances.bboxes), to_numpy(instances.labels), to_numpy(instances.scores),
                         pairs, to_numpy(relations.labels).reshape(-1), triplet_scores, keep, title)


def circle_layout(centres: np.ndarray, middle: np.ndarray, radius: float) -> np.ndarray:
    """Node positions evenly spaced on a circle, in the angular order of the entities' box centres around
    their mean, so the graph keeps the rough arrangement of the image without overlapping nodes."""
    count = len(centres)
    if count == 0:
        return np.zeros((0, 2))
    if count == 1:
        return middle[None].astype(np.float64)
    offsets = centres - centres.mean(axis=0)
    angles = np.arctan2(offsets[:, 1], offsets[:, 0])
    order = np.argsort(angles, kind='stable')
    start = angles[order[0]] if np.abs(offsets).max() > 1e-6 else np.pi
    slots = start + 2 * np.pi * np.arange(count) / count
    positions = np.empty((count, 2))
    positions[order] = middle + radius * np.column_stack([np.cos(slots), np.sin(slots)])
    return positions


def label_positions(boxes: np.ndarray, lengths: Sequence[int], font_pixels: float, width: int) -> np.ndarray:
    """Bottom-left corners of box labels: on the box's top edge, moved down a line at a time while they
    would cover an earlier label (boxes of one object often share a corner), and kept inside the panel.

    Args:
        boxes (np.ndarray): (N, 4) boxes in panel pixels.
        lengths (Sequence[int]): characters of each label.
        font_pixels (float): font size in pixels.
        width (int): panel width.
    """
    line = 1.5 * font_pixels
    placed, positions = [], []
    for box, length in zip(boxes, lengths):
        text_width = 0.62 * font_pixels * length
        x = float(min(box[0], max(width - text_width, 0)))
        y = float(max(box[1], line))
        for _ in range(len(placed) + 1):
            if not any(abs(y - py) < line and x < px + pw and px < x + text_width for px, py, pw in placed):
                break
            y += line
        placed.append((x, y, text_width))
        positions.append((x, y))
    return np.array(positions, np.float64).reshape(-1, 2)


def node_label_layout(nodes: np.ndarray, middle: np.ndarray, node_radius: float, names: Sequence[str],
                      font_pixels: float, width: int) -> Tuple[np.ndarray, List[str], List[str]]:
    """Where the class names of the graph nodes go: outside the ring, away from the centre, or centred under
    (over) a node on the left or right whose name would not fit between it and the panel border.

    Returns:
        tuple: positions (N, 2), horizontal and vertical alignments.
    """
    outward = nodes - middle
    norms = np.linalg.norm(outward, axis=1, keepdims=True)
    outward = np.where(norms > 1e-6, outward / np.maximum(norms, 1e-6), np.array([0.0, 1.0]))
    positions = nodes + outward * (node_radius + 0.4 * font_pixels)
    horizontal, vertical = [], []
    for k, (direction, name) in enumerate(zip(outward, names)):
        text_width = 0.6 * font_pixels * len(name)
        side = 'left' if direction[0] > 0.35 else 'right' if direction[0] < -0.35 else 'center'
        fits = (side == 'left' and positions[k, 0] + text_width < width - 2) or \
               (side == 'right' and positions[k, 0] - text_width > 2) or side == 'center'
        if not fits:
            side = 'center'
            positions[k] = nodes[k] + np.array([0.0, (node_radius + 0.2 * font_pixels) * (1 if direction[1] >= 0
                                                                                           else -1)])
        if side == 'center':
            positions[k, 0] = np.clip(positions[k, 0], text_width / 2 + 2, width - text_width / 2 - 2)
        horizontal.append(side)
        vertical.append('top' if positions[k, 1] > nodes[k, 1] + 1e-6 else
                        'bottom' if positions[k, 1] < nodes[k, 1] - 1e-6 else 'center')
    return positions, horizontal, vertical


@VISUALIZERS.register_module()
class SGGLocalVisualizer(DetLocalVisualizer):
    """Scene graph visualizer: every drawn graph is a row of two panels, the image with its entity boxes
    (numbered ``k class score``) and the graph (nodes = entities with the same number and colour, arrows =
    predicates from subject to object).

    Args:
        name, image, vis_backends, save_dir: as mmengine's ``Visualizer``.
        topk (int): triplets drawn per graph (the first ones; 0 draws all). Ground truth is cut the same way.
        score_thr (float): minimum triplet score of a drawn prediction, used when ``add_datasample`` gets no
            ``pred_score_thr``.
        row_height (tuple[int, int]): the image is scaled so its height lies in this range (pixels); small
            images are enlarged so labels stay readable.
        max_image_width (int): the image panel is at most this wide (very wide images are scaled down and
            centred vertically in the row).
        min_graph_width (int): the graph panel is square, at least this wide.
        line_width (float): box and arrow line width in pixels.

    ``dataset_meta`` must hold ``classes`` and ``predicates`` (the Runner sets the test dataset's metainfo;
    the demo sets the checkpoint's).
    """

    def __init__(self, name: str = 'visualizer', image: Optional[np.ndarray] = None, vis_backends=None,
                 save_dir: Optional[str] = None, topk: int = 20, score_thr: float = 0.0,
                 row_height: Tuple[int, int] = (400, 720), max_image_width: int = 1200,
                 min_graph_width: int = 400, line_width: float = 2.0) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir,
                         line_width=line_width)
        if not 0 < row_height[0] <= row_height[1]:
            raise ValueError(f'SGGLocalVisualizer: row_height must be (low, high) with 0 < low <= high, '
                             f'got {row_height}')
        self.topk = topk
        self.score_thr = score_thr
        self.row_height = tuple(row_height)
        self.max_image_width = max_image_width
        self.min_graph_width = min_graph_width
        # Distinct colours for 25 entities (tab10, then Dark2 and Set1); numbers tell the rest apart.
        self.palette = [tuple(int(255 * c) for c in colormaps[name](i)[:3])
                        for name, count in (('tab10', 10), ('Dark2', 8), ('Set1', 7)) for i in range(count)]

    # ------------------------------------------------------------------------------------------------------
    # Names
    # ------------------------------------------------------------------------------------------------------
    def _names(self, key: str) -> Sequence[str]:
        meta = self.dataset_meta or {}
        names = meta.get(key)
        if names is None or len(names) == 0:
            raise KeyError(f'SGGLocalVisualizer: dataset_meta has no "{key}"; set visualizer.dataset_meta '
                           '(the Runner copies the test dataset metainfo, the demo the checkpoint\'s)')
        return names

    @staticmethod
    def _name(names: Sequence[str], index: int) -> str:
        return names[index] if 0 <= index < len(names) else f'#{index}'

    # ------------------------------------------------------------------------------------------------------
    # Geometry
    # ------------------------------------------------------------------------------------------------------
    def display_scale(self, height: int, width: int) -> float:
        """Scale factor from image pixels to the image panel."""
        low, high = self.row_height
        scale = min(max(height, low), high) / height
        return min(scale, self.max_image_width / width)

    def _font(self, row_height: int) -> float:
        """Text size in points for a row of this height."""
        return float(np.clip(row_height / 40, 9, 15))

    # ------------------------------------------------------------------------------------------------------
    # Panels
    # ------------------------------------------------------------------------------------------------------
    def draw_image_panel(self, image: np.ndarray, graph: SceneGraphDrawing, row_height: int,
                         scale: float) -> np.ndarray:
        """The image scaled by ``scale`` (and centred in a row of ``row_height``) with the graph's boxes."""
        classes = self._names('classes')
        resized = mmcv.imresize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] *
                                                                                             scale))))
        panel = np.empty((row_height, resized.shape[1], 3), np.uint8)
        panel[:] = GRAPH_BACKGROUND
        top = (row_height - resized.shape[0]) // 2
        panel[top:top + resized.shape[0]] = resized
        self.set_image(panel)
        if len(graph.boxes) == 0:
            return self.get_image()
        boxes = graph.boxes * scale + np.array([0, top, 0, top])
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, panel.shape[1] - 1)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, panel.shape[0] - 1)
        colours = [self.palette[k % len(self.palette)] for k in range(len(boxes))]
        self.draw_bboxes(boxes, edge_colors=colours, alpha=0.9, line_widths=self.line_width)
        texts = []
        for k, label in enumerate(graph.labels):
            text = f'{k} {self._name(classes, int(label))}'
            if graph.entity_scores is not None:
                text += f' {graph.entity_scores[k]:.2f}'
            texts.append(text)
        font = self._font(row_height)
        positions = label_positions(boxes, [len(text) for text in texts], font * self.dpi / 72, panel.shape[1])
        self.draw_texts(texts, positions, font_sizes=font, colors='white', vertical_alignments='bottom',
                        bboxes=[dict(facecolor=np.array(c) / 255, alpha=0.85, pad=0.6, edgecolor='none')
                                for c in colours])
        return self.get_image()

    def draw_graph_panel(self, graph: SceneGraphDrawing, height: int, width: int) -> np.ndarray:
        """The graph: numbered entity nodes (class name below) on a circle, one arrow per subject -> object
        pair labelled with its predicates."""
        classes, predicates = self._names('classes'), self._names('predicates')
        panel = np.empty((height, width, 3), np.uint8)
        panel[:] = GRAPH_BACKGROUND
        self.set_image(panel)
        font = self._font(height)
        title_height = 2.4 * font
        self.draw_texts(graph.title, np.array([8.0, 6.0]), font_sizes=font, colors=(30, 30, 30))
        count = len(graph.labels)
        if count == 0:
            self.draw_texts('no triplets to draw', np.array([width / 2, height / 2]), font_sizes=font,
                            colors=(120, 120, 120), horizontal_alignments='center',
                            vertical_alignments='center')
            return self.get_image()
        middle = np.array([width / 2, title_height + (height - title_height) / 2])
        ring = 0.37 * min(width, height - title_height)
        spacing = 2 * ring * np.sin(np.pi / count) if count > 1 else ring
        node_radius = float(np.clip(0.3 * spacing, 7, 0.9 * font * 2))
        centres = (graph.boxes[:, :2] + graph.boxes[:, 2:]) / 2
        nodes = circle_layout(centres, middle, ring)
        colours = [self.palette[k % len(self.palette)] for k in range(count)]
        self._draw_edges(graph, nodes, node_radius, colours, predicates, font)
        self.draw_circles(nodes, np.full(count, node_radius), edge_colors=colours, face_colors=colours,
                          alpha=1.0, line_widths=1)
        self.draw_texts([str(k) for k in range(count)], nodes, font_sizes=font * 0.9, colors='white',
                        horizontal_alignments='center', vertical_alignments='center')
        names = [self._name(classes, int(label)) for label in graph.labels]
        positions, horizontal, vertical = node_label_layout(nodes, middle, node_radius, names,
                                                            font * self.dpi / 72, width)
        self.draw_texts(names, positions, font_sizes=font * 0.9, colors=(30, 30, 30),
                        horizontal_alignments=horizontal, vertical_alignments=vertical)
        return self.get_image()

    def _draw_edges(self, graph: SceneGraphDrawing, nodes: np.ndarray, node_radius: float,
                    colours: List[tuple], predicates: Sequence[str], font: float) -> None:
        """One arrow (in the subject's colour) per directed pair, labelled with the pair's predicates; the two
        directions of a pair run side by side."""
        labels = {}
        for (subject, obj), predicate in zip(graph.pairs.tolist(), graph.predicates.tolist()):
            names = labels.setdefault((subject, obj), [])
            name = self._name(predicates, predicate)
            if name not in names:
                names.append(name)
        shafts, heads, arrow_colours, texts, text_positions, text_colours = [], [], [], [], [], []
        head = max(6.0, 0.45 * node_radius)
        for (subject, obj), names in labels.items():
            vector = nodes[obj] - nodes[subject]
            length = np.linalg.norm(vector)
            text_colours.append(colours[subject])
            if subject == obj or length < 2 * node_radius + head:
                # A self-pair (the post-processing keeps them, as the reference does) or touching nodes.
                texts.append(f'{subject} -> {obj}: ' + ', '.join(names))
                text_positions.append(nodes[subject] + np.array([0.0, -node_radius - font]))
                continue
            direction = vector / length
            normal = np.array([-direction[1], direction[0]])
            shift = normal * (0.45 * node_radius if (obj, subject) in labels else 0.0)
            start = nodes[subject] + direction * node_radius + shift
            tip = nodes[obj] - direction * (node_radius + 1) + shift
            shafts.append(np.stack([start, tip - direction * head * 0.8]))
            heads.append(np.stack([tip, tip - direction * head + normal * head * 0.45,
                                   tip - direction * head - normal * head * 0.45]))
            arrow_colours.append(colours[subject])
            texts.append(', '.join(names))
            # 40 % along from the subject, so the labels of a pair's two directions do not overlap.
            text_positions.append(start + 0.4 * (tip - start) + shift)
        if shafts:
            shafts = np.array(shafts)
            self.draw_lines(shafts[:, :, 0], shafts[:, :, 1], colors=arrow_colours, line_widths=self.line_width)
            self.draw_polygons(heads, edge_colors=arrow_colours, face_colors=arrow_colours, alpha=1.0,
                               line_widths=1)
        self.draw_texts(texts, np.array(text_positions), font_sizes=font * 0.8, colors=(20, 20, 20),
                        horizontal_alignments='center', vertical_alignments='center',
                        bboxes=[dict(facecolor='white', alpha=0.85, pad=0.4, edgecolor=np.array(c) / 255)
                                for c in text_colours])

    def draw_scene_graphs(self, image: np.ndarray, graphs: Sequence[SceneGraphDrawing]) -> np.ndarray:
        """The full drawing: one row (image panel, graph panel) per graph, separated by gutters.

        Args:
            image (np.ndarray): (H, W, 3) RGB uint8; the graphs' boxes are in its pixels.
            graphs (Sequence[SceneGraphDrawing]): one per row.

        Returns:
            np.ndarray: the RGB drawing.
        """
        image = np.ascontiguousarray(image.clip(0, 255).astype(np.uint8))
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        scale = self.display_scale(*image.shape[:2])
        row_height = max(round(image.shape[0] * scale), self.row_height[0])
        graph_width = max(row_height, self.min_graph_width)
        rows = []
        for graph in graphs:
            image_panel = self.draw_image_panel(image, graph, row_height, scale)
            graph_panel = self.draw_graph_panel(graph, row_height, graph_width)
            gutter = np.empty((row_height, GUTTER_WIDTH, 3), np.uint8)
            gutter[:] = GUTTER_COLOUR
            rows.append(np.concatenate([image_panel, gutter, graph_panel], axis=1))
        if not rows:
            return image
        separated = [rows[0]]
        for row in rows[1:]:
            gutter = np.empty((GUTTER_WIDTH, row.shape[1], 3), np.uint8)
            gutter[:] = GUTTER_COLOUR
            separated.extend([gutter, row])
        return np.concatenate(separated, axis=0)

    def add_datasample(self, name: str, image: np.ndarray, data_sample=None, draw_gt: bool = True,
                       draw_pred: bool = True, show: bool = False, wait_time: float = 0,
                       out_file: Optional[str] = None, pred_score_thr: Optional[float] = None, step: int = 0,
                       topk: Optional[int] = None) -> np.ndarray:
        """Draw the ground-truth and/or predicted scene graph of a data sample and save or show it.

        Same arguments as mmdet's ``DetLocalVisualizer.add_datasample`` (what ``DetVisualizationHook``
        passes), with ``pred_score_thr`` the minimum *triplet* score (default: ``self.score_thr``) and ``topk``
        the number of triplets drawn (default: ``self.topk``). Boxes must be in the pixels of ``image`` (at
        test time both are original-image pixels). With ``out_file`` the drawing is written there as PNG (a
        ``.jpg``/``.jpeg`` name becomes ``.png``: JPEG blurs thin lines and text); otherwise it goes to the
        vis backends.

        Returns:
            np.ndarray: the RGB drawing.
        """
        topk = self.topk if topk is None else topk
        score_thr = self.score_thr if pred_score_thr is None else pred_score_thr
        graphs = []
        if data_sample is not None:
            data_sample = data_sample.cpu()
            for kind, wanted in (('gt', draw_gt), ('pred', draw_pred)):
                graph = graph_from_data_sample(data_sample, kind, topk, score_thr) if wanted else None
                if graph is not None:
                    graphs.append(graph)
        drawing = self.draw_scene_graphs(image, graphs)
        self.set_image(drawing)
        if show:
            self.show(drawing, win_name=name, wait_time=wait_time)
        if out_file is not None:
            root, extension = osp.splitext(out_file)
            if extension.lower() in ('.jpg', '.jpeg', ''):
                out_file = f'{root}.png'
            mmcv.imwrite(drawing[..., ::-1], out_file)
        elif not show:
            self.add_image(name, drawing, step)
        return drawing
