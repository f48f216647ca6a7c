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
