"""Fixtures shared by the test modules; pytest hands them to every test that names them.

The expensive inputs are session-scoped, so a test session makes each at most once and only when a test asks
for it. They are read-only: a test that damages files works on a copy (``reliability_fixtures.copy_toy_data``).
Helper functions and classes live in the ``*_fixtures`` modules.
"""
import os

import pytest
import torch

from tests.reliability_fixtures import free_port
from tests.sampler_fixtures import make_toy_roots
from tests.tools_fixtures import make_project_run, make_toy_run


@pytest.fixture(scope='session')
def toy_roots(tmp_path_factory):
    """Data roots (``real``, ``synthetic``) of two small toy sets: ``sampler_fixtures.TOY_SIZES`` train-split
    images and 2 test images each."""
    return make_toy_roots(str(tmp_path_factory.mktemp('toy_sets')))


@pytest.fixture(scope='session')
def toy_run(tmp_path_factory):
    """The toy training and test run of ``tools_fixtures.make_toy_run``."""
    return make_toy_run(str(tmp_path_factory.mktemp('toy_run')))


@pytest.fixture(scope='session')
def project_run(tmp_path_factory, toy_run):
    """The SyntheticMix project run of ``tools_fixtures.make_project_run``, on the toy run's real data."""
    return make_project_run(str(tmp_path_factory.mktemp('project_run')), toy_run)


@pytest.fixture(scope='session')
def reliability_toy_data(tmp_path_factory):
    """Data roots of the tiny toy sets of ``reliability_fixtures.make_toy_data``."""
    from tests.reliability_fixtures import make_toy_data  # its import installs a config-formatting cache
    return make_toy_data(str(tmp_path_factory.mktemp('reliability_toy_data')))


@pytest.fixture
def marker(tmp_path):
    """A file a malicious pickle's payload would create; the test fails if it exists afterwards (the payload
    ran)."""
    path = tmp_path / 'payload_ran'
    yield path
    assert not path.exists(), 'the payload ran'


@pytest.fixture
def one_rank_launch(monkeypatch):
    """The environment torchrun gives the only process of a launch; yields the backends of the process groups
    initialised under it. A group a test leaves alive is destroyed afterwards."""
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', LOCAL_WORLD_SIZE='1',
                           MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)
    for key in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):  # mmengine sets them for a launch; restored afterwards
        monkeypatch.setenv(key, os.environ.get(key, '1'))
    backends = []
    init_process_group = torch.distributed.init_process_group

    def recording_init(backend=None, **kwargs):
        backends.append(backend)
        return init_process_group(backend=backend, **kwargs)

    monkeypatch.setattr(torch.distributed, 'init_process_group', recording_init)
    yield backends
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
