"""No checkpoint, prediction dump, reference checkpoint or metainfo file can run code in our tools.

Every malicious file here carries a pickle payload that creates a marker file when it is unpickled; each
tool must refuse the file with a message naming the type and ``--trust-pickle``, and the marker must never
appear. Our own files (the toy run's checkpoint and dumps, a reference-layout detectron2 checkpoint) still
load, with the same content as a full unpickling gives.
"""
import glob
import os
import os.path as osp
import pickle
import re

import numpy as np
import pytest
import torch

from speaq_mm.utils import UntrustedFileError, load_pickle_file, load_torch_file
from tests.datasets_fixtures import load_tool
from tests.safety_fixtures import Payload
from tests.tools_fixtures import REPO, TOY_MIX_CONFIG, fabricate, one_torch_thread, tool_test_options


def refused(path):
    """The message every refusal must carry: the file, the offending global and the per-file opt-in."""
    return re.escape(str(path)) + r'.*(builtins\.)?exec.*--trust-pickle ' + re.escape(str(path))


def malicious_checkpoint(run, folder, marker):
    checkpoint = load_torch_file(run.checkpoint)
    checkpoint['meta']['payload'] = Payload(marker)
    path = osp.join(folder, 'shared_model.pth')
    torch.save(checkpoint, path)
    return path


def _argv(options):
    return [f'{key}={value}' for key, value in options.items()]


def test_our_checkpoint_loads_safely_with_the_same_content(toy_run):
    safe = load_torch_file(toy_run.checkpoint)
    full = torch.load(toy_run.checkpoint, map_location='cpu', weights_only=False)
    assert safe['state_dict'].keys() == full['state_dict'].keys()
    assert all(torch.equal(safe['state_dict'][k], full['state_dict'][k]) for k in full['state_dict'])
    assert safe['meta']['dataset_meta']['classes'] == full['meta']['dataset_meta']['classes']
    hub = safe['message_hub']['log_scalars']
    assert hub and all(buffer.mean() == full['message_hub']['log_scalars'][key].mean() for key, buffer in hub.items())


def test_test_tool_refuses_a_malicious_checkpoint(tmp_path, marker, toy_run):
    path = malicious_checkpoint(toy_run, str(tmp_path), marker)
    work_dir = tmp_path / 'test'
    with one_torch_thread(), pytest.raises(UntrustedFileError, match=refused(path)):
        load_tool('tools/test.py').main([TOY_MIX_CONFIG, path, '--work-dir', str(work_dir), '--cfg-options']
                                        + _argv(tool_test_options(toy_run.real_root, 'malicious_test')))
    assert not glob.glob(str(work_dir / '**' / 'metrics.json'), recursive=True)


def test_image_demo_refuses_a_malicious_checkpoint(tmp_path, marker, toy_run):
    path = malicious_checkpoint(toy_run, str(tmp_path), marker)
    image = sorted(glob.glob(osp.join(toy_run.real_root, 'VG_100K', '*.jpg')))[0]
    with pytest.raises(UntrustedFileError, match=refused(path)):
        load_tool('tools/demo/image_demo.py').main([image, TOY_MIX_CONFIG, path, '--out-dir', str(tmp_path / 'out'),
                                                    '--device', 'cpu'])
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


def test_trust_pickle_opts_in_for_that_one_file_only(tmp_path, toy_run):
    marker = tmp_path / 'ran'
    trusted = malicious_checkpoint(toy_run, str(tmp_path), marker)
    other = osp.join(tmp_path, 'other.pth')
    os.link(trusted, other)  # the same bytes under another name stay untrusted
    (tmp_path / 'elsewhere').mkdir()
    same_name = str(tmp_path / 'elsewhere' / osp.basename(trusted))  # and under the same name in another folder
    os.link(trusted, same_name)
    tool = load_tool('tools/analysis/query_specialisation.py')
    from speaq_mm.utils import safe_loading
    safe_loading.trust_file(trusted)
    try:
        for untrusted in (other, same_name):
            with pytest.raises(UntrustedFileError, match=refused(untrusted)):
                tool.load_inputs(untrusted, TOY_MIX_CONFIG, None)
    finally:
        safe_loading._trusted_files.clear()
    assert not marker.exists()
    from speaq_mm.utils import safe_loading
    safe_loading.trust_file(trusted)
    try:
        with pytest.warns(UserWarning, match='full unpickling'):
            tool.load_inputs(trusted, TOY_MIX_CONFIG, None)
    finally:
        safe_loading._trusted_files.clear()
    assert marker.exists(), 'a trusted file is unpickled in full'


def test_query_tool_never_runs_the_config_stored_in_a_checkpoint(tmp_path, marker, toy_run):
    checkpoint = load_torch_file(toy_run.checkpoint)
    checkpoint['meta']['cfg'] = f'open({str(marker)!r}, "w").close()\nmodel = dict(type="SpeaQDetector")\n'
    path = str(tmp_path / 'config_payload.pth')
    torch.save(checkpoint, path)
    tool = load_tool('tools/analysis/query_specialisation.py')
    with pytest.raises(SystemExit):  # --config is required: the settings never come from the checkpoint
        tool.parse_args([toy_run.raw_dump, '--checkpoint', path])
    settings, predicates, counts = tool.load_inputs(path, TOY_MIX_CONFIG, None)
    assert settings['num_relation_queries'] > 0 and len(predicates) == len(counts)


def test_query_tool_refuses_malicious_checkpoint_and_dump(tmp_path, marker, toy_run):
    path = malicious_checkpoint(toy_run, str(tmp_path), marker)
    tool = load_tool('tools/analysis/query_specialisation.py')
    with pytest.raises(UntrustedFileError, match=refused(path)):
        tool.main([toy_run.raw_dump, '--config', TOY_MIX_CONFIG, '--checkpoint', path, '--out-dir', str(tmp_path)])
    dump = tmp_path / 'raw.pkl'
    dump.write_bytes(pickle.dumps([Payload(marker)]))
    with pytest.raises(UntrustedFileError, match=refused(dump)):
        tool.main([str(dump), '--config', TOY_MIX_CONFIG, '--checkpoint', toy_run.checkpoint,
                   '--out-dir', str(tmp_path)])


@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
def test_offline_evaluator_refuses_malicious_dump_and_metainfo(tmp_path, marker, protocol, toy_run):
    tool = load_tool('tools/analysis/eval_scene_graphs.py')
    records = load_pickle_file(toy_run.dump)
    dump = tmp_path / 'preds.pkl'
    dump.write_bytes(pickle.dumps([dict(records[0], img_id=Payload(marker))] + records[1:], protocol=protocol))
    with pytest.raises(UntrustedFileError, match=refused(dump)):
        tool.main([str(dump)])
    meta = tmp_path / 'meta.pkl'
    meta.write_bytes(pickle.dumps(dict(predicates=Payload(marker)), protocol=protocol))
    with pytest.raises(UntrustedFileError, match=refused(meta)):
        tool.main([toy_run.dump, '--dataset-meta', str(meta)])


def test_our_dumps_load_safely_with_the_same_content(toy_run):
    for path in (toy_run.dump, toy_run.raw_dump):  # our records; mmengine's DumpResults data samples (tensors)
        with open(path, 'rb') as file:
            full = pickle.load(file)
        safe = load_pickle_file(path)
        assert len(safe) == len(full) > 0
        for ours, theirs in zip(safe, full):
            assert ours.keys() == theirs.keys()
            for key, value in theirs.items():
                if isinstance(value, np.ndarray):
                    assert np.array_equal(ours[key], value)


def test_converter_refuses_malicious_reference_checkpoint(tmp_path, marker):
    source = tmp_path / 'model_final.pth'
    torch.save(dict(model=fabricate('DETR'), iteration=10, trainer=Payload(marker)), source)
    destination = tmp_path / 'converted.pth'
    with pytest.raises(UntrustedFileError, match=refused(source)):
        load_tool('tools/model_converters/speaq_d2_to_mm.py').main([str(source), str(destination)])
    assert not destination.exists()


@pytest.mark.parametrize('suffix', ['.pth', '.pkl'])
def test_converter_reads_reference_layout_checkpoints_safely(tmp_path, suffix):
    """detectron2 writes .pth files with torch.save (tensors, optimizer and scheduler state); its model zoo
    .pkl files are plain pickles of numpy arrays."""
    state = fabricate('DETR', seed=1)
    source = tmp_path / f'vg_objectdetector_pretrained{suffix}'
    if suffix == '.pth':
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
        torch.save(dict(model=state, optimizer=optimizer.state_dict(), scheduler=dict(milestones={10: 1}),
                        iteration=100), source)
    else:
        source.write_bytes(pickle.dumps(dict(model={k: v.numpy() for k, v in state.items()},
                                             __author__='Detectron2 Model Zoo')))
    destination = tmp_path / 'detr_mm.pth'
    report = load_tool('tools/model_converters/speaq_d2_to_mm.py').main([str(source), str(destination)])
    assert report['kind'] == 'DETR'
    converted = load_torch_file(destination)['state_dict']
    assert torch.equal(converted['query_embedding.weight'], state['detr.query_embed.weight'])


def test_no_unrestricted_unpickling_outside_the_opt_in():
    """``weights_only=False`` and plain ``pickle.load`` appear only behind ``--trust-pickle``."""
    offenders = []
    for folder in ('speaq_mm', 'tools', 'projects'):
        for path in glob.glob(osp.join(REPO, folder, '**', '*.py'), recursive=True):
            if path.endswith(osp.join('utils', 'safe_loading.py')):
                continue
            with open(path) as file:
                text = file.read()
            for pattern in ('weights_only=False', 'pickle.load(', 'pickle.loads(', 'Unpickler(', 'fromstring('):
                if pattern in text:
                    offenders.append(f'{osp.relpath(path, REPO)}: {pattern}')
    assert offenders == []
    with open(osp.join(REPO, 'speaq_mm', 'utils', 'safe_loading.py')) as file:
        text = file.read()
    assert text.count('weights_only=False') == 1 and text.count('pickle.Unpickler(file)') == 1
    assert text.count('if trusted:') == 1 and text.count('if is_trusted(path):') == 1


class AttributeWalk:
    """``getattr(getattr, '__self__')`` is the builtins module: the first step from a plain ``getattr`` to
    ``eval``. Our checkpoints need ``getattr`` only for ``HistoryBuffer``'s statistics methods."""

    def __reduce__(self):
        return getattr, (getattr, '__self__')


def test_checkpoint_getattr_resolves_only_history_buffer_methods(tmp_path):
    path = tmp_path / 'walk.pth'
    torch.save(dict(state_dict={}, meta=dict(step=AttributeWalk())), path)
    with pytest.raises(UntrustedFileError, match=re.escape(str(path)) + r'.*getattr.*__self__.*--trust-pickle'):
        load_torch_file(path)


def assert_dump_and_checkpoint_refused(tmp_path, gadget, reason, protocol=pickle.DEFAULT_PROTOCOL):
    """Check that a prediction dump holding ``gadget`` and a checkpoint holding it in its meta are both refused
    with a message naming the file and matching ``reason``; return the dump's path."""
    dump = tmp_path / 'preds.pkl'
    dump.write_bytes(pickle.dumps([gadget], protocol=protocol))
    with pytest.raises(UntrustedFileError, match=re.escape(str(dump)) + reason):
        load_pickle_file(dump)
    checkpoint = tmp_path / 'model.pth'
    torch.save(dict(state_dict={}, meta=dict(value=gadget)), checkpoint)
    with pytest.raises(UntrustedFileError, match=re.escape(str(checkpoint)) + reason):
        load_torch_file(checkpoint)
    return dump


def test_numpy_functions_that_run_code_are_refused(tmp_path, marker):
    """numpy holds functions that execute a string (``numpy.testing``'s ``runstring``); only numpy's array,
    dtype and scalar constructors may be named by a file, never "anything from numpy"."""
    from numpy.testing import runstring

    class NumpyGadget:
        def __reduce__(self):
            return runstring, (f'open({str(marker)!r}, "w").close()', {})

    assert_dump_and_checkpoint_refused(tmp_path, NumpyGadget(), r'.*numpy\.testing.*runstring')


def test_a_plain_pickle_named_pth_is_refused_naming_the_global(tmp_path, marker):
    path = tmp_path / 'model.pth'
    path.write_bytes(pickle.dumps(dict(state_dict={}, meta=Payload(marker))))
    with pytest.raises(UntrustedFileError, match=refused(path)):
        load_torch_file(path)
    path.write_bytes(b'not a pickle at all')
    with pytest.raises(ValueError, match=re.escape(str(path)) + '.*not a readable checkpoint'):
        load_torch_file(path)


class HugeEmptyArray:
    """numpy's ``_reconstruct`` asked for 6 GB before any data: a 41-byte file."""

    def __reduce__(self):
        from speaq_mm.utils.safe_loading import _MULTIARRAY
        return _MULTIARRAY._reconstruct, (np.ndarray, (6 * 2 ** 30,), b'b')


class HugeObjectArray:
    """An object array whose ``__setstate__`` allocates its declared shape (8 GB) before it reads the items."""

    def __reduce__(self):
        from speaq_mm.utils.safe_loading import _MULTIARRAY
        return _MULTIARRAY._reconstruct, (np.ndarray, (0,), b'b'), (1, (2 ** 30,), np.dtype('O'), False, [])


@pytest.mark.parametrize('gadget', [HugeEmptyArray, HugeObjectArray])
def test_a_tiny_file_cannot_request_a_huge_allocation(tmp_path, gadget):
    dump = assert_dump_and_checkpoint_refused(tmp_path, gadget(), r'.*(shape|objects)', protocol=2)
    assert dump.stat().st_size < 256


def test_arrays_of_every_plain_dtype_still_load(tmp_path):
    arrays = [(np.arange(6) % 2).astype(dtype).reshape(2, 3) for dtype in (np.uint8, np.int32, np.int64, np.float32,
                                                                   np.float64, np.bool_)]
    arrays += [np.array(['a', 'bc']), np.zeros(0), np.float32(2.5), np.asfortranarray(np.ones((2, 3)))]
    dump = tmp_path / 'arrays.pkl'
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        dump.write_bytes(pickle.dumps(arrays, protocol=protocol))
        for ours, theirs in zip(load_pickle_file(dump), arrays):
            assert np.array_equal(ours, theirs) and ours.dtype == theirs.dtype


class ReboundStatistics:
    """A ``HistoryBuffer`` whose pickled statistics table maps ``'mean'`` to ``HistoryBuffer.max``."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        state = dict(max_length=10, _log_history=np.array([1.0, 5.0]), _count_history=np.array([1, 1]),
                     statistics_methods=dict(HistoryBuffer._statistics_methods, mean=HistoryBuffer.max))
        return HistoryBuffer, (), state


def test_a_history_buffer_cannot_rebind_the_statistics_of_the_process(tmp_path):
    from mmengine.logging import HistoryBuffer
    table = dict(HistoryBuffer._statistics_methods)
    path = tmp_path / 'model.pth'
    torch.save(dict(state_dict={}, message_hub=dict(log_scalars=dict(loss=ReboundStatistics()))), path)
    try:
        with pytest.raises(UntrustedFileError, match=re.escape(str(path)) + r".*statistic 'mean' is HistoryBuffer.max"):
            load_torch_file(path)
        assert HistoryBuffer([1.0, 5.0], [1, 1]).statistics('mean') == 3.0
    finally:
        HistoryBuffer._statistics_methods.clear()
        HistoryBuffer._statistics_methods.update(table)


def test_mmengine_load_of_a_pickle_is_restricted(tmp_path, marker):
    """``mmengine.load`` (an mmengine dataset's ``.pkl`` annotation file, mmdet's tools) uses the restricted
    unpickler too; plain data still loads."""
    import mmengine
    path = tmp_path / 'annotations.pkl'
    path.write_bytes(pickle.dumps(dict(data_list=[dict(img_id=1, boxes=np.ones((2, 4)))], meta=Payload(marker))))
    with pytest.raises(UntrustedFileError, match=r'(builtins\.)?exec'):
        mmengine.load(str(path))
    path.write_bytes(pickle.dumps(dict(data_list=[dict(img_id=1, boxes=np.ones((2, 4)))])))
    assert np.array_equal(mmengine.load(str(path))['data_list'][0]['boxes'], np.ones((2, 4)))
