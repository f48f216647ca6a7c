"""speaq_mm.apis.SceneGraphInferencer on the shared toy run's checkpoint: batches equal single images, every input
kind, the vocabulary, the strict checkpoint loading, and every kind of awkward image file."""
import io
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from speaq_mm.apis import SceneGraphInferencer
from speaq_mm.apis import scene_graph_inferencer as inferencer_module
from speaq_mm.apis.image_inputs import UnreadableImageError, decode_image, read_image, unique_image_ids
from speaq_mm.engine import CheckpointMismatchError
from speaq_mm.utils import load_torch_file
from tests.inference_fixtures import TOY_MIX_CONFIG, assert_same_graphs, make_mixed_folder
from tests.tools_fixtures import one_torch_thread


@pytest.fixture(scope='module')
def run(toy_run):
    """The shared toy run (tests/conftest.py)."""
    return toy_run


@pytest.fixture(scope='module')
def inferencer(run):
    return SceneGraphInferencer(TOY_MIX_CONFIG, run.checkpoint)


@pytest.fixture(scope='module')
def mixed(run, tmp_path_factory):
    folder = tmp_path_factory.mktemp('mixed')
    return folder, make_mixed_folder(run, folder)


def test_batch_of_8_gives_the_graphs_of_one_image_at_a_time(inferencer, mixed):
    folder, paths = mixed
    with one_torch_thread():
        single = inferencer(str(folder), batch_size=1, topk=0)
        batched = inferencer(str(folder), batch_size=8, topk=0)
    assert len(single) == len(paths)
    # Non-trivial graphs: relations, objects, and scores that are not all equal.
    assert all(g['relations'] and g['objects'] for g in single)
    assert len({r['score'] for g in single for r in g['relations']}) > 10
    assert_same_graphs(single, batched)


def test_padding_would_change_the_graphs(inferencer, mixed, monkeypatch):
    """Why batches are split by input size: with every image of a loaded batch in one padded forward pass,
    the smaller images' graphs change (so the test above can fail)."""
    folder, _ = mixed
    monkeypatch.setattr(inferencer_module, 'groups_by_input_size',
                        lambda loaded: [[k for k, entry in enumerate(loaded) if 'inputs' in entry]])
    with one_torch_thread():
        single = inferencer(str(folder), batch_size=1, topk=0)
        padded = inferencer(str(folder), batch_size=8, topk=0)
    with pytest.raises(AssertionError):
        assert_same_graphs(single, padded)


def test_every_input_kind_gives_the_same_graph(inferencer, mixed):
    folder, paths = mixed
    images = [np.asarray(Image.open(p).convert('RGB'))[..., ::-1] for p in paths[:3]]  # BGR, as mmcv reads
    with one_torch_thread():
        from_folder = inferencer(str(folder), topk=10)[:3]
        from_paths = inferencer(paths[:3], topk=10)
        from_one = inferencer(paths[1], topk=10)
        from_arrays = inferencer(images, batch_size=3, topk=10)
        from_array = inferencer(images[1], topk=10)
    assert [g['file_name'] for g in from_folder] == ['img_00.png', 'img_01.png', 'img_02.png']
    assert [g['file_name'] for g in from_paths] == paths[:3] and from_one[0]['file_name'] == 'img_01.png'
    assert [g['id'] for g in from_arrays] == ['array_0', 'array_1', 'array_2']
    for graphs in (from_paths, from_arrays):
        assert_same_graphs([dict(g, file_name='', id='') for g in from_folder],
                           [dict(g, file_name='', id='') for g in graphs])
    assert_same_graphs([dict(from_folder[1], file_name='', id='')], [dict(from_one[0], file_name='', id='')])
    assert_same_graphs([dict(from_folder[1], file_name='', id='')], [dict(from_array[0], file_name='', id='')])


def test_graph_schema_topk_and_score_threshold(inferencer, mixed, run):
    folder, _ = mixed
    with one_torch_thread():
        graphs = inferencer(str(folder), topk=5)
        everything = inferencer(str(folder), topk=0)
    meta = load_torch_file(run.checkpoint)['meta']['dataset_meta']
    assert inferencer.classes == tuple(meta['classes']) and inferencer.predicates == tuple(meta['predicates'])
    assert inferencer.names_from == f'checkpoint {run.checkpoint}'
    for graph, full in zip(graphs, everything):
        assert set(graph) == {'file_name', 'id', 'width', 'height', 'objects', 'relations'}
        assert 0 < len(graph['relations']) <= 5 and graph['relations'] == full['relations'][:5]
        scores = [r['score'] for r in full['relations']]
        assert scores == sorted(scores, reverse=True)
        used = []
        for relation in graph['relations']:
            assert relation['subject'] != relation['object']
            assert relation['predicate'] == inferencer.predicates[relation['predicate_label']]
            used += [u for u in (relation['subject'], relation['object']) if u not in used]
        assert [o['id'] for o in graph['objects']] == used == list(range(len(used)))  # numbered by first use
        for obj in graph['objects']:
            x1, y1, x2, y2 = obj['bbox']
            assert 0 <= x1 < x2 <= graph['width'] and 0 <= y1 < y2 <= graph['height']
            assert obj['name'] == inferencer.classes[obj['label']]
    threshold = float(np.median([r['score'] for g in everything for r in g['relations']]))
    with one_torch_thread():
        kept = inferencer(str(folder), topk=0, score_thr=threshold)
    for graph, full in zip(kept, everything):
        assert graph['relations'] == [r for r in full['relations'] if r['score'] >= threshold] or not graph['relations']
    assert 0 < sum(len(g['relations']) for g in kept) < sum(len(g['relations']) for g in everything)


def test_a_checkpoint_missing_a_tensor_is_refused_naming_it(run, tmp_path):
    checkpoint = load_torch_file(run.checkpoint)
    removed = [key for key in checkpoint['state_dict'] if 'bbox_head' in key][0]
    del checkpoint['state_dict'][removed]
    torch.save(checkpoint, tmp_path / 'incomplete.pth')
    with pytest.raises(CheckpointMismatchError, match=f'lacks 1 of.*{removed}'):
        SceneGraphInferencer(TOY_MIX_CONFIG, str(tmp_path / 'incomplete.pth'))


def test_names_come_from_the_config_when_the_checkpoint_has_none(run, tmp_path):
    checkpoint = load_torch_file(run.checkpoint)
    meta = checkpoint['meta'].pop('dataset_meta')
    torch.save(checkpoint, tmp_path / 'bare.pth')
    config = tmp_path / 'named.py'
    config.write_text(f"_base_ = ['{TOY_MIX_CONFIG}']\n"
                      f"test_dataloader = dict(dataset=dict(data_root='{tmp_path}/none/', metainfo=dict("
                      f"classes={list(meta['classes'])}, predicates={list(meta['predicates'])[::-1]})))\n")
    inferencer = SceneGraphInferencer(str(config), str(tmp_path / 'bare.pth'))
    assert inferencer.names_from.endswith('(metainfo)')
    assert inferencer.predicates == tuple(meta['predicates'])[::-1]


# ----------------------------------------------------------------------------------------------------------
# Image files
# ----------------------------------------------------------------------------------------------------------
def _png_bytes(image, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, format='PNG', **kwargs)
    return buffer.getvalue()


def _jpeg_bytes(array, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format='JPEG', quality=95, **kwargs)
    return buffer.getvalue()


def test_grey_palette_rgba_16_bit_and_exif_images_decode_upright_as_bgr():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    grey = decode_image(_png_bytes(Image.fromarray(rgb[..., 0])))
    assert grey.shape == (30, 40, 3) and (grey == rgb[..., :1]).all()
    palette = Image.fromarray(rgb).quantize(16)
    expected = np.asarray(palette.convert('RGB'))[..., ::-1]
    assert (decode_image(_png_bytes(palette)) == expected).all()
    rgba = np.dstack([rgb, np.where(np.arange(40) < 20, 0, 255).astype(np.uint8)[None].repeat(30, 0)])
    composited = decode_image(_png_bytes(Image.fromarray(rgba, 'RGBA')))
    assert (composited[:, :20] == 255).all() and (composited[:, 20:] == rgb[:, 20:, ::-1]).all()
    sixteen = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    for backend in ('cv2', 'pillow'):
        decoded = decode_image(_png_bytes(sixteen), decode_backend=backend)
        assert decoded.dtype == np.uint8 and np.abs(decoded.astype(int) - rgb[..., :1]).max() <= 1, backend
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated by 90 degrees
    sideways = decode_image(_jpeg_bytes(rgb, exif=exif))
    assert sideways.shape == (40, 30, 3)


def test_truncated_empty_foreign_missing_and_too_large_files_name_their_reason(tmp_path):
    rng = np.random.default_rng(0)
    jpeg = _jpeg_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    png = _png_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    cases = {'half.jpg': (jpeg[:len(jpeg) // 2], 'truncated'), 'half.png': (png[:len(png) // 2], 'truncated'),
             'empty.jpg': (b'', 'empty file'), 'text.jpg': (b'not an image at all', 'not an image')}
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UnreadableImageError) as caught:
            read_image(str(tmp_path / name))
        assert caught.value.reason == reason and name in str(caught.value), name
    with pytest.raises(UnreadableImageError, match='missing file'):
        read_image(str(tmp_path / 'nowhere.jpg'))
    (tmp_path / 'big.png').write_bytes(png)
    with pytest.raises(UnreadableImageError, match='too large.*64x64'):
        read_image(str(tmp_path / 'big.png'), max_pixels=64 * 63)
    assert read_image(str(tmp_path / 'big.png'), max_pixels=64 * 64).shape == (64, 64, 3)


def test_huge_image_decodes_in_full():
    array = np.zeros((6000, 8000, 3), np.uint8)
    array[:, 4000:] = 200
    decoded = decode_image(_jpeg_bytes(array))
    assert decoded.shape == (6000, 8000, 3) and abs(int(decoded[10, 7000, 0]) - 200) <= 2


def test_ids_are_unique_and_accepted_by_json_to_vg():
    from speaq_mm.datasets.vg_format.reading import PLAIN_IMAGE_ID
    names = ['a/x.jpg', 'a/x.png', 'b/x.jpg', 'y.jpg', '.hidden.png', 'with space.jpg']
    ids = unique_image_ids(names)
    assert ids == ['a_x_jpg', 'a_x_png', 'b_x', 'y', '_.hidden', 'with_space']
    assert all(PLAIN_IMAGE_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    assert unique_image_ids(['a_b.jpg', 'a/b.jpg']) == ['a_b_jpg', 'a_b_jpg_2']


def test_decoding_matches_the_test_pipeline_loader(run):
    """The pixels are the ones LoadImageFromFile (tools/test.py) gives, JPEG included."""
    from mmcv.transforms import LoadImageFromFile

    from tests.inference_fixtures import toy_test_images
    for path in toy_test_images(run)[:3]:
        expected = LoadImageFromFile()(dict(img_path=path))['img']
        assert (read_image(path) == expected).all(), path
    assert osp.isfile(run.checkpoint)


def test_inference_pipeline_drops_annotation_loading():
    from mmengine.config import Config
    pipeline, load_step = inferencer_module.inference_pipeline(Config.fromfile(TOY_MIX_CONFIG))
    assert [type(step).__name__ for step in pipeline.transforms] == ['LoadImageFromNDArray', 'Resize',
                                                                     'SGGPackInputs']
    assert load_step['type'] == 'LoadImageFromFile'


def test_relations_json_to_vg_would_drop_are_left_out(tmp_path):
    """A self relation (subject and object merged into one entity) and a relation with an empty box: not in the
    graph, and json_to_vg then keeps every relation and object."""
    import json

    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from speaq_mm.datasets.scene_graph_json import json_to_vg
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.], [5., 5., 20., 20.], [3., 3., 3., 9.]]),
        labels=torch.tensor([0, 1, 1]), scores=torch.tensor([0.9, 0.8, 0.7]))
    sample.pred_relations = InstanceData(
        pairs=torch.tensor([[0, 1], [1, 1], [0, 2], [1, 0]]), labels=torch.tensor([1, 0, 0, 0]),
        triplet_scores=torch.tensor([0.5, 0.4, 0.3, 0.2]), scores=torch.full((4, 3), 0.25),
        query_ids=torch.tensor([3, 1, 2, 0]))
    graph = inferencer_module.scene_graph_from_sample(sample, 'a.jpg', 'a', 32, 24, ('cat', 'dog'), ('on', 'near'),
                                                      topk=0)
    assert [(r['subject'], r['object'], r['predicate'], r['query_id']) for r in graph['relations']] == [
        (0, 1, 'near', 3), (1, 0, 'on', 0)]
    assert [(o['name'], o['bbox']) for o in graph['objects']] == [('cat', [0., 0., 10., 10.]),
                                                                  ('dog', [5., 5., 20., 20.])]
    path = tmp_path / 'graphs.json'
    path.write_text(json.dumps(dict(classes=['cat', 'dog'], predicates=['on', 'near'], images=[graph])))
    report = json_to_vg(str(path), str(tmp_path / 'vg'))
    assert report['dropped'] == {} and report['counts']['relations_kept'] == 2


def test_drawings_show_the_graphs(inferencer, mixed, tmp_path):
    from speaq_mm.visualization import GUTTER_COLOUR
    from tests.tools_fixtures import assert_drawing, panel_grid, read_png
    folder, paths = mixed
    with one_torch_thread():
        graphs = inferencer(paths[:2], topk=3, draw_dir=str(tmp_path))
    for graph in graphs:
        drawing = read_png(str(tmp_path / f'{graph["id"]}.png'))
        assert_drawing(drawing)
        assert panel_grid(drawing, GUTTER_COLOUR) == (1, 2)
