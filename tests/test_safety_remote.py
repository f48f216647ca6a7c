"""Checkpoints from every source mmengine accepts load with the allow-list only, and never run code.

A malicious checkpoint (its pickle creates a marker file when unpickled) is served by an HTTP server on
127.0.0.1 and reached through ``load_from``, ``--resume``, ``mmdet.apis.init_detector``, the R-101 recipes'
``torchvision://`` backbone init and the other schemes; each must refuse it with a message, download it into a
``$TORCH_HOME`` of the test only, and refuse the cached copy again without asking the server. A checkpoint
whose stored config is Python is never executed by mmdet's ``DetInferencer`` or by a resume.
"""
import contextlib
import hashlib
import http.server
import os
import os.path as osp
import re
import sys
import threading
import types

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from speaq_mm.engine import mmengine_compat
from speaq_mm.engine.mmengine_compat import CHECKPOINT_LOADERS, ChecksumError
from speaq_mm.utils import UntrustedFileError, safe_loading
from tests.datasets_fixtures import load_tool
from tests.reliability_fixtures import write_run_config
from tests.safety_fixtures import Payload
from tests.tools_fixtures import REPO, TOY_MIX_CONFIG, one_torch_thread

SERVER_LIFETIME_S = 120  # the server stops by itself even if a test hangs


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_folder(folder):
    """Serve ``folder`` on 127.0.0.1 (never another interface) in a thread; yields ``(base_url, requests)``,
    the list of paths asked for."""
    requests = []

    class Handler(_QuietHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    stopper = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    stopper.daemon = True
    thread.start()
    stopper.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}', requests
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A ``$TORCH_HOME`` of this test only; yields the folder downloads are cached in."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    yield tmp_path / 'torch_home' / 'hub' / 'checkpoints'


def sha256(path):
    with open(path, 'rb') as file:
        return hashlib.sha256(file.read()).hexdigest()


def write_malicious(folder, marker, name='shared_model.pth'):
    """A checkpoint whose pickle runs code; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, name)
    torch.save(dict(state_dict={}, meta=dict(epoch=0, iter=0, payload=Payload(marker))), path)
    return path


def write_plain(folder, name, seed=0):
    """A checkpoint of tensors only (what a published backbone holds); returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, name)
    torch.save(dict(state_dict={'weight': torch.randn(3, generator=torch.Generator().manual_seed(seed))}), path)
    return path


def hashed_name(path, stem):
    """Rename ``path`` to ``<stem>-<first 8 hex digits of its sha256>.pth`` (torch.hub's convention)."""
    renamed = osp.join(osp.dirname(path), f'{stem}-{sha256(path)[:8]}.pth')
    os.replace(path, renamed)
    return osp.basename(renamed)


def refusal(cached):
    return re.escape(str(cached)) + r'.*downloaded from http://127\.0\.0\.1.*(builtins\.)?exec.*--trust-pickle'


@pytest.fixture
def train_config(reliability_toy_data, tmp_path):
    """The toy mix recipe on the shared toy sets, two iterations, no validation."""
    return write_run_config(str(tmp_path / 'run'), reliability_toy_data, max_iters=2, interval=2,
                            validate=False)


def test_load_from_a_url_is_refused_and_so_is_the_cached_copy(tmp_path, torch_home, marker, train_config):
    served = write_malicious(tmp_path / 'served', marker)
    train = load_tool('tools/train.py')
    with serve_folder(tmp_path / 'served') as (base, requests):
        url = f'{base}/shared_model.pth'
        with one_torch_thread(), pytest.raises(UntrustedFileError, match=refusal(torch_home / 'shared_model.pth')):
            train.main([train_config, '--work-dir', str(tmp_path / 'work'), '--cfg-options', f'load_from={url}'])
        assert requests == ['/shared_model.pth']
        assert sha256(torch_home / 'shared_model.pth') == sha256(served)
        # The cached copy is refused in the same way, without asking the server again.
        with one_torch_thread(), pytest.raises(UntrustedFileError, match=refusal(torch_home / 'shared_model.pth')):
            train.main([train_config, '--work-dir', str(tmp_path / 'work2'), '--cfg-options', f'load_from={url}'])
        assert requests == ['/shared_model.pth']
    assert not list((tmp_path / 'work').glob('**/*.pth'))


def test_resume_from_a_url_is_refused(tmp_path, torch_home, marker, train_config):
    write_malicious(tmp_path / 'served', marker)
    with serve_folder(tmp_path / 'served') as (base, _):
        with one_torch_thread(), pytest.raises(UntrustedFileError, match=refusal(torch_home / 'shared_model.pth')):
            load_tool('tools/train.py').main([train_config, '--work-dir', str(tmp_path / 'work'),
                                              '--resume', f'{base}/shared_model.pth'])


def test_init_detector_with_a_url_is_refused(tmp_path, torch_home, marker):
    from mmdet.apis import init_detector
    write_malicious(tmp_path / 'served', marker)
    with serve_folder(tmp_path / 'served') as (base, _):
        url = f'{base}/shared_model.pth'
        for _ in range(2):  # downloaded, then cached
            with pytest.raises(UntrustedFileError, match=refusal(torch_home / 'shared_model.pth')):
                init_detector(TOY_MIX_CONFIG, url, device='cpu')


def test_a_file_is_checked_against_the_hash_in_its_name(tmp_path, torch_home, marker):
    served = tmp_path / 'served'
    good = hashed_name(write_plain(served, 'model.pth'), 'model')
    forged = f'forged-{good.split("-")[1]}'  # another file under a name claiming the good file's hash
    write_malicious(served, marker, forged)
    with serve_folder(served) as (base, requests):
        with pytest.raises(ChecksumError, match=re.escape(f'{base}/{forged}') + '.*invalid hash value'):
            CheckpointLoader.load_checkpoint(f'{base}/{forged}')
        assert not (torch_home / forged).exists(), 'a download that fails its hash must not enter the cache'
        weights = CheckpointLoader.load_checkpoint(f'{base}/{good}')['state_dict']['weight']
        assert torch.equal(weights, torch.load(served / good)['state_dict']['weight'])
        # A cached file changed after the download is refused on every later load.
        write_plain(torch_home, good, seed=1)
        with pytest.raises(ChecksumError, match=re.escape(str(torch_home / good)) + '.*does not start with'):
            CheckpointLoader.load_checkpoint(f'{base}/{good}')
        assert requests == [f'/{forged}', f'/{good}']


def test_a_sha256_fragment_pins_the_whole_hash(tmp_path, torch_home):
    served = tmp_path / 'served'
    path = write_plain(served, 'plain.pth')
    digest = sha256(path)
    with serve_folder(served) as (base, requests):
        wrong = digest[:-1] + ('0' if digest[-1] != '0' else '1')
        with pytest.raises(ChecksumError, match='invalid hash value.*nothing was cached'):
            CheckpointLoader.load_checkpoint(f'{base}/plain.pth#sha256={wrong}')
        CheckpointLoader.load_checkpoint(f'{base}/plain.pth#sha256={digest}')
        assert requests == ['/plain.pth', '/plain.pth'], 'the fragment is never sent'
        write_plain(torch_home, 'plain.pth', seed=1)
        with pytest.raises(ChecksumError):
            CheckpointLoader.load_checkpoint(f'{base}/plain.pth#sha256={digest}')
    with pytest.raises(ValueError, match='#sha256='):
        CheckpointLoader.load_checkpoint(f'{base}/plain.pth#md5=abc')


def test_the_r101_recipes_torchvision_backbone_init_is_checked_and_safe(tmp_path, torch_home, marker, monkeypatch):
    """``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')`` of configs/detr_r101_vg150.py,
    with torchvision's catalogue pointed at the local server."""
    from mmdet.registry import MODELS
    served = tmp_path / 'served'
    name = hashed_name(write_malicious(served, marker), 'resnet101')
    backbone = Config.fromfile(osp.join(REPO, 'configs', 'detr_r101_vg150.py')).model.backbone
    assert backbone.init_cfg.checkpoint == 'torchvision://resnet101'
    with serve_folder(served) as (base, _):
        monkeypatch.setattr(mm_checkpoint, 'get_torchvision_models', lambda: {'resnet101': f'{base}/{name}'})
        with pytest.raises(UntrustedFileError, match=refusal(torch_home / name)):
            MODELS.build(backbone).init_weights()


@pytest.mark.parametrize('scheme', ['modelzoo', 'open-mmlab', 'openmmlab', 'mmcls'])
def test_catalogue_schemes_go_through_the_same_loader(tmp_path, torch_home, marker, monkeypatch, scheme):
    served = tmp_path / 'served'
    write_malicious(served, marker)
    with serve_folder(served) as (base, _):
        catalogue = lambda: {'evil': f'{base}/shared_model.pth'}  # noqa: E731
        for getter in ('get_torchvision_models', 'get_external_models', 'get_mmcls_models'):
            monkeypatch.setattr(mm_checkpoint, getter, catalogue)
        with pytest.raises(UntrustedFileError, match=refusal(torch_home / 'shared_model.pth')):
            CheckpointLoader.load_checkpoint(f'{scheme}://evil')


def test_open_mmlab_local_files_under_mmengine_home(tmp_path, marker, monkeypatch):
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine_home'))
    path = write_malicious(tmp_path / 'mmengine_home', marker, 'evil.pth')
    (tmp_path / 'mmengine_home' / 'open_mmlab.json').write_text('{"evil": "evil.pth"}')
    with pytest.raises(UntrustedFileError, match=re.escape(path) + r'.*exec'):
        CheckpointLoader.load_checkpoint('open-mmlab://evil')


def test_s3_petrel_and_pavi_bytes_load_with_the_allow_list(tmp_path, marker, monkeypatch):
    path = write_malicious(tmp_path, marker)
    with open(path, 'rb') as file:
        data = file.read()

    class Backend:
        def get(self, filepath):
            return data

    monkeypatch.setattr(mmengine_compat, 'get_file_backend', lambda *args, **kwargs: Backend())
    for url in ('s3://bucket/model.pth', 'cluster:s3://bucket/model.pth', 'petrel://bucket/model.pth'):
        with pytest.raises(UntrustedFileError, match=re.escape(url) + r'.*exec.*--trust-pickle ' + re.escape(url)):
            CheckpointLoader.load_checkpoint(url)

    class Model:
        name = '../../escape.pth'

        def download(self, destination):
            with open(destination, 'wb') as file:
                file.write(data)

    pavi = types.ModuleType('pavi')
    pavi.modelcloud = types.SimpleNamespace(get=lambda path: Model())
    monkeypatch.setitem(sys.modules, 'pavi', pavi)
    with pytest.raises(UntrustedFileError, match=r'from pavi://project/model.*exec'):
        CheckpointLoader.load_checkpoint('pavi://project/model')


def test_every_checkpoint_source_mmengine_knows_uses_our_loaders():
    assert set(CheckpointLoader._schemes) == set(CHECKPOINT_LOADERS)
    assert all(CheckpointLoader._schemes[prefix] is loader for prefix, loader in CHECKPOINT_LOADERS.items())


def test_trust_pickle_for_a_url_or_its_cached_copy(tmp_path, torch_home, monkeypatch):
    marker = tmp_path / 'ran'
    write_malicious(tmp_path / 'served', marker)
    with serve_folder(tmp_path / 'served') as (base, _):
        url = f'{base}/shared_model.pth'
        monkeypatch.setattr(safe_loading, '_trusted_files', set())
        safe_loading.trust_file(url)
        with pytest.warns(UserWarning, match='full unpickling'):
            CheckpointLoader.load_checkpoint(url)
    assert marker.exists()


def test_det_inferencer_never_runs_the_config_stored_in_a_checkpoint(tmp_path, marker):
    from mmdet.apis import DetInferencer
    config_payload = tmp_path / 'config_payload.pth'
    torch.save(dict(state_dict={}, meta=dict(cfg=f'open({str(marker)!r}, "w").close()\nmodel = dict()\n'),
                    message_hub=dict(runtime_info=dict(cfg=f'open({str(marker)!r}, "w").close()\n'))), config_payload)
    malicious = write_malicious(tmp_path, marker)
    for weights in (str(config_payload), malicious):
        with pytest.raises(ValueError, match=r'no config.*DetInferencer\(model=CONFIG_FILE'):
            DetInferencer(weights=weights, device='cpu')
    with pytest.raises(UntrustedFileError, match=re.escape(malicious) + r'.*exec'):
        DetInferencer(model=TOY_MIX_CONFIG, weights=malicious, device='cpu')


def test_resume_never_runs_the_config_stored_in_a_checkpoint(tmp_path, marker, train_config):
    """mmengine's ``Runner.resume`` executes ``meta.config`` (to compare GPU counts); ours drops it."""
    from mmdet.registry import MODELS
    path = tmp_path / 'config_payload.pth'
    state_dict = MODELS.build(Config.fromfile(TOY_MIX_CONFIG).model).state_dict()  # passes the compatibility check
    torch.save(dict(state_dict=state_dict, meta=dict(epoch=0, iter=0, config=f'open({str(marker)!r}, "w").close()\n')),
               path)
    with one_torch_thread(), pytest.raises(KeyError):  # past the stored config: no message hub, no optimizer
        load_tool('tools/train.py').main([train_config, '--work-dir', str(tmp_path / 'work'), '--resume', str(path)])
    assert not marker.exists()


def test_a_source_we_have_not_reviewed_is_refused(marker, monkeypatch):
    """A scheme a later mmengine (or another package) registers gets a refusal when speaq_mm installs its
    loaders, instead of loading with whatever that loader does."""
    def unreviewed_loader(filename, map_location=None):
        open(marker, 'w').close()

    monkeypatch.setattr(CheckpointLoader, '_schemes', dict(CheckpointLoader._schemes))
    CheckpointLoader.register_scheme('newstore://', unreviewed_loader)
    mmengine_compat.install_checkpoint_loaders()
    with pytest.raises(RuntimeError, match=r"newstore://model\.pth: .*'newstore://'.*not reviewed"):
        CheckpointLoader.load_checkpoint('newstore://model.pth')


def test_init_detector_loads_a_published_checkpoint_from_a_url(reliability_toy_data, tmp_path, torch_home):
    """The same path loads a real checkpoint: the toy model's weights, published under a hashed name."""
    from mmdet.apis import init_detector
    from mmdet.registry import MODELS
    torch.manual_seed(3)
    state_dict = MODELS.build(Config.fromfile(TOY_MIX_CONFIG).model).state_dict()
    (tmp_path / 'served').mkdir()
    torch.save(dict(state_dict=state_dict, meta=dict(epoch=1, iter=10)), tmp_path / 'served' / 'speaq.pth')
    name = hashed_name(str(tmp_path / 'served' / 'speaq.pth'), 'speaq_tiny_toy')
    with serve_folder(tmp_path / 'served') as (base, _):
        model = init_detector(TOY_MIX_CONFIG, f'{base}/{name}', device='cpu', cfg_options={
            'test_dataloader.dataset.data_root': reliability_toy_data['real']})
    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state_dict.items())
