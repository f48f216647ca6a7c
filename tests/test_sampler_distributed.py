"""Two processes under torchrun (gloo, CPU) build the mix dataloader from toy_mix.py and draw 50 batches."""
import json
import socket
from collections import Counter

from speaq_mm.datasets.samplers import largest_remainder_counts
from tests.sampler_fixtures import REPO_ROOT, TOY_MIX_CONFIG, make_toy_roots, run_torchrun, toy_mix_options

NUM_BATCHES = 50


def _free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_two_gloo_ranks_draw_exact_disjoint_batches(tmp_path):
    roots = make_toy_roots(str(tmp_path))
    options = toy_mix_options(roots, **{'train_dataloader.batch_size': 5,
                                        'train_dataloader.batch_sampler.infinite': True})
    out = tmp_path / 'batches.json'
    result = run_torchrun(f'{REPO_ROOT}/tests/dist_sampler_check.py', 2,
                          [TOY_MIX_CONFIG, str(out), '--num-batches', str(NUM_BATCHES), '--cfg-options',
                           *(f'{key}={value}' for key, value in options.items())], port=_free_port())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    drawn = json.loads(out.read_text())
    assert (drawn['world_size'], drawn['batch_size'], drawn['sources']) == (2, 5, ['real', 'synthetic'])
    expected = largest_remainder_counts(drawn['source_ratio'], 10).tolist()
    assert expected == [7, 3]
    weights = {'real': 1.0, 'synthetic': 0.5}
    streams = {source: [] for source in drawn['sources']}
    real_per_rank = []
    for rank_batches in drawn['batches']:
        assert [len(batch) for batch in rank_batches] == [5, 5]
        counts = [Counter(source for source, _, _ in batch) for batch in rank_batches]
        assert [sum(c[s] for c in counts) for s in drawn['sources']] == expected  # exact global composition
        real_per_rank.append([c['real'] for c in counts])
        for batch in rank_batches:
            for source, img_id, sample_weight in batch:
                assert sample_weight == weights[source]
                streams[source].append(img_id)
    # Each rank holds 3 or 4 real images, and the rank holding 4 alternates.
    assert sorted(map(tuple, real_per_rank)) == sorted([(4, 3), (3, 4)] * (NUM_BATCHES // 2))
    assert all(a != b for a, b in zip(real_per_rank, real_per_rank[1:]))
    # Within a pass over a source (its size in consecutive draws, rank 0's part of a batch first) no image
    # repeats, so the two ranks never share one; every pass covers the whole source.
    for source, size in zip(drawn['sources'], drawn['source_sizes']):
        stream = streams[source]
        assert len(stream) == NUM_BATCHES * expected[drawn['sources'].index(source)] > 2 * size
        passes = [stream[start:start + size] for start in range(0, len(stream) - size + 1, size)]
        assert all(len(set(images)) == size for images in passes)
        assert all(set(images) == set(passes[0]) for images in passes)
        tail = stream[len(passes) * size:]
        assert len(set(tail)) == len(tail)
    # SGGSourceMixHook logs the global fractions (reduced over both ranks), not each rank's own 4:1 or 3:2.
    assert all(log == {'real': 0.7, 'synthetic': 0.3} for rank_logs in drawn['logged_fractions']
               for log in rank_logs)
