"""tools/extract_scene_graphs.py and tools/dist_extract.sh on the shared toy run's checkpoint: resuming after
SIGKILL, two gloo processes, bad images, refusals, equality with tools/test.py --out, and the docs' commands
(extraction, then json_to_vg, then vg_to_json)."""
import json
import os
import os.path as osp
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from speaq_mm.apis.scene_graph_inferencer import relation_rows  # noqa: F401  (the rule the comparisons mirror)
from tests.datasets_fixtures import load_tool
from tests.inference_fixtures import TOY_MIX_CONFIG, assert_same_graphs, make_mixed_folder
from tests.tools_fixtures import REPO, one_torch_thread

extract = load_tool('tools/extract_scene_graphs.py')


@pytest.fixture(scope='module')
def run(toy_run):
    """The shared toy run (tests/conftest.py)."""
    return toy_run


@pytest.fixture(scope='module')
def folder(run, tmp_path_factory):
    """48 toy scenes at mixed sizes (enough for a kill to land mid-folder)."""
    path = tmp_path_factory.mktemp('extract_images')
    make_mixed_folder(run, path, count=48)
    return path


@pytest.fixture(scope='module')
def reference(run, folder, tmp_path_factory):
    """An uninterrupted single-process run at batch 1: (path, summary)."""
    out = str(tmp_path_factory.mktemp('reference') / 'graphs.jsonl')
    with one_torch_thread():
        summary = extract.main([TOY_MIX_CONFIG, run.checkpoint, str(folder), '--out', out, '--batch-size', '1',
                                '--num-workers', '0'])
    return out, summary


def read_lines(path):
    with open(path) as file:
        return [json.loads(line) for line in file]


def tool_env():
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHON=sys.executable)
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    return env


def test_output_holds_every_image_once_in_order_with_a_sidecar(reference, folder):
    out, summary = reference
    graphs = read_lines(out)
    names = sorted(os.listdir(folder))
    assert [g['file_name'] for g in graphs] == names
    assert summary['written'] == len(names) and summary['skipped'] == 0 and summary['already_done'] == 0
    assert all(g['relations'] for g in graphs)
    with open(out + '.meta.json') as file:
        meta = json.load(file)
    assert meta['summary']['lines_in_output'] == len(names) and meta['topk'] == 100
    assert len(meta['checkpoint_sha256']) == 64 and meta['classes'] and meta['predicates']
    assert not [name for name in os.listdir(osp.dirname(out)) if '.part' in name]


def test_a_killed_run_resumes_to_the_file_of_an_uninterrupted_run(run, folder, reference, tmp_path):
    out = str(tmp_path / 'graphs.jsonl')
    command = [sys.executable, osp.join(REPO, 'tools', 'extract_scene_graphs.py'), TOY_MIX_CONFIG, run.checkpoint,
               str(folder), '--out', out, '--batch-size', '1', '--num-workers', '0']
    process = subprocess.Popen(command, env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out + '.part0'
    deadline = time.time() + 600
    try:
        while time.time() < deadline and process.poll() is None:
            if osp.exists(part) and open(part, 'rb').read().count(b'\n') >= 3:
                break
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    written = open(part, 'rb').read().count(b'\n')
    assert 3 <= written < 48, 'the kill should land mid-folder'
    assert not osp.exists(out) or os.path.getsize(out) == 0
    # A kill in the middle of a write leaves the start of a line without its newline.
    with open(part, 'ab') as file:
        file.write(b'{"file_name":"img_47.png","id":"img_4')
    with one_torch_thread():
        summary = extract.main(command[2:])
    assert summary['already_done'] == written and summary['written'] == 48 - written
    assert summary['broken_lines_dropped'] == 1
    with open(out, 'rb') as file, open(reference[0], 'rb') as expected:
        assert file.read() == expected.read()
    assert not osp.exists(part)


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_write_every_image_exactly_once(run, folder, reference, tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    for name in sorted(os.listdir(folder))[:11]:  # an odd count: a padded split would do one image twice
        shutil.copy(folder / name, images / name)
    out = str(tmp_path / 'graphs.jsonl')
    env = dict(tool_env(), PORT=str(_free_port()))
    result = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_extract.sh'), TOY_MIX_CONFIG, run.checkpoint,
                             str(images), '2', '--out', out, '--batch-size', '2', '--num-workers', '0'],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    graphs = read_lines(out)
    assert [g['file_name'] for g in graphs] == sorted(os.listdir(images))
    with open(out + '.meta.json') as file:
        summary = json.load(file)['summary']
    assert summary['processes'] == 2 and summary['written'] == 11
    expected = [g for g in read_lines(reference[0]) if g['file_name'] in set(os.listdir(images))]
    assert_same_graphs(expected, graphs)


def test_bad_images_are_skipped_and_counted_and_the_rest_processed(run, folder, tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    rgb = np.asarray(Image.open(folder / 'img_00.png').convert('RGB'))
    Image.fromarray(rgb).convert('L').save(images / 'grey.png')
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), 'RGBA').save(images / 'rgba.png')
    Image.fromarray(rgb).quantize(32).save(images / 'palette.png')
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(images / 'sixteen.png')
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)).save(images / 'phone.jpg', exif=exif)
    big = np.zeros((4000, 6000, 3), np.uint8)
    big[1000:3000, 1000:3000] = (0, 0, 255)
    Image.fromarray(big).save(images / 'big.jpg')
    Image.fromarray(np.zeros((7100, 7100, 3), np.uint8)).save(images / 'huge.jpg')
    jpeg = (folder / 'img_01.png').read_bytes()
    shutil.copy(run_image(run), images / 'cut.jpg')
    content = (images / 'cut.jpg').read_bytes()
    (images / 'cut.jpg').write_bytes(content[:len(content) // 2])
    (images / 'cut.png').write_bytes(jpeg[:len(jpeg) // 2])
    (images / 'empty.jpg').write_bytes(b'')
    (images / 'notes.jpg').write_text('not an image')
    listing = tmp_path / 'images.txt'
    listing.write_text('\n'.join(['# every file, and one that is gone'] + [f'images/{n}' for n in
                                                                           sorted(os.listdir(images))]
                                 + ['images/gone.jpg']) + '\n')
    out = str(tmp_path / 'graphs.jsonl')
    with one_torch_thread():
        summary = extract.main([TOY_MIX_CONFIG, run.checkpoint, str(listing), '--out', out, '--batch-size', '4',
                                '--num-workers', '1', '--max-pixels', '50000000'])
    assert summary['skipped_by_reason'] == {'truncated': 2, 'empty file': 1, 'not an image': 1, 'too large': 1,
                                            'missing file': 1}
    assert {(e['file_name'], e['reason']) for e in summary['skipped_images']} == {
        ('images/cut.jpg', 'truncated'), ('images/cut.png', 'truncated'), ('images/empty.jpg', 'empty file'),
        ('images/notes.jpg', 'not an image'), ('images/huge.jpg', 'too large'), ('images/gone.jpg', 'missing file')}
    graphs = {g['file_name']: g for g in read_lines(out)}
    assert sorted(graphs) == ['images/big.jpg', 'images/grey.png', 'images/palette.png', 'images/phone.jpg',
                              'images/rgba.png', 'images/sixteen.png']
    assert (graphs['images/phone.jpg']['width'], graphs['images/phone.jpg']['height']) == (90, 160)
    assert (graphs['images/big.jpg']['width'], graphs['images/big.jpg']['height']) == (6000, 4000)
    assert all(g['relations'] for g in graphs.values())
    assert max(o['bbox'][2] for o in graphs['images/big.jpg']['objects']) > 64  # boxes in original pixels


def run_image(run):
    from tests.inference_fixtures import toy_test_images
    return toy_test_images(run)[0]


def test_another_model_or_setting_is_refused_unless_overwrite(run, folder, reference, tmp_path):
    out = str(tmp_path / 'graphs.jsonl')
    shutil.copy(reference[0], out)
    shutil.copy(reference[0] + '.meta.json', out + '.meta.json')
    before = open(out, 'rb').read()
    with pytest.raises(FileExistsError, match='topk: 100 -> 5'), one_torch_thread():
        extract.main([TOY_MIX_CONFIG, run.checkpoint, str(folder), '--out', out, '--topk', '5'])
    other = tmp_path / 'other.pth'
    shutil.copy(run.checkpoint, other)
    with open(other, 'ab') as file:
        file.write(b'\0')  # another file: another hash (torch ignores trailing bytes)
    with pytest.raises(FileExistsError, match='checkpoint_sha256'), one_torch_thread():
        extract.main([TOY_MIX_CONFIG, str(other), str(folder), '--out', out])
    assert open(out, 'rb').read() == before
    foreign = tmp_path / 'foreign.jsonl'
    foreign.write_text('my own notes\n')
    with pytest.raises(FileExistsError, match='no sidecar'), one_torch_thread():
        extract.main([TOY_MIX_CONFIG, run.checkpoint, str(folder), '--out', str(foreign)])
    assert foreign.read_text() == 'my own notes\n'
    with one_torch_thread():
        summary = extract.main([TOY_MIX_CONFIG, run.checkpoint, str(folder), '--out', out, '--topk', '5',
                                '--overwrite', '--num-workers', '0'])
    assert summary['written'] == 48 and all(len(g['relations']) <= 5 for g in read_lines(out))


def test_extraction_of_the_test_split_equals_tools_test_out(run, tmp_path):
    from speaq_mm.evaluation.records import load_prediction_dump
    out = str(tmp_path / 'graphs.jsonl')
    with one_torch_thread():
        extract.main([TOY_MIX_CONFIG, run.checkpoint, 'split:test', '--out', out, '--topk', '0', '--batch-size', '8',
                      '--num-workers', '0', '--cfg-options', f'test_dataloader.dataset.data_root={run.real_root}/',
                      'test_dataloader.dataset.num_val_images=8'])
    graphs = read_lines(out)
    records = {str(r['img_id']): r for r in load_prediction_dump(run.dump)}
    assert sorted(g['id'] for g in graphs) == sorted(records) and len(graphs) == 6
    for graph in graphs:
        record = records[graph['id']]
        pairs, boxes = record['pred_rel_pairs'], record['pred_bboxes']
        positive = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        rows = [k for k, (s, o) in enumerate(pairs) if s != o and positive[s] and positive[o]]
        assert len(graph['relations']) == len(rows) > 0
        for relation, row in zip(graph['relations'], rows):
            subject, obj = (graph['objects'][relation[key]] for key in ('subject', 'object'))
            np.testing.assert_allclose(subject['bbox'], boxes[pairs[row, 0]], atol=1e-3, rtol=0)
            np.testing.assert_allclose(obj['bbox'], boxes[pairs[row, 1]], atol=1e-3, rtol=0)
            assert (subject['label'], obj['label']) == tuple(record['pred_labels'][pairs[row]])
            assert relation['predicate_label'] == record['pred_rel_labels'][row]
            assert abs(relation['predicate_score'] - record['pred_rel_scores'][row, relation['predicate_label']]) < 1e-5
            assert abs(subject['score'] - record['pred_scores'][pairs[row, 0]]) < 1e-5


def docs_commands():
    """The bash commands of docs/inference.md's "From scene graphs to a training set" block."""
    with open(osp.join(REPO, 'docs', 'inference.md')) as file:
        blocks = re.findall(r'```bash\n(.*?)```', file.read(), flags=re.S)
    block = [b for b in blocks if 'json_to_vg.py' in b and 'extract_scene_graphs.py' in b]
    assert len(block) == 1
    return [shlex.split(line) for line in block[0].replace('\\\n', ' ').splitlines() if line.strip()]


def test_the_docs_commands_turn_the_output_into_a_training_set_and_back(run, folder, tmp_path):
    paths = {'work_dirs/demo/iter_1200.pth': run.checkpoint, 'data/my_images': str(folder),
             'work_dirs/demo/graphs.jsonl': str(tmp_path / 'graphs.jsonl'), 'data/my_pseudo': str(tmp_path / 'vg'),
             'work_dirs/demo/roundtrip.json': str(tmp_path / 'roundtrip.json')}
    results = []
    for argv in docs_commands():
        assert argv[0] == 'python'
        argv = [paths.get(arg, arg) for arg in argv[1:]]
        with one_torch_thread():
            results.append(load_tool(argv[0]).main(argv[1:] + (['--num-workers', '0']
                                                               if 'extract' in argv[0] else [])))
    graphs = read_lines(paths['work_dirs/demo/graphs.jsonl'])
    report = results[1]
    relations = sum(len(g['relations']) for g in graphs)
    assert relations > 0 and report['dropped'] == {}
    assert report['counts']['relations_kept'] == relations and report['counts']['images_kept'] == len(graphs)
    with open(paths['work_dirs/demo/roundtrip.json']) as file:
        back = {str(image['id']): image for image in json.load(file)['images']}
    for graph in graphs:
        image = back[graph['id']]
        assert [(r['subject'], r['object'], r['predicate']) for r in image['relations']] == [
            (r['subject'], r['object'], r['predicate']) for r in graph['relations']]
        assert [o['name'] for o in image['objects']] == [o['name'] for o in graph['objects']]
        unit = max(graph['width'], graph['height']) / 1024  # the h5 stores boxes in a 1024 px frame
        np.testing.assert_allclose([o['bbox'] for o in image['objects']], [o['bbox'] for o in graph['objects']],
                                   atol=2 * unit + 0.01, rtol=0)


@pytest.mark.parametrize('tool', ['tools/extract_scene_graphs.py', 'tools/benchmarks/bench_extract.py'])
def test_tool_help(tool):
    result = subprocess.run([sys.executable, osp.join(REPO, tool), '--help'], capture_output=True, text=True,
                            timeout=300, env=tool_env())
    assert result.returncode == 0, result.stderr
    assert '--batch-size' in result.stdout


def test_the_benchmark_runs_on_tiny_inputs():
    with one_torch_thread():
        rows = load_tool('tools/benchmarks/bench_extract.py').main(['--images', '2', '--batch-sizes', '1', '2',
                                                                   '--threads', '1'])
    assert [row[0] for row in rows] == [1, 2] and all(row[1] > 0 for row in rows)


def test_a_launched_extraction_closes_its_process_group(run, tmp_path, one_rank_launch):
    """As tools/train.py and tools/test.py do (tests/test_engine_runner.py)."""
    make_mixed_folder(run, tmp_path, count=2)
    out = str(tmp_path / 'graphs.jsonl')
    with one_torch_thread():
        extract.main([TOY_MIX_CONFIG, run.checkpoint, str(tmp_path), '--out', out, '--launcher', 'pytorch',
                      '--num-workers', '0'])
    assert one_rank_launch == ['gloo'] and not torch.distributed.is_initialized()
    assert len(read_lines(out)) == 2
