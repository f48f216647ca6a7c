"""Benchmark: building the VG150 train/val/test record lists with VGH5Dataset vs the reference loader logic.

Generates VG150-sized annotations once (``make_toy_scenes.py --preset vg150-scale``: 108,073 images,
1,145,398 boxes, 622,705 relations, the 4 corrupted image-data entries), then measures, each in a fresh
subprocess so that peak memory is the process's own:

- ``ours``: ``VGH5Dataset`` for train, val and test (every record reachable through ``get_data_info``),
  plus the time to materialise every record once;
- ``reference``: a straightforward re-implementation of the reference loaders' logic (drop the corrupted
  json entries in a loop, then one Python iteration per image building annotation dicts), for the same
  three splits;
- ``compare``: both in one process, checking that every record is identical (boxes bit for bit).

Usage::

    python tools/benchmarks/bench_dataset.py [--data-dir work_dirs/bench_vg150] [--repeats 3]
        [--append-to docs/benchmarks.md]
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SPLITS = ('train', 'val', 'test')


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_ours(data_dir: str) -> dict:
    """The three VGH5Dataset splits."""
    from speaq_mm.datasets.vg_h5 import VGH5Dataset
    return {split: VGH5Dataset(data_root=data_dir, split=split) for split in SPLITS}


def build_reference(data_dir: str, num_val_images: int = 5000, box_scale: int = 1024) -> dict:
    """The reference loaders' logic, written plainly: per-image loop, list of dicts per split.

    Mirrors the steps of the reference loader (docs/benchmarks.md, "VG150 record lists")
    with the recipe's options (filter_empty_rels on,
    filter_non_overlap off), including the attribute rows every record carries.
    """
    import h5py
    with open(osp.join(data_dir, 'image_data.json')) as f:
        image_data = json.load(f)
    corrupted = ['1592', '1722', '4616', '4617']
    kept = []
    for entry in image_data:
        if str(entry['image_id']) in corrupted:
            continue
        kept.append(entry)
    h5 = h5py.File(osp.join(data_dir, 'VG-SGG-with-attri.h5'), 'r')
    assert len(kept) == len(h5['split'])
    all_labels = h5['labels'][:, 0]
    all_attributes = h5['attributes'][:, :]
    all_boxes = h5[f'boxes_{box_scale}'][:]
    all_boxes[:, :2] = all_boxes[:, :2] - all_boxes[:, 2:] / 2
    all_boxes[:, 2:] = all_boxes[:, :2] + all_boxes[:, 2:]
    all_relations = h5['relationships'][:]
    all_predicates = h5['predicates'][:, 0]
    records = {}
    for split in SPLITS:
        mask = h5['split'][:] == (2 if split == 'test' else 0)
        mask &= h5['img_to_first_box'][:] >= 0
        mask &= h5['img_to_first_rel'][:] >= 0
        index = np.where(mask)[0]
        if split == 'val':
            index = index[:num_val_images]
        elif split == 'train':
            index = index[num_val_images:]
        first_box, last_box = h5['img_to_first_box'][:][index], h5['img_to_last_box'][:][index]
        first_rel, last_rel = h5['img_to_first_rel'][:][index], h5['img_to_last_rel'][:][index]
        split_records = []
        for i, row in enumerate(index):
            entry = kept[row]
            boxes = all_boxes[first_box[i]:last_box[i] + 1, :]
            labels = all_labels[first_box[i]:last_box[i] + 1]
            attributes = all_attributes[first_box[i]:last_box[i] + 1, :]
            pairs = all_relations[first_rel[i]:last_rel[i] + 1] - first_box[i]
            predicates = all_predicates[first_rel[i]:last_rel[i] + 1] - 1
            longer = max(entry['height'], entry['width'])
            annotations = []
            for k in range(len(boxes)):
                annotations.append({
                    'bbox': (boxes[k] / box_scale * longer).tolist(),
                    'category_id': labels[k] - 1,
                    'attribute': attributes[k]
                })
            split_records.append({
                'file_name': osp.join(data_dir, 'VG_100K', f'{entry["image_id"]}.jpg'),
                'image_id': entry['image_id'], 'height': entry['height'], 'width': entry['width'],
                'annotations': annotations, 'relations': np.column_stack((pairs, predicates))})
        records[split] = split_records
    h5.close()
    return records


def worker(kind: str, data_dir: str) -> dict:
    """Run one measurement in this process and return its numbers."""
    import speaq_mm  # noqa: F401  (both variants pay the same import cost)
    baseline = peak_rss_mib()
    start = time.perf_counter()
    if kind == 'ours':
        datasets = build_ours(data_dir)
        seconds = time.perf_counter() - start
        sizes = {split: len(dataset) for split, dataset in datasets.items()}
        build_peak = peak_rss_mib()
        start = time.perf_counter()
        for dataset in datasets.values():
            for i in range(len(dataset)):
                dataset.get_data_info(i)
        return dict(seconds=seconds, peak_rss_mib=build_peak, baseline_rss_mib=baseline, sizes=sizes,
                    materialise_all_seconds=time.perf_counter() - start)
    if kind == 'reference':
        records = build_reference(data_dir)
        return dict(seconds=time.perf_counter() - start, peak_rss_mib=peak_rss_mib(),
                    baseline_rss_mib=baseline, sizes={
                        split: len(r)
                        for split, r in records.items()
                    })
    if kind == 'compare':
        return compare(build_ours(data_dir), build_reference(data_dir))
    raise ValueError(kind)


def compare(ours: dict, reference: dict) -> dict:
    """Check that both loaders give identical records for every image of every split."""
    checked = 0
    for split in SPLITS:
        assert len(ours[split]) == len(reference[split]), split
        for i, expected in enumerate(reference[split]):
            record = ours[split].get_data_info(i)
            assert record['img_id'] == expected['image_id'] and record['img_path'] == expected['file_name']
            assert (record['height'], record['width']) == (expected['height'], expected['width'])
            assert [inst['bbox']
                    for inst in record['instances']] == [a['bbox'] for a in expected['annotations']]
            assert [inst['bbox_label'] for inst in record['instances']] == \
                [int(a['category_id']) for a in expected['annotations']]
            assert np.array_equal(record['relations'], expected['relations'])
            checked += 1
    return dict(identical_records=checked)


def run_worker(kind: str, data_dir: str) -> dict:
    """Run ``worker`` in a fresh interpreter and parse its JSON line."""
    output = subprocess.run([sys.executable, __file__, '--worker', kind, '--data-dir', data_dir],
                            check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    """Generate the data if needed, run the measurements, print (and optionally append) the results."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', default=osp.join(REPO, 'work_dirs', 'bench_vg150'),
                        help='where the VG150-scale annotations are generated (reused when present)')
    parser.add_argument('--repeats', type=int, default=3, help='runs per variant; the fastest is reported')
    parser.add_argument('--skip-reference', action='store_true', help='measure VGH5Dataset only')
    parser.add_argument('--append-to', help='markdown file to append the results to (docs/benchmarks.md)')
    parser.add_argument('--worker', choices=['ours', 'reference', 'compare'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_dir)))
        return
    if not osp.isfile(osp.join(args.data_dir, 'VG-SGG-with-attri.h5')):
        subprocess.run([sys.executable, osp.join(REPO, 'tools', 'misc', 'make_toy_scenes.py'), args.data_dir,
                        '--preset', 'vg150-scale'], check=True, cwd=REPO)
    # The images are never opened; the dataset only checks that the folder exists.
    os.makedirs(osp.join(args.data_dir, 'VG_100K'), exist_ok=True)
    kinds = ['ours'] + ([] if args.skip_reference else ['reference'])
    results = {kind: min((run_worker(kind, args.data_dir) for _ in range(args.repeats)),
                         key=lambda r: r['seconds']) for kind in kinds}
    if not args.skip_reference:
        results['compare'] = run_worker('compare', args.data_dir)
    print(json.dumps(results, indent=1))
    lines = [
        '',
        f'## VG150 record lists: VGH5Dataset vs the reference loader logic ({datetime.date.today()})',
        '',
        f'Command: `python tools/benchmarks/bench_dataset.py --repeats {args.repeats}`; machine: '
        f'{platform.machine()}, {os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, '
        f'numpy {np.__version__}. Data: VG150-scale annotations from '
        '`make_toy_scenes.py --preset vg150-scale` '
        '(108,073 h5 rows, 1,145,398 boxes, 622,705 relations, 108,077 image-data entries). '
        'Time: build train+val+test, fastest of the repeats; memory: peak RSS of a fresh process that first '
        'imports speaq_mm (torch, mmdet), and the increase over that import baseline.',
        '',
        '| Loader | train / val / test images | build time (s) | peak RSS (MiB) | '
        'over import baseline (MiB) |',
        '|---|---|---|---|---|',
    ]
    for kind, label in (('ours', 'VGH5Dataset (vectorised)'), ('reference',
                                                               'reference logic (per-image loop)')):
        if kind in results:
            r = results[kind]
            sizes = ' / '.join(f'{r["sizes"][split]:,}' for split in SPLITS)
            lines.append(f'| {label} | {sizes} | {r["seconds"]:.2f} | {r["peak_rss_mib"]:.0f} | '
                         f'{r["peak_rss_mib"] - r["baseline_rss_mib"]:.0f} |')
    lines.append('')
    lines.append(f'Materialising every record of the three splits once through `get_data_info` takes '
                 f'{results["ours"]["materialise_all_seconds"]:.2f} s more (records are built on demand).')
    if 'compare' in results:
        lines.append(f'All {results["compare"]["identical_records"]:,} records are identical between the two '
                     'loaders (boxes compared bit for bit).')
    text = '\n'.join(lines) + '\n'
    print(text)
    if args.append_to:
        with open(args.append_to, 'a') as f:
            f.write(text)


if __name__ == '__main__':
    main()
