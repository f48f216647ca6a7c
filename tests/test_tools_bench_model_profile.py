"""tools/benchmarks/bench_model.py --profile (the command of docs/benchmarks.md, "Per-stage profile") on the
tiny model: a table row for every stage of a training step and of an inference batch, and their host round
trips."""
from speaq_mm.testing.stage_profile import STAGES
from tests.datasets_fixtures import REPO_ROOT, load_tool


def test_profile_prints_every_stage_and_the_round_trips(capsys):
    main = load_tool('tools/benchmarks/bench_model.py').main
    main(['--config', f'{REPO_ROOT}/configs/_base_/models/speaq_tiny.py', '--profile', '--height', '48',
          '--width', '64', '--objects', '4', '--relations', '5', '--iters', '1', '--threads', '1'])
    out = capsys.readouterr().out
    training, inference = out.split('**inference batch**')
    for name, _ in STAGES:
        if name != 'post-processing':
            assert f'| {name} |' in training, name
    for name in ('backbone + input projection', 'encoder', 'subject decoder', 'relation decoder',
                 'post-processing'):
        assert f'| {name} |' in inference, name
    assert '| host round trips (HostSyncCounter) | 3 |' in training
    assert '| host round trips (HostSyncCounter) | 1 |' in inference
