"""SGGLocalVisualizer: drawings made by tools/test.py --show-dir on the shared toy run, and direct use."""
import glob
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from speaq_mm.visualization import GUTTER_COLOUR, SGGLocalVisualizer, select_triplets
from speaq_mm.visualization.scene_graph_visualizer import GUTTER_WIDTH, compact_graph, label_positions
from tests.tools_fixtures import NUM_TEST_IMAGES, assert_drawing, panel_grid, read_png

CLASSES = ('circle', 'cross', 'diamond', 'square', 'star', 'triangle')
PREDICATES = ('above', 'below', 'left of', 'near', 'on', 'right of')


def make_visualizer(**kwargs):
    visualizer = SGGLocalVisualizer(name=f'test_{len(kwargs)}_{id(kwargs)}', **kwargs)
    visualizer.dataset_meta = dict(classes=CLASSES, predicates=PREDICATES)
    return visualizer


def make_sample(with_gt=True, with_pred=True):
    sample = DetDataSample()
    if with_gt:
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 10, 50, 50], [70, 20, 110, 60],
                                                                [30, 80, 70, 120]]),
                                           labels=torch.tensor([0, 3, 5]))
        sample.gt_relations = InstanceData(pairs=torch.tensor([[0, 1], [1, 0], [0, 2]]),
                                           labels=torch.tensor([2, 5, 0]))
    if with_pred:
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([[0., 0, 128, 128], [12, 10, 50, 52], [70, 22, 108, 60], [30, 80, 70, 120]]),
            labels=torch.tensor([1, 0, 3, 5]), scores=torch.tensor([0.3, 0.9, 0.8, 0.7]))
        sample.pred_relations = InstanceData(
            pairs=torch.tensor([[1, 2], [2, 1], [1, 3], [0, 2], [3, 3]]), labels=torch.tensor([2, 5, 0, 3, 4]),
            triplet_scores=torch.tensor([0.5, 0.4, 0.3, 0.2, 0.1]), scores=torch.rand(5, 7),
            query_ids=torch.arange(5))
    return sample


def toy_image():
    rng = np.random.default_rng(0)
    image = np.full((128, 128, 3), 240, np.uint8)
    image[10:50, 10:50] = (200, 40, 40)
    image[20:60, 70:110] = (40, 90, 210)
    image[80:120, 30:70] = rng.integers(0, 255, (40, 40, 3))
    return image


def test_show_dir_of_tools_test_holds_a_gt_and_a_prediction_row_per_image(toy_run):
    drawings = sorted(glob.glob(osp.join(toy_run.show_dir, '*.png')))
    assert len(drawings) == NUM_TEST_IMAGES  # the toy test images are .jpg; drawings are written as .png
    for path in drawings:
        drawing = read_png(path)
        assert_drawing(drawing)
        # 128 px images are enlarged to the 400 px minimum row height; graph panels are square.
        assert drawing.shape == (2 * 400 + GUTTER_WIDTH, 2 * 400 + GUTTER_WIDTH, 3)
        assert panel_grid(drawing, GUTTER_COLOUR) == (2, 2)
        source = mmcv.imread(osp.join(toy_run.real_root, 'VG_100K', osp.basename(path)[:-4] + '.jpg'),
                             channel_order='rgb')
        panel = mmcv.imresize(drawing[:400, :400], (128, 128)).astype(np.float64)
        # The image panel is the test image (with boxes on top): strongly correlated with it.
        assert np.corrcoef(panel.ravel(), source.astype(np.float64).ravel())[0, 1] > 0.8
        graph = drawing[:400, 406:]
        assert (graph != graph[0, 0]).any(axis=2).mean() > 0.01  # nodes, arrows and labels on the background


@pytest.mark.parametrize('draw_gt, draw_pred, grid', [(True, True, (2, 2)), (True, False, (1, 2)),
                                                      (False, True, (1, 2))])
def test_rows_follow_what_is_drawn(draw_gt, draw_pred, grid):
    drawing = make_visualizer().add_datasample('x', toy_image(), make_sample(), draw_gt=draw_gt,
                                               draw_pred=draw_pred)
    assert_drawing(drawing)
    assert panel_grid(drawing, GUTTER_COLOUR) == grid


def test_sample_without_graphs_gives_the_image_back():
    image = toy_image()
    drawing = make_visualizer().add_datasample('x', image, DetDataSample())
    assert np.array_equal(drawing, image)


def test_out_file_is_written_as_png_and_topk_and_threshold_cut_the_prediction(tmp_path):
    visualizer = make_visualizer(topk=2)
    out = tmp_path / 'drawing.jpg'
    drawing = visualizer.add_datasample('x', toy_image(), make_sample(), draw_gt=False, out_file=str(out))
    assert not out.exists() and (tmp_path / 'drawing.png').exists()
    assert np.array_equal(read_png(str(tmp_path / 'drawing.png')), drawing)
    everything = make_visualizer(topk=0).add_datasample('x', toy_image(), make_sample(), draw_gt=False)
    high = make_visualizer(topk=0).add_datasample('x', toy_image(), make_sample(), draw_gt=False,
                                                  pred_score_thr=0.45)
    # Fewer triplets, fewer boxes and arrows: the drawings differ, and both still have two panels.
    assert not np.array_equal(everything, drawing) and not np.array_equal(everything, high)
    assert panel_grid(high, GUTTER_COLOUR) == (1, 2)


def test_panel_sizes_follow_the_image_size():
    visualizer = make_visualizer()
    large = visualizer.draw_scene_graphs(np.zeros((3000, 4000, 3), np.uint8) + 90, [])
    assert large.shape == (3000, 4000, 3)  # nothing to draw: the image itself
    sample = make_sample(with_gt=False)
    for shape, expected in (((3000, 4000, 3), (720, 960 + GUTTER_WIDTH + 720)),
                            ((100, 2000, 3), (400, 1200 + GUTTER_WIDTH + 400)),
                            ((500, 300, 3), (500, 300 + GUTTER_WIDTH + 500))):
        image = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
        drawing = visualizer.add_datasample('x', image, sample)
        assert drawing.shape[:2] == expected, shape
        assert panel_grid(drawing, GUTTER_COLOUR) == (1, 2)


def test_grey_images_are_drawn_in_colour():
    drawing = make_visualizer().add_datasample('x', toy_image().mean(axis=2).astype(np.uint8), make_sample())
    assert drawing.ndim == 3 and panel_grid(drawing, GUTTER_COLOUR) == (2, 2)


def test_registered_in_mmdet_visualizers_and_needs_names():
    visualizer = VISUALIZERS.build(dict(type='SGGLocalVisualizer', name='registry_check', topk=5))
    assert isinstance(visualizer, SGGLocalVisualizer) and visualizer.topk == 5
    with pytest.raises(KeyError, match='dataset_meta has no "classes"'):
        visualizer.add_datasample('x', toy_image(), make_sample())
    with pytest.raises(ValueError, match='row_height'):
        SGGLocalVisualizer(name='bad_rows', row_height=(500, 400))


def test_select_and_compact_keep_order_and_renumber_entities():
    pairs = np.array([[3, 1], [1, 2], [0, 3]])
    keep = select_triplets(pairs, topk=2, triplet_scores=np.array([0.9, 0.1, 0.5]), score_thr=0.2)
    assert keep.tolist() == [0, 2]
    boxes = np.arange(16, dtype=np.float64).reshape(4, 4)
    graph = compact_graph(boxes, np.array([10, 11, 12, 13]), np.array([.1, .2, .3, .4]), pairs,
                          np.array([5, 4, 3]), np.array([0.9, 0.1, 0.5]), keep, 'title')
    # Entities in order of first use: 3 (subject of the best triplet), 1, 0.
    assert graph.labels.tolist() == [13, 11, 10]
    assert graph.pairs.tolist() == [[0, 1], [2, 0]] and graph.predicates.tolist() == [5, 3]
    assert np.array_equal(graph.boxes, boxes[[3, 1, 0]])
    assert select_triplets(pairs, topk=0).tolist() == [0, 1, 2]


def test_labels_of_boxes_sharing_a_corner_do_not_overlap():
    boxes = np.array([[50., 50, 200, 200], [50, 50, 180, 190], [52, 51, 150, 150]])
    positions = label_positions(boxes, [12, 12, 12], font_pixels=14, width=400)
    assert len({round(y) for y in positions[:, 1]}) == 3
    assert positions[1, 1] - positions[0, 1] >= 1.5 * 14 - 1e-6
    # A label near the right border is moved left to stay inside.
    assert label_positions(np.array([[390., 10, 399, 20]]), [20], 14, 400)[0, 0] < 390 - 100


def test_without_out_file_the_drawing_goes_to_the_vis_backends(tmp_path):
    # What DetVisualizationHook does during validation: add_datasample(name, image, sample, step=...).
    visualizer = SGGLocalVisualizer(name='backend_check', vis_backends=[dict(type='LocalVisBackend')],
                                           save_dir=str(tmp_path))
    visualizer.dataset_meta = dict(classes=CLASSES, predicates=PREDICATES)
    drawing = visualizer.add_datasample('val_img', toy_image(), make_sample(), step=7)
    saved = glob.glob(osp.join(tmp_path, 'vis_data', 'vis_image', 'val_img_7.png'))
    assert len(saved) == 1 and np.array_equal(read_png(saved[0]), drawing)
