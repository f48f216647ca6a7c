"""No tool replaces files of another run or a user's dataset without being told to, and result files are
written atomically (the old file survives a failed write byte for byte)."""
import errno
import json
import os
import os.path as osp

import pytest

from speaq_mm.datasets.vg_format import VGFormatError, read_image_data
from speaq_mm.utils import atomic_io
from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import REPO, TOY_MIX_CONFIG, fabricate, snapshot


def test_train_refuses_a_work_dir_with_another_runs_checkpoints(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'iter_1500.pth').write_bytes(b'another run')
    (work_dir / 'best_sgg_R@50_iter_1000.pth').write_bytes(b'its best')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_1500.pth'))
    before = snapshot(work_dir)
    with pytest.raises(FileExistsError, match=r'iter_1500\.pth.*--resume.*--overwrite'):
        load_tool('tools/train.py').main([TOY_MIX_CONFIG, '--work-dir', str(work_dir)])
    assert snapshot(work_dir) == before


def test_json_to_vg_refuses_a_non_empty_destination(tmp_path):
    scene_graphs = tmp_path / 'scenes.json'
    scene_graphs.write_text(json.dumps(dict(images=[dict(
        file_name='a.jpg', width=10, height=10, objects=[dict(name='cat', bbox=[1, 1, 5, 5]),
                                                         dict(name='dog', bbox=[4, 4, 9, 9])],
        relations=[dict(subject=0, object=1, predicate='near')])])))
    out = tmp_path / 'dataset'
    (out / 'VG_100K').mkdir(parents=True)
    (out / 'VG-SGG-with-attri.h5').write_bytes(b'the user\'s h5')
    (out / 'image_data.json').write_text('[]')
    (out / 'VG_100K' / 'a.jpg').write_bytes(b'the user\'s image')
    before = snapshot(out)
    with pytest.raises(FileExistsError, match=f'{out}.*--overwrite'):
        load_tool('tools/dataset_converters/json_to_vg.py').main([str(scene_graphs), str(out)])
    assert snapshot(out) == before
    report = load_tool('tools/dataset_converters/json_to_vg.py').main([str(scene_graphs), str(out), '--overwrite'])
    assert report['counts']['relations_kept'] == 1 and snapshot(out) != before


def test_vg_to_json_refuses_an_existing_output(tmp_path):
    out = tmp_path / 'scene_graphs.json'
    out.write_text('{"mine": true}')
    with pytest.raises(FileExistsError, match='--overwrite'):
        load_tool('tools/dataset_converters/vg_to_json.py').main([str(tmp_path), str(out)])
    assert out.read_text() == '{"mine": true}'


def test_model_converter_refuses_its_source_and_an_existing_output(tmp_path):
    import torch

    source = tmp_path / 'model_final.pth'
    torch.save(dict(model=fabricate('DETR')), source)
    converter = load_tool('tools/model_converters/speaq_d2_to_mm.py')
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match='is the source file itself'):
        converter.main([str(source), str(source)])
    with pytest.raises(ValueError, match='is the source file itself'):
        converter.main([str(source), str(tmp_path / '.' / 'model_final.pth'), '--overwrite'])
    existing = tmp_path / 'converted.pth'
    existing.write_bytes(b'an earlier conversion')
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match='--overwrite'):
        converter.main([str(source), str(existing)])
    assert snapshot(tmp_path) == before
    converter.main([str(source), str(existing), '--overwrite'])
    assert existing.read_bytes() != b'an earlier conversion'


def test_result_files_survive_a_failed_write(tmp_path, monkeypatch):
    """Metrics JSON, dumps, the image demo's JSON and converted checkpoints all go through atomic_dump."""
    metrics = tmp_path / 'metrics.json'
    atomic_io.atomic_dump({'R@50': 0.5}, str(metrics), indent=2)
    before = metrics.read_bytes()

    def full_disk(stream, data):
        stream.write(data[:3])
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(atomic_io, '_write_payload', full_disk)
    for path, obj in ((metrics, {'R@50': 0.9}), (tmp_path / 'preds.pkl', [1]), (tmp_path / 'ckpt.pth', {})):
        with pytest.raises(atomic_io.AtomicWriteError, match='no space left'):
            atomic_io.atomic_dump(obj, str(path))
    assert metrics.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['metrics.json']
    for tool in ('tools/demo/image_demo.py', 'tools/model_converters/speaq_d2_to_mm.py',
                 'tools/analysis/query_specialisation.py'):
        with open(osp.join(REPO, tool)) as file:
            text = file.read()
        assert 'atomic_dump(' in text and 'json.dump(' not in text and 'torch.save(' not in text, tool


def test_start_up_clean_up_removes_only_this_runs_dead_leftovers(tmp_path):
    import subprocess
    import sys
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    alive = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        host = atomic_io._writer_token().split('@')[1]
        names = {
            'killed_save': f'.iter_4.pth.{dead.pid}@{host}.abc123.partial',
            'concurrent_save': f'.iter_6.pth.{alive.pid}@{host}.def456.partial',
            'other_host': f'.iter_8.pth.{dead.pid}@elsewhere.ghi789.partial',
            'not_ours': f'.results.json.{dead.pid}@{host}.jkl012.partial',
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b'half a file')
        removed = atomic_io.remove_stale_partial_files(str(tmp_path), lambda name: name.startswith('iter_'))
        assert [osp.basename(path) for path in removed] == [names['killed_save']]
        assert sorted(os.listdir(tmp_path)) == sorted(v for k, v in names.items() if k != 'killed_save')
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.parametrize('image_id', ['../../etc/hostname', '/etc/hostname', '.hidden', 'a/b', '', 1.5, None])
def test_image_ids_that_are_not_plain_ids_are_refused(tmp_path, image_id):
    path = tmp_path / 'image_data.json'
    path.write_text(json.dumps([dict(width=10, height=10, image_id=1),
                                dict(width=10, height=10, image_id=image_id)]))
    with pytest.raises(VGFormatError, match=f'{path}: entry 1 has image_id={image_id!r}'.replace('.', r'\.')
                       .replace('(', r'\(').replace('[', r'\[')):
        read_image_data(str(path))
    path.write_text(json.dumps([dict(width=10, height=10, image_id=1), dict(width=10, height=10, image_id='x-2.b')]))
    assert read_image_data(str(path))['image_id'].tolist() == [1, 'x-2.b']


def test_train_refuses_a_work_dir_holding_only_a_last_checkpoint_pointer(tmp_path):
    """The pointer alone marks another run (its checkpoints may live in an out_dir elsewhere)."""
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text('/elsewhere/run/iter_8.pth')
    before = snapshot(work_dir)
    with pytest.raises(FileExistsError, match=r'work dir .* holds checkpoints of another run \(last_checkpoint\)'):
        load_tool('tools/train.py').main([TOY_MIX_CONFIG, '--work-dir', str(work_dir)])
    assert snapshot(work_dir) == before


@pytest.mark.parametrize('resume', [[], ['--resume']])
def test_train_refuses_a_checkpoint_out_dir_holding_another_runs_checkpoints(tmp_path, resume):
    """Work dirs a/exp and b/exp with default_hooks.checkpoint.out_dir=ckpts both save to ckpts/exp: the second
    run must not start over the first one's checkpoints (nor with --resume, which has nothing to resume in
    b/exp and so starts from iteration 0)."""
    shared = tmp_path / 'ckpts'
    (shared / 'exp').mkdir(parents=True)
    (shared / 'exp' / 'iter_4.pth').write_bytes(b'the first run\'s checkpoint')
    (tmp_path / 'a' / 'exp').mkdir(parents=True)
    (tmp_path / 'a' / 'exp' / 'last_checkpoint').write_text(str(shared / 'exp' / 'iter_4.pth'))
    second = tmp_path / 'b' / 'exp'
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=f'checkpoint folder {shared / "exp"} .*holds checkpoints of another '
                                              r'run \(iter_4\.pth\)'):
        load_tool('tools/train.py').main([TOY_MIX_CONFIG, '--work-dir', str(second), *resume, '--cfg-options',
                                          f'default_hooks.checkpoint.out_dir={shared}'])
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('preset', ['toy', 'vg150-scale'])
def test_make_toy_scenes_refuses_an_existing_dataset(tmp_path, preset):
    out = tmp_path / 'toy'
    tool = load_tool('tools/misc/make_toy_scenes.py')
    tool.main([str(out), '--num-train', '5', '--num-test', '1', '--image-size', '32'])
    before = snapshot(out)
    with pytest.raises(FileExistsError, match=f'{out} is not empty; nothing was written.*--overwrite'):
        tool.main([str(out), '--preset', preset, '--num-train', '2', '--num-test', '1', '--seed', '3'])
    assert snapshot(out) == before
    tool.main([str(out), '--num-train', '2', '--num-test', '1', '--image-size', '32', '--seed', '3', '--overwrite'])
    assert len(os.listdir(out / 'VG_100K')) == 3  # the earlier set's other images are gone, not mixed in
    assert len(read_image_data(str(out / 'image_data.json'))['image_id']) == 3


@pytest.mark.parametrize('existing', ['dump.pkl', 'dump_metrics.json', 'dump_meta.json'])
def test_test_tool_refuses_to_replace_an_earlier_dump_or_its_metrics(tmp_path, existing):
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'never read: the refusal comes first')
    (tmp_path / existing).write_text('an earlier evaluation')
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=f'{tmp_path / existing} already exist.*--overwrite'):
        load_tool('tools/test.py').main([TOY_MIX_CONFIG, str(checkpoint), '--out', str(tmp_path / 'dump.pkl'),
                                         '--work-dir', str(tmp_path / 'work')])
    assert snapshot(tmp_path) == before


def test_make_demo_twice_keeps_the_first_runs_results(tmp_path, monkeypatch, capsys):
    """The second `make demo` (tools/demo.py) writes to a new timestamped folder and says so; --overwrite
    writes into the first one."""
    from speaq_mm.apis import toy_demo

    def fake_train_and_evaluate(config, work_dir, *args, **kwargs):  # what the run leaves in its work dir
        os.makedirs(work_dir, exist_ok=True)
        for name in ('metrics.json', 'iter_4.pth'):
            with open(osp.join(work_dir, name), 'w') as file:
                file.write(f'run {len(os.listdir(tmp_path))}')
        return {'R@50': 0.0, 'mR@50': 0.0}

    monkeypatch.setattr(toy_demo, 'train_and_evaluate', fake_train_and_evaluate)
    demo = load_tool('tools/demo.py')
    work_dir = tmp_path / 'demo'
    demo.main(['--work-dir', str(work_dir)])
    first = snapshot(work_dir)
    demo.main(['--work-dir', str(work_dir)])
    assert snapshot(work_dir) == first
    second = [path for path in tmp_path.iterdir() if path.name.startswith('demo_')]
    assert len(second) == 1 and sorted(os.listdir(second[0])) == ['iter_4.pth', 'metrics.json']
    out = capsys.readouterr().out
    assert f'{work_dir} holds the results of an earlier run, which are kept; this run writes to {second[0]}' in out
    assert f'[demo] metrics: {second[0] / "metrics.json"}' in out
    demo.main(['--work-dir', str(work_dir), '--overwrite'])
    assert snapshot(work_dir) != first and len(list(tmp_path.iterdir())) == 2
