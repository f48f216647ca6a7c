"""tools/analysis/per_source_report.py on the metric files of two models trained on different data mixes: the
shared toy run (toy real + toy synthetic, 70:30) and the SyntheticMix project run (toy real + a converted JSON
synthetic set, synthetic weight ramped down)."""
import csv
import json

import pytest

from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import assert_drawing, figure_panels, read_png

per_source_report = load_tool('tools/analysis/per_source_report.py')
eval_scene_graphs = load_tool('tools/analysis/eval_scene_graphs.py')


@pytest.fixture(scope='module')
def results(toy_run, project_run):
    return toy_run.metrics_json, project_run.metrics_json


def load(path):
    with open(path) as file:
        return json.load(file)


def test_table_and_figure_compare_every_predicate(results, tmp_path):
    mix, converted = results
    report = per_source_report.main([mix, converted, '--labels', 'toy 70:30', 'json synthetic',
                                     '--out-dir', str(tmp_path)])
    assert report['k'] == 50
    base, other = load(mix), load(converted)
    by_name = [{row['name']: row for row in result['per_predicate']} for result in (base, other)]
    counts = [row['train_count'] for row in report['table']]
    assert counts == sorted(counts, reverse=True) and len(report['table']) == 6
    for row in report['table']:
        assert row['recalls'] == [pytest.approx(by_name[0][row['name']]['R@50']),
                                  pytest.approx(by_name[1][row['name']]['R@50'])]
        assert row['train_count'] == by_name[0][row['name']]['train_count']
    overall = {row['metric']: row['values'] for row in report['overall']}
    assert overall['R@50'] == [pytest.approx(base['R@50']), pytest.approx(other['R@50'])]
    assert 'tail_mR@50' not in overall  # 6 predicates: head 4, body 2, no tail group
    image = read_png(report['figure'])
    assert_drawing(image)
    assert report['panels'] == 3 and figure_panels(image) == 3
    markdown = (tmp_path / 'per_source_report.md').read_text()
    assert '| predicate | group | train | test GT | toy 70:30 R@50 | json synthetic R@50 |' in markdown
    first = report['table'][0]
    delta = 100 * (first['recalls'][1] - first['recalls'][0])
    assert f'| {first["name"]} | {first["group"]} |' in markdown and f'{delta:+.1f}' in markdown
    with open(tmp_path / 'per_source_report.csv') as file:
        rows = list(csv.reader(file))
    assert rows[0][-1] == 'json synthetic - toy 70:30' and len(rows) == 1 + 6 + len(report['overall'])


def test_three_runs_and_another_k(results, tmp_path, toy_run):
    loose = tmp_path / 'iou03.json'
    eval_scene_graphs.main([toy_run.dump, '--dataset-meta', toy_run.dump[:-4] + '_meta.json', '--iou-thr', '0.3',
                            '--out-json', str(loose)])
    report = per_source_report.main(list(results) + [str(loose), '--k', '20', '--out-dir', str(tmp_path)])
    assert report['k'] == 20 and len(report['table'][0]['recalls']) == 3
    assert report['panels'] == 3 and figure_panels(read_png(report['figure'])) == 3
    # Default labels: the folder of a generic metrics file, or the file name.
    assert '| metric | test/dump_metrics | test | iou03 |' in (tmp_path / 'per_source_report.md').read_text()


def test_one_run_has_no_change_panel(results, tmp_path):
    report = per_source_report.main([results[0], '--out-dir', str(tmp_path)])
    assert report['panels'] == 2 and figure_panels(read_png(report['figure'])) == 2


def test_bad_inputs_name_the_problem(results, tmp_path):
    mix = load(results[0])
    renamed = dict(mix, per_predicate=[dict(row, name=row['name'] + '!') for row in mix['per_predicate']])
    (tmp_path / 'renamed.json').write_text(json.dumps(renamed))
    with pytest.raises(ValueError, match='predicates differ'):
        per_source_report.main([results[0], str(tmp_path / 'renamed.json'), '--out-dir', str(tmp_path)])
    (tmp_path / 'flat.json').write_text(json.dumps({'R@50': 0.5}))
    with pytest.raises(ValueError, match='no "per_predicate" table'):
        per_source_report.main([str(tmp_path / 'flat.json')])
    (tmp_path / 'broken.json').write_text('{"R@50": ')
    with pytest.raises(ValueError, match='not valid JSON'):
        per_source_report.main([str(tmp_path / 'broken.json')])
    with pytest.raises(ValueError, match='--k 7'):
        per_source_report.main([results[0], '--k', '7'])
    with pytest.raises(ValueError, match='one name per file'):
        per_source_report.main(list(results) + ['--labels', 'only one'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        per_source_report.main([str(tmp_path / 'none.json')])
