"""The package imports beside mmdet and its tools answer --help."""
import os.path as osp
import subprocess
import sys

import pytest

from tests.foundation_fixtures import REPO_ROOT


def test_imports_with_mmdet_models():
    result = subprocess.run([sys.executable, '-c', 'import speaq_mm, mmdet.models; print(speaq_mm.__version__)'],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __import__('speaq_mm').__version__


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py', 'tools/misc/print_config.py'])
def test_tool_help(tool):
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, tool), '--help'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'config' in result.stdout


def test_print_config_resolves_and_saves(tmp_path):
    from tests.foundation_fixtures import write_toy_config
    config = write_toy_config(str(tmp_path), max_iters=3)
    saved = tmp_path / 'out' / 'resolved.py'
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools/misc/print_config.py'), config,
         '--cfg-options', 'train_cfg.max_iters=9', '--save-path', str(saved)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'max_iters=9' in result.stdout
    assert "default_scope = 'mmdet'" in saved.read_text()


def test_environment_keeps_what_mmcv_builds_and_mmdet_bases_need(tmp_path):
    """After the install, the environment can still compile mmcv (pkg_resources, setuptools < 82) and resolve
    a config whose _base_ is an mmdet:: file (mmengine 0.10.7 looks those up through pkg_resources)."""
    config = tmp_path / 'inherits_mmdet.py'
    config.write_text("_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'\n")
    probe = ('import sys, pkg_resources, setuptools; from mmengine.config import Config\n'
             'assert int(setuptools.__version__.split(".")[0]) < 82, setuptools.__version__\n'
             'print(Config.fromfile(sys.argv[1]).model.type)')
    result = subprocess.run([sys.executable, '-c', probe, str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'FasterRCNN'


def test_every_pip_call_of_the_install_takes_the_constraints():
    """A pip step without the shared constraints can lift setuptools past 82 (torch 2.13 asks for >= 77.0.3)."""
    with open(osp.join(REPO_ROOT, 'tools', 'install.sh')) as f:
        lines = [line for line in f if not line.lstrip().startswith('#')]
    text = ''.join(lines).replace('\\\n', ' ')
    pip_calls = [line for line in text.splitlines() if '-m pip' in line or '"${PIP[@]}"' in line]
    assert len(pip_calls) >= 8
    for line in pip_calls:
        assert '-c "$CONSTRAINTS"' in line or '"${PIP[@]}"' in line, line
    assert 'PIP=("$PYTHON" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS")' in text


def test_print_config_takes_a_mix_ratio_by_source_name():
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools/misc/print_config.py'), 'configs/speaq_multi.py',
         '--cfg-options', 'train_dataloader.batch_sampler.source_ratio.real=0.5'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'source_ratio=dict(real=0.5,synthetic=0.3)' in ''.join(result.stdout.split())


def test_every_registered_name_follows_the_prefix_rule():
    """README, "Configs and registries": SpeaQ, SGG or VG in front of every name speaq_mm registers."""
    import importlib

    import mmdet.registry as registries
    from mmengine.registry import Registry

    importlib.import_module('speaq_mm')
    importlib.import_module('projects.SyntheticMix.synthetic_mix')
    ours = []
    for registry in vars(registries).values():
        if isinstance(registry, Registry):
            ours += [(name, module) for name, module in registry.module_dict.items()
                     if module.__module__.startswith(('speaq_mm', 'projects.'))]
    assert len(ours) >= 25
    assert [name for name, _ in ours if not name.startswith(('SpeaQ', 'SGG', 'VG'))] == []
