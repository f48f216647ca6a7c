"""The `make bench` driver (tools/benchmarks/run_all.py) and the component benchmarks it adds, on tiny inputs.

The numbers themselves are measured by `make bench`, not here: these tests only check that every piece runs
and that the table is well formed.
"""
import pytest

from tests.datasets_fixtures import load_tool

bench_components = load_tool('tools/benchmarks/bench_components.py')
run_all = load_tool('tools/benchmarks/run_all.py')


def test_rows_give_median_min_max_and_failures():
    row = run_all.format_row('matcher', dict(workload='w', unit='s', samples=[3.0, 1.0, 2.0, 10.0, 4.0],
                                             peak_rss_mib=512.4, note='n'))
    assert row == '| matcher | w | s | 5 | 3.0000 | 1.0000 | 10.0000 | 512 | n |'
    assert run_all.format_row('sampler', dict(workload='w', unit='us per batch and rank', samples=[20.04, 19.0],
                                              peak_rss_mib=1)).split(' | ')[4:7] == ['19.5', '19.0', '20.0']
    failed = run_all.format_row('dataset', dict(error=['OSError: disk']))
    assert failed.startswith('| dataset | failed: OSError: disk |')
    section = run_all.format_section([row], 'python tools/benchmarks/run_all.py', 'machine M, torch 9', 1.0, 2.0,
                                     date='2026-01-02')
    assert '## Benchmark suite (2026-01-02)' in section and 'machine M, torch 9' in section
    assert section.splitlines()[-1] == row and section.endswith('\n')


def test_machine_line_names_the_torch_version():
    import torch
    assert f'torch {torch.__version__}' in run_all.machine_description()


@pytest.mark.slow
def test_driver_runs_a_benchmark_in_its_own_process_and_appends_the_table(tmp_path):
    out = tmp_path / 'benchmarks.md'
    out.write_text('# Benchmarks\n')
    assert run_all.main(['--quick', '--repeats', '2', '--threads', '1', '--only', 'sampler',
                         '--append-to', str(out)]) == 0
    text = out.read_text()
    assert text.startswith('# Benchmarks\n\n## Benchmark suite (')
    row = next(line for line in text.splitlines() if line.startswith('| sampler |'))
    cells = row.split(' | ')
    assert cells[2] == 'us per batch and rank' and cells[3] == '2' and float(cells[4]) > 0


def test_driver_rejects_unknown_benchmarks():
    with pytest.raises(SystemExit):
        run_all.main(['--only', 'matcher,warp_drive'])


@pytest.mark.slow
def test_component_benchmarks_return_one_time_per_run():
    for seconds in (bench_components.bench_criterion(2), bench_components.bench_inference(1, model='tiny')):
        assert len(seconds) in (1, 2) and all(s > 0 for s in seconds)
    assert 'R-101 recipe' in bench_components.describe('inference', 'cpu', 'r101')
    with pytest.raises(ValueError, match='"tiny" or "r101"'):
        bench_components.describe('inference', 'cpu', 'r50')
