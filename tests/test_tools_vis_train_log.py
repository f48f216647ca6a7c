"""tools/analysis/vis_train_log.py on the log of a real toy training run (tests/tools_fixtures.py)."""
import json
import os.path as osp

import numpy as np
import pytest

from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import (
    TRAIN_ITERS,
    VAL_INTERVAL,
    assert_drawing,
    figure_panels,
    read_png,
)

vis_train_log = load_tool('tools/analysis/vis_train_log.py')
# Panels per figure for the toy mix log: 2 decoder layers (d0 + final), 9 loss terms, 3 per-source terms
# + batch share + loss weight, 8 metric families (R, mR, ngR, ngmR, zR, F, head_mR, body_mR: 6 predicates leave
# the tail group empty), lr, k_mean, and grad_norm + 2 class errors.
EXPECTED_PANELS = {'loss.png': 2, 'loss_components.png': 9, 'loss_per_source.png': 5, 'val_metrics.png': 8,
                   'lr.png': 1, 'k_statistics.png': 1, 'train_other.png': 3}


@pytest.fixture(scope='module')
def plotted(toy_run, tmp_path_factory):
    """The tool run once on the toy run's work dir."""
    out_dir = tmp_path_factory.mktemp('vis_train_log')
    return vis_train_log.main(['--log-file', toy_run.work_dir, '--out-dir', str(out_dir)]), out_dir


def raw_records(path):
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


def check_figures(figures, expected):
    assert {osp.basename(path): count for path, count in figures.items()} == expected
    for path, count in figures.items():
        image = read_png(path)
        assert_drawing(image)
        rows, columns = vis_train_log.panel_grid(count)
        # Fixed size per panel (PANEL_SIZE inches at DPI), so the size also tells the grid.
        assert image.shape[:2] == (round(vis_train_log.DPI * (vis_train_log.PANEL_SIZE[1] * rows + 0.4)),
                                   round(vis_train_log.DPI * vis_train_log.PANEL_SIZE[0] * columns)), path
        assert figure_panels(image) == count, path


def test_plots_every_group_of_a_real_log(plotted):
    result, out_dir = plotted
    check_figures(result['figures'], EXPECTED_PANELS)
    assert result['notes'] == []
    assert (out_dir / 'summary.md').read_text().startswith('| run | kind | key |')
    assert (out_dir / 'summary.csv').read_text().startswith('run,kind,key,last,last_iter,best')


def test_summary_holds_last_and_best_values_of_the_log(toy_run, plotted):
    records = raw_records(toy_run.scalars)
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if 'sgg/R@50' in r]
    assert [r['step'] for r in train] == list(range(1, TRAIN_ITERS + 1))
    assert len(val) == TRAIN_ITERS // VAL_INTERVAL
    rows = {(row['kind'], row['key']): row for row in plotted[0]['summary']}
    loss = rows[('train', 'loss')]
    assert loss['last'] == pytest.approx(train[-1]['loss'])
    assert loss['best'] == pytest.approx(min(r['loss'] for r in train))
    assert loss['best_iter'] == train[int(np.argmin([r['loss'] for r in train]))]['step']
    assert loss['better'] == 'lower'
    recall = rows[('val', 'sgg/R@50')]
    # Validation is placed at the iteration it followed, not at mmengine's epoch step (0 here).
    assert recall['last_iter'] == TRAIN_ITERS and recall['better'] == 'higher'
    assert recall['best'] == pytest.approx(max(r['sgg/R@50'] for r in val))
    lr = rows[('train', 'lr')]
    assert lr['last'] == pytest.approx(train[-1]['lr']) and lr['best'] == '' and lr['better'] == ''
    assert ('train', 'real.relation_ce') in rows and ('train', 'source_frac_synthetic') in rows
    assert ('train', 'd0.loss_relation') not in rows  # earlier layers are summed in layer_total/d0
    assert rows[('train', 'layer_total/d0')]['last'] == pytest.approx(
        sum(value for key, value in train[-1].items() if key.startswith('d0.loss')))


def test_log_cut_mid_line_is_read_up_to_its_last_complete_line(toy_run, tmp_path):
    text = open(toy_run.scalars).read()
    lines = text.splitlines(keepends=True)
    cut = tmp_path / 'scalars.json'
    cut.write_text(''.join(lines[:7]) + lines[7][:40])  # a writer stopped inside line 8
    log = vis_train_log.load_run(str(cut))
    assert any('incomplete last line 8' in note for note in log.notes)
    complete = [r for r in raw_records(toy_run.scalars)[:7] if 'loss' in r]
    rows = {row['key']: row for row in vis_train_log.summary_rows([log]) if row['kind'] == 'train'}
    assert rows['loss']['last_iter'] == complete[-1]['step']
    assert rows['loss']['last'] == pytest.approx(complete[-1]['loss'])


def test_bad_lines_in_the_middle_are_skipped_and_counted(toy_run, tmp_path):
    lines = open(toy_run.scalars).read().splitlines()
    broken = tmp_path / 'scalars.json'
    broken.write_text('\n'.join(lines[:3] + ['{"loss": 1.0, "st', '[1, 2]'] + lines[3:]) + '\n')
    log = vis_train_log.load_run(str(broken))
    assert any('skipped 2 line(s)' in note and 'line 4' in note for note in log.notes)
    assert {row['key'] for row in vis_train_log.summary_rows([log])} >= {'loss', 'sgg/R@50'}


def test_several_runs_are_overlaid_with_their_legend(toy_run, tmp_path, project_run):
    result = vis_train_log.main(['--log-file', toy_run.work_dir, project_run.work_dir, '--legend', 'toy mix',
                                 'json synthetic', '--smooth', '0', '--out-dir', str(tmp_path)])
    assert {row['run'] for row in result['summary']} == {'toy mix', 'json synthetic'}
    # The project run has no validation, so the union of the groups is the toy run's.
    check_figures(result['figures'], EXPECTED_PANELS)
    weights = [row for row in result['summary'] if row['key'] == 'source_weight_synthetic']
    by_run = {row['run']: row['last'] for row in weights}
    assert by_run['toy mix'] == pytest.approx(0.5) and by_run['json synthetic'] < 0.5  # the ramp hook


def test_work_dir_sessions_are_joined_and_test_sessions_left_out(toy_run, tmp_path):
    records = raw_records(toy_run.scalars)
    work = tmp_path / 'work'
    first, second, test = (work / name / 'vis_data' for name in ('20240101_000000', '20240101_010000',
                                                                   '20240101_020000'))
    for folder in (first, second, test):
        folder.mkdir(parents=True)
    (first / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))
    # A resumed session repeating the iterations from 8 on with other values.
    resumed = [dict(r, loss=r['loss'] + 100) for r in records if r.get('step', 0) >= 8 and 'loss' in r]
    (second / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in resumed))
    (test / 'scalars.json').write_text(json.dumps({'sgg/R@50': 0.9, 'step': 0}) + '\n')
    run_log = vis_train_log.load_run(str(work))
    steps, losses = run_log.train['loss']
    assert steps.tolist() == list(range(1, TRAIN_ITERS + 1))
    assert (losses[7:] > 100).all() and (losses[:7] < 100).all()
    assert any('no training records' in note for note in run_log.notes)
    assert any('joined 2 training sessions' in note for note in run_log.notes)


def test_smoothing_is_a_debiased_ema_that_skips_non_finite_values():
    values = np.array([1.0, 3.0, np.nan, 5.0])
    smoothed = vis_train_log.smooth(values, 0.5)
    assert smoothed[0] == pytest.approx(1.0)  # no pull towards 0 at the start
    assert smoothed[1] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)
    assert smoothed[2] == pytest.approx(smoothed[1])
    assert vis_train_log.smooth(values, 0.0) is values


def test_key_classification():
    groups = vis_train_log.classify_train_keys(
        ['loss', 'd0.loss_relation', 'loss_relation', 'lr', 'k_mean', 'd1.k_mean', 'real.relation_ce',
         'source_frac_real', 'grad_norm', 'layer_total/d0'])
    assert groups['total'] == ['loss'] and groups['layer_totals'] == ['layer_total/d0']
    assert groups['loss_terms'] == ['d0.loss_relation', 'loss_relation']
    assert groups['k'] == ['d1.k_mean', 'k_mean'] and groups['lr'] == ['lr']
    assert groups['source_terms'] == ['real.relation_ce'] and groups['source_mix'] == ['source_frac_real']
    assert groups['other'] == ['grad_norm']
    assert vis_train_log.metric_family('sgg/head_mR@100') == ('head_mR', 100)
    assert vis_train_log.metric_family('coco/bbox_mAP') == ('coco/bbox_mAP', None)


def test_bad_inputs_name_the_problem(toy_run, tmp_path):
    with pytest.raises(FileNotFoundError, match='no such file or folder'):
        vis_train_log.main(['--log-file', str(tmp_path / 'missing')])
    with pytest.raises(FileNotFoundError, match='vis_data'):
        vis_train_log.main(['--log-file', str(tmp_path)])
    empty = tmp_path / 'empty.json'
    empty.write_text('\n')
    with pytest.raises(ValueError, match='no scalar records'):
        vis_train_log.main(['--log-file', str(empty)])
    with pytest.raises(ValueError, match='one name per --log-file'):
        vis_train_log.main(['--log-file', toy_run.scalars, '--legend', 'a', 'b'])
    with pytest.raises(ValueError, match='--smooth'):
        vis_train_log.main(['--log-file', toy_run.scalars, '--smooth', '1'])


def test_default_output_folder_is_beside_the_log(toy_run):
    assert vis_train_log.default_out_dir(toy_run.scalars) == osp.join(osp.dirname(toy_run.scalars), 'vis_train_log')
    assert vis_train_log.default_out_dir(toy_run.work_dir) == osp.join(toy_run.work_dir, 'vis_train_log')


def test_text_log_of_a_session_reads_its_scalars(toy_run, tmp_path):
    """``--log-file WORK_DIR/<ts>/<ts>.log``, as the original README passes it."""
    session = osp.dirname(osp.dirname(toy_run.scalars))
    text_log = osp.join(session, osp.basename(session) + '.log')
    assert osp.isfile(text_log)
    assert vis_train_log.find_scalar_logs(text_log) == [toy_run.scalars]
    result = vis_train_log.main(['--log-file', text_log, '--out-dir', str(tmp_path)])
    rows = {(row['kind'], row['key']): row for row in result['summary']}
    assert rows[('train', 'loss')]['last_iter'] == TRAIN_ITERS
    lonely = tmp_path / 'lonely' / 'lonely.log'
    lonely.parent.mkdir()
    lonely.write_text('2026/01/01 00:00:00 - mmengine - INFO - no scalars here\n')
    with pytest.raises(FileNotFoundError, match='a text log, but its session has no'):
        vis_train_log.find_scalar_logs(str(lonely))
