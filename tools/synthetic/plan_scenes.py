"""Plan the scenes to generate: intended scene graphs aimed at the predicate tail of a real training set
(docs/synthetic_data.md, "1. Plan"; the format: ``speaq_mm.synthetic.planning``).

    python tools/synthetic/plan_scenes.py REAL --num-scenes N --out plan.jsonl [--power 1.0 | --quotas Q.json]
        [--max-triplets 3] [--prompt-template "a photo of {scene}"] [--file-name-template "synth_{index:06d}.png"]
        [--source real] [--cfg-options KEY=VALUE ...] [--seed 0] [--overwrite]

REAL is a VG-layout folder (its split-0 rows) or a config (its training dataset; in a mix, the one whose
``source`` is ``--source``). Predicates are drawn with probability proportional to count ** -power over the
real train relations (0: uniform, 1: inverse frequency), or follow ``--quotas`` (a JSON object predicate ->
number of triplets, which also sets the number of scenes). Subject and object classes come from the real
triplets of each predicate. The printed summary compares the planned predicate shares with the real ones.
"""
import argparse
import json
import os.path as osp
from collections import Counter

from mmengine.config import DictAction

from speaq_mm.synthetic.planning import (
    DEFAULT_FILE_NAME,
    DEFAULT_PROMPT,
    ScenePlanner,
    dataset_triplets,
    real_train_dataset,
)
from speaq_mm.utils.atomic_io import atomic_write
from speaq_mm.utils.command_line import tool_parser


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = tool_parser(__doc__, real='the real dataset: a VG-layout folder or a config file')
    parser.add_argument('--out', required=True, help='the plan (JSON Lines) to write')
    parser.add_argument('--num-scenes', type=int, help='scenes to plan (not with --quotas)')
    parser.add_argument('--power', type=float, default=1.0, help='predicate probability ~ count ** -power')
    parser.add_argument('--quotas', help='JSON file: predicate -> number of planned triplets (replaces --power)')
    parser.add_argument('--max-triplets', type=int, default=3, help='triplets per scene: 1..this')
    parser.add_argument('--prompt-template', default=DEFAULT_PROMPT, help='"{scene}" becomes the scene in words')
    parser.add_argument('--file-name-template', default=DEFAULT_FILE_NAME,
                        help='file the generator writes; "{index}" is the scene number')
    parser.add_argument('--source', default='real', help='with a mix config: the source name of the real dataset')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='overrides of a config REAL, e.g. train_dataloader.dataset.datasets.0.data_root=...')
    parser.add_argument('--seed', type=int, default=0, help='seed of every draw (the plan is deterministic)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    args = parser.parse_args(argv)
    if (args.quotas is None) == (args.num_scenes is None):
        parser.error('give exactly one of --num-scenes and --quotas')
    return args


def main(argv=None) -> dict:
    """Plan, write, and print the predicate shares; return the summary."""
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        raise SystemExit(f'{args.out} exists; nothing was written. Pass --overwrite to replace it')
    quotas = None
    if args.quotas:
        with open(args.quotas, encoding='utf-8') as file:
            quotas = json.load(file)
    triplets = dataset_triplets(real_train_dataset(args.real, args.source, args.cfg_options))
    planner = ScenePlanner(triplets, power=args.power, quotas=quotas, max_triplets=args.max_triplets,
                           seed=args.seed)
    entries = planner.plan(args.num_scenes, args.prompt_template, args.file_name_template)
    atomic_write(''.join(json.dumps(entry) + '\n' for entry in entries), args.out)
    planned = Counter(r['predicate'] for entry in entries for r in entry['relations'])
    real = planner.predicate_counts
    total_planned, total_real = sum(planned.values()), sum(real.values())
    print(f'planned {len(entries)} scenes, {total_planned} triplets, '
          f'{sum(len(e["objects"]) for e in entries)} entities -> {args.out}')
    print(f'{"predicate":<20} {"real":>8} {"planned":>8}')
    for name in sorted(real, key=lambda n: -real[n]):
        print(f'{name:<20} {real[name] / total_real:>8.1%} {planned[name] / total_planned:>8.1%}')
    return dict(scenes=len(entries), triplets=total_planned, planned=dict(planned), out=args.out)


if __name__ == '__main__':
    main()
