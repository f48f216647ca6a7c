"""Planning what to generate: intended scene graphs aimed at the predicate tail of a real training set
(docs/synthetic_data.md, "1. Plan"; the command line is ``tools/synthetic/plan_scenes.py``).

A plan is a JSON Lines file, one intended scene per line::

    {"file_name": "synth_000000.png", "id": "synth_000000", "prompt": "a photo of a dog on a bench",
     "objects": [{"id": 0, "name": "dog"}, {"id": 1, "name": "bench"}],
     "relations": [{"subject": 0, "object": 1, "predicate": "on"}]}

Each scene holds 1-``max_triplets`` triplets that share entities where the real data allows it. Predicates
are drawn with probability proportional to ``count ** -power`` over the predicates of the real train split
(power 0: uniform over predicates, 1: inverse frequency), or follow explicit per-predicate quotas. The subject
and object classes of a triplet are drawn from the real train triplets of its predicate, in proportion to
their counts, so every planned triplet occurs in real data.
"""
import json
import string
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_PROMPT = 'a photo of {scene}'
DEFAULT_FILE_NAME = 'synth_{index:06d}.png'


def predicate_probabilities(counts: Dict[str, int], power: float) -> Dict[str, float]:
    """``count ** -power``, normalised, over the predicates with a positive count."""
    if not power >= 0:
        raise ValueError(f'power must be >= 0, got {power}')
    present = {name: count for name, count in counts.items() if count > 0}
    if not present:
        raise ValueError('the real train split has no relations to plan from')
    weights = {name: float(count) ** -power for name, count in present.items()}
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def _check_template(template: str, fields: Sequence[str], option: str) -> None:
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    unknown = names - set(fields)
    if unknown:
        raise ValueError(f'{option} {template!r} uses {sorted(unknown)}; it may use {list(fields)}')


def scene_text(objects: List[dict], relations: List[dict]) -> str:
    """The scene in words: 'a dog on a bench and the dog near a cat' (an entity's first mention takes 'a')."""
    mentioned, parts = set(), []

    def mention(entity_id):
        name = objects[entity_id]['name']
        article = 'the' if entity_id in mentioned else ('an' if name[:1] in 'aeiou' else 'a')
        mentioned.add(entity_id)
        return f'{article} {name}'

    for relation in relations:
        subject = mention(relation['subject'])
        parts.append(f'{subject} {relation["predicate"]} {mention(relation["object"])}')
    return ' and '.join(parts)


class ScenePlanner:
    """Draws intended scenes from the real train triplets (module docstring).

    Args:
        triplets (Sequence[tuple]): the real train relations as (subject class, predicate, object class) names,
            one entry per relation (repeats give the counts).
        power (float): predicates are drawn with probability proportional to count ** -power.
        quotas (dict, optional): predicate -> number of planned triplets; replaces ``power``. Predicates
            without real triplets are refused.
        max_triplets (int): each scene has 1..max_triplets triplets (uniformly).
        seed (int): seed of every draw.
    """

    def __init__(self, triplets: Sequence[Tuple[str, str, str]], power: float = 1.0,
                 quotas: Optional[Dict[str, int]] = None, max_triplets: int = 3, seed: int = 0):
        if max_triplets < 1:
            raise ValueError(f'max_triplets must be >= 1, got {max_triplets}')
        self.counts = Counter(triplets)
        self.predicate_counts = Counter()
        self.by_predicate: Dict[str, Tuple[List[Tuple[str, str]], np.ndarray]] = {}
        for (subject, predicate, obj), count in sorted(self.counts.items()):
            self.predicate_counts[predicate] += count
            pairs, weights = self.by_predicate.setdefault(predicate, ([], []))
            pairs.append((subject, obj))
            weights.append(count)
        self.by_predicate = {p: (pairs, np.asarray(w, np.float64)) for p, (pairs, w) in self.by_predicate.items()}
        self.power = power
        self.quotas = dict(quotas) if quotas is not None else None
        if self.quotas is not None:
            unknown = sorted(set(self.quotas) - set(self.predicate_counts))
            if unknown:
                raise ValueError(f'quotas name predicates without real train triplets: {unknown}')
            if any(not isinstance(q, int) or q < 0 for q in self.quotas.values()):
                raise ValueError(f'quotas must be ints >= 0, got {self.quotas}')
        self.probabilities = predicate_probabilities(self.predicate_counts, power)
        self.max_triplets = max_triplets
        self.rng = np.random.default_rng(seed)

    def _predicate_stream(self, num_scenes: Optional[int]) -> Tuple[List[str], List[int]]:
        """The predicates of every planned triplet and the number of triplets of each scene."""
        if self.quotas is not None:
            predicates = [p for p, quota in sorted(self.quotas.items()) for _ in range(quota)]
            predicates = [predicates[i] for i in self.rng.permutation(len(predicates))]
            sizes = []
            while sum(sizes) < len(predicates):
                sizes.append(min(int(self.rng.integers(1, self.max_triplets + 1)), len(predicates) - sum(sizes)))
            return predicates, sizes
        sizes = self.rng.integers(1, self.max_triplets + 1, num_scenes).tolist()
        names = sorted(self.probabilities)
        drawn = self.rng.choice(len(names), sum(sizes), p=[self.probabilities[n] for n in names])
        return [names[i] for i in drawn], sizes

    def _draw_pair(self, predicate: str, must: Optional[Tuple[int, str]] = None) -> Optional[Tuple[str, str]]:
        """(subject class, object class) of a real triplet of ``predicate``, count-weighted; with ``must`` =
        (end 0/1, class) only those whose subject (0) or object (1) has that class (None if there is none)."""
        pairs, weights = self.by_predicate[predicate]
        if must is not None:
            mask = np.array([pair[must[0]] == must[1] for pair in pairs])
            if not mask.any():
                return None
            weights = weights * mask
        return pairs[int(self.rng.choice(len(pairs), p=weights / weights.sum()))]

    def _scene(self, predicates: List[str]) -> Tuple[List[dict], List[dict]]:
        """Objects and relations of one scene: each triplet after the first shares an entity with the scene
        when a real triplet of its predicate allows it (otherwise it adds two entities)."""
        objects, relations = [], []

        def add(name):
            objects.append(dict(id=len(objects), name=name))
            return len(objects) - 1

        for predicate in predicates:
            attached = None
            for entity in self.rng.permutation(len(objects)).tolist():
                for end in self.rng.permutation(2).tolist():
                    pair = self._draw_pair(predicate, (end, objects[entity]['name']))
                    if pair is not None:
                        attached = (entity, end, pair)
                        break
                if attached:
                    break
            if attached is None:
                subject, obj = self._draw_pair(predicate)
                ends = [add(subject), add(obj)]
            else:
                entity, end, pair = attached
                ends = [None, None]
                ends[end] = entity
                ends[1 - end] = add(pair[1 - end])
            relations.append(dict(subject=ends[0], object=ends[1], predicate=predicate))
        return objects, relations

    def plan(self, num_scenes: Optional[int] = None, prompt_template: str = DEFAULT_PROMPT,
             file_name_template: str = DEFAULT_FILE_NAME) -> List[dict]:
        """The plan entries (module docstring): ``num_scenes`` scenes, or as many as the quotas need.

        Args:
            prompt_template (str): text prompt; ``{scene}`` becomes the scene in words (:func:`scene_text`).
            file_name_template (str): the file the generator must write; ``{index}`` is the scene's position.
        """
        _check_template(prompt_template, ('scene', ), '--prompt-template')
        _check_template(file_name_template, ('index', ), '--file-name-template')
        if self.quotas is None and (num_scenes is None or num_scenes < 1):
            raise ValueError(f'num_scenes must be >= 1 without quotas, got {num_scenes}')
        predicates, sizes = self._predicate_stream(num_scenes)
        entries, start = [], 0
        for index, size in enumerate(sizes):
            objects, relations = self._scene(predicates[start:start + size])
            start += size
            file_name = file_name_template.format(index=index)
            entries.append(dict(file_name=file_name, id=file_name.rsplit('.', 1)[0].replace('/', '_'),
                                prompt=prompt_template.format(scene=scene_text(objects, relations)),
                                objects=objects, relations=relations))
        names = [entry['file_name'] for entry in entries]
        if len(set(names)) != len(names):
            raise ValueError(f'--file-name-template {file_name_template!r} gives the same file name to several '
                             'scenes; include {index}')
        return entries


def read_plan(path: str) -> Dict[str, dict]:
    """A plan file as file name -> entry (errors name the file and the line)."""
    plans = {}
    try:
        with open(path, encoding='utf-8') as file:
            lines = file.read().splitlines()
    except OSError as error:
        raise FileNotFoundError(f'--plan {path}: cannot read the plan ({error})') from error
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} line {number}: not valid JSON ({error})') from error
        if not isinstance(entry, dict) or not isinstance(entry.get('file_name'), str) or \
                not isinstance(entry.get('objects'), list) or not isinstance(entry.get('relations'), list):
            raise ValueError(f'{path} line {number}: a plan entry needs "file_name", "objects" and "relations"')
        ids = {obj.get('id') for obj in entry['objects'] if isinstance(obj, dict)}
        if any(r.get('subject') not in ids or r.get('object') not in ids for r in entry['relations']):
            raise ValueError(f'{path} line {number}: a relation names an object id the entry does not list')
        if entry['file_name'] in plans:
            raise ValueError(f'{path} line {number}: file name {entry["file_name"]!r} is planned twice')
        plans[entry['file_name']] = entry
    return plans


def dataset_triplets(dataset) -> List[Tuple[str, str, str]]:
    """(subject class, predicate, object class) names of every relation of a built scene-graph dataset."""
    classes, predicates = dataset.metainfo['classes'], dataset.metainfo['predicates']
    triplets = []
    for index in range(len(dataset)):
        record = dataset.get_data_info(index)
        labels = [instance['bbox_label'] for instance in record['instances']]
        triplets.extend((classes[labels[s]], predicates[p], classes[labels[o]])
                        for s, o, p in record['relations'].tolist())
    return triplets


def real_train_dataset(source: str, source_name: str = 'real', cfg_options: Optional[dict] = None):
    """The real train split to plan from or compare with, without pipeline.

    Args:
        source (str): a VG-layout folder (its whole split 0 is read: ``num_val_images=0``) or a config file
            (its training dataset; in a mix, the dataset whose ``source`` is ``source_name``).
        cfg_options (dict, optional): config overrides (e.g. the data_root of the real dataset).

    Returns:
        VGH5Dataset: the train split.
    """
    import os.path as osp

    from mmdet.registry import DATASETS
    from mmengine.config import Config

    if osp.isdir(source):
        return DATASETS.build(dict(type='VGH5Dataset', data_root=source, split='train', num_val_images=0,
                                   with_statistics=False, pipeline=[]))
    if not osp.isfile(source):
        raise FileNotFoundError(f'{source}: neither a VG folder nor a config file')
    cfg = Config.fromfile(source)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    dataset_cfg = cfg.train_dataloader.dataset
    if 'datasets' in dataset_cfg:
        chosen = [d for d in dataset_cfg.datasets if d.get('source') == source_name]
        if not chosen:
            raise ValueError(f'{source}: the training mix has no dataset with source={source_name!r} (sources: '
                             f'{[d.get("source") for d in dataset_cfg.datasets]})')
        dataset_cfg = chosen[0]
    return DATASETS.build(dict(dataset_cfg, pipeline=[], with_statistics=False))
