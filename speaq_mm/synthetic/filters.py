"""Curation of pseudo-labelled scene graphs: the filters between a scene graph model's predictions on generated
images and a training set (docs/synthetic_data.md, "Filters").

Every filter is a pure function over a list of scene graphs in the JSON schema that ``json_to_vg`` reads
(one dict per image: ``file_name``, ``id``, ``width``, ``height``, ``objects`` with ``id``, ``name``,
``bbox`` [x1, y1, x2, y2] and ``score``, ``relations`` with ``subject``, ``object`` (object ids),
``predicate`` and ``score``). A filter returns new dicts and leaves its input untouched, and counts what it
drops, per level and reason, in a :class:`CurationLog`. :func:`curate` chains them in the documented order.
"""
import copy
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

# reason -> meaning; the level (image/object/relation) is the first word. The report lists them in this order.
CURATION_REASONS = {
    'image: excluded': 'the image is on the exclude list',
    'image: not in plan': 'a plan is given and it has no entry for the image',
    'image: disagrees with plan': 'fewer than min_plan_agreement of its intended triplets were found',
    'image: no relation kept': 'every relation of the image was dropped',
    'relation: below score threshold': 'triplet score < score_thr',
    'relation: self pair': 'subject and object are the same entity (after duplicate suppression)',
    'relation: repeated triplet': 'the same (subject, predicate, object) with a higher score is kept',
    'relation: beyond top-k': 'not among the topk highest-scoring relations of its image',
    'relation: not in plan': 'keep_only_agreeing: the relation matches no intended triplet',
    'relation: over predicate cap': 'its predicate already has predicate_caps relations of higher score in the set',
    'object: duplicate entity': 'same class and IoU >= entity_iou_thr with a higher-scoring object; its '
                                'relations now point to that object',
    'object: in no kept relation': 'no kept relation uses the object',
}


@dataclass
class CurationLog:
    """What the filters read and dropped: ``dropped[reason]`` counts items (images, objects or relations)."""

    dropped: Counter = field(default_factory=Counter)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` dropped items under ``reason`` (a key of :data:`CURATION_REASONS`)."""
        if reason not in CURATION_REASONS:
            raise KeyError(f'unknown curation reason {reason!r}')
        if count:
            self.dropped[reason] += count


@dataclass
class CurationOptions:
    """The filters of :func:`curate`, each off at its default except the self-pair / repeated-triplet rule.

    Attributes:
        score_thr (float): drop relations whose triplet ``score`` is below this.
        entity_iou_thr (float, optional): class-aware duplicate-entity suppression: an object of the same class
            as a higher-scoring one, overlapping it with IoU >= this, is merged into it (its relations are
            re-pointed). None: off.
        topk (int, optional): keep the ``topk`` highest-scoring relations of each image.
        min_plan_agreement (int): with plans, keep an image only if at least this many of its intended
            triplets (subject class, predicate, object class) are found among its relations (at most all of
            them, when the plan intends fewer).
        keep_only_agreeing (bool): with plans, keep only the relations that match an intended triplet.
        predicate_caps (int | dict, optional): the most relations a predicate may keep over the whole set (the
            highest-scoring ones); an int caps every predicate, a dict caps the predicates it names.
        exclude (Iterable[str]): images to drop, by ``file_name``, its base name or ``id``.
    """

    score_thr: float = 0.0
    entity_iou_thr: Optional[float] = None
    topk: Optional[int] = None
    min_plan_agreement: int = 1
    keep_only_agreeing: bool = False
    predicate_caps: Optional[Union[int, Dict[str, int]]] = None
    exclude: Iterable[str] = ()

    def __post_init__(self):
        if not 0 <= self.score_thr <= 1:
            raise ValueError(f'score_thr must lie in [0, 1], got {self.score_thr}')
        if self.entity_iou_thr is not None and not 0 < self.entity_iou_thr <= 1:
            raise ValueError(f'entity_iou_thr must lie in (0, 1], got {self.entity_iou_thr}')
        if self.topk is not None and (not isinstance(self.topk, int) or self.topk < 1):
            raise ValueError(f'topk must be an int >= 1, got {self.topk!r}')
        if not isinstance(self.min_plan_agreement, int) or self.min_plan_agreement < 0:
            raise ValueError(f'min_plan_agreement must be an int >= 0, got {self.min_plan_agreement!r}')
        caps = self.predicate_caps
        values = caps.values() if isinstance(caps, dict) else [] if caps is None else [caps]
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise ValueError(f'predicate_caps must be an int >= 0 or a dict of them, got {caps!r}')
        self.exclude = frozenset(str(name) for name in self.exclude)


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------
def _copy(graphs: Sequence[dict]) -> List[dict]:
    return copy.deepcopy(list(graphs))


def _image_keys(graph: dict) -> Tuple[str, ...]:
    """The names an exclude list or a plan may use for an image: file name, its base name, id."""
    file_name = str(graph.get('file_name', ''))
    keys = [file_name, file_name.replace('\\', '/').rsplit('/', 1)[-1]]
    if graph.get('id') is not None:
        keys.append(str(graph['id']))
    return tuple(keys)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x1, y1, x2, y2) boxes (0 when either has no area)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _by_score(relations: List[dict]) -> List[dict]:
    """Relations by score, highest first (stable: equal scores keep their order)."""
    return sorted(relations, key=lambda relation: -float(relation.get('score', 0.0)))


def triplet_names(graph: dict, relation: dict) -> Tuple[str, str, str]:
    """(subject class, predicate, object class) of a relation of ``graph``."""
    names = {obj['id']: obj['name'] for obj in graph['objects']}
    return names[relation['subject']], relation['predicate'], names[relation['object']]


def check_predictions(graphs: Sequence[dict], where: str) -> None:
    """Raise ValueError naming ``where``, the image and the field when a graph does not follow the schema of
    the module docstring (unique object ids, relations between existing objects, numeric scores)."""
    for index, graph in enumerate(graphs):
        name = graph.get('file_name') if isinstance(graph, dict) else repr(graph)
        image = f'{where}: image {index} ({name})'
        if not isinstance(graph, dict) or not isinstance(graph.get('objects'), list) or \
                not isinstance(graph.get('relations'), list) or 'file_name' not in graph:
            raise ValueError(f'{image}: needs "file_name", a list "objects" and a list "relations"')
        ids = [obj.get('id') if isinstance(obj, dict) else None for obj in graph['objects']]
        if None in ids or len(set(ids)) != len(ids):
            raise ValueError(f'{image}: every object needs a unique "id", got {ids}')
        for obj in graph['objects']:
            if not isinstance(obj.get('name'), str) or not (isinstance(obj.get('bbox'), (list, tuple))
                                                            and len(obj['bbox']) == 4):
                raise ValueError(f'{image}: object {obj.get("id")!r} needs a "name" and a 4-number "bbox"')
        for relation in graph['relations']:
            if not isinstance(relation, dict) or relation.get('subject') not in ids or \
                    relation.get('object') not in ids or not isinstance(relation.get('predicate'), str):
                raise ValueError(f'{image}: relation {relation!r} needs "subject" and "object" ids of its objects '
                                 'and a "predicate"')
            score = relation.get('score')
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise ValueError(f'{image}: relation {relation!r} needs a numeric "score"')


# ----------------------------------------------------------------------------------------------------------
# Filters
# ----------------------------------------------------------------------------------------------------------
def exclude_images(graphs: Sequence[dict], excluded: Iterable[str], log: CurationLog) -> List[dict]:
    """Drop the images named in ``excluded`` (by ``file_name``, its base name or ``id``)."""
    excluded = {str(name) for name in excluded}
    kept = [graph for graph in _copy(graphs) if not excluded.intersection(_image_keys(graph))]
    log.drop('image: excluded', len(graphs) - len(kept))
    return kept


def threshold_relations(graphs: Sequence[dict], score_thr: float, log: CurationLog) -> List[dict]:
    """Drop relations whose ``score`` is below ``score_thr``."""
    graphs = _copy(graphs)
    for graph in graphs:
        kept = [relation for relation in graph['relations'] if float(relation.get('score', 0.0)) >= score_thr]
        log.drop('relation: below score threshold', len(graph['relations']) - len(kept))
        graph['relations'] = kept
    return graphs


def suppress_duplicate_entities(graphs: Sequence[dict], iou_thr: float, log: CurationLog) -> List[dict]:
    """Class-aware suppression of duplicate entities.

    Objects are visited by ``score``, highest first; an object whose class equals that of an already kept
    object and whose IoU with it is at least ``iou_thr`` is dropped and every relation that used it points to
    that kept object instead (the first such, in score order). Self pairs and repeated triplets this creates
    are left to :func:`drop_self_and_repeated`.
    """
    graphs = _copy(graphs)
    for graph in graphs:
        kept, target = [], {}
        for obj in sorted(graph['objects'], key=lambda o: -float(o.get('score', 0.0))):
            twin = next((k for k in kept if k['name'] == obj['name'] and box_iou(k['bbox'], obj['bbox']) >= iou_thr),
                        None)
            if twin is None:
                kept.append(obj)
                target[obj['id']] = obj['id']
            else:
                target[obj['id']] = twin['id']
        log.drop('object: duplicate entity', len(graph['objects']) - len(kept))
        kept_ids = {obj['id'] for obj in kept}
        graph['objects'] = [obj for obj in graph['objects'] if obj['id'] in kept_ids]
        for relation in graph['relations']:
            relation['subject'], relation['object'] = target[relation['subject']], target[relation['object']]
    return graphs


def drop_self_and_repeated(graphs: Sequence[dict], log: CurationLog) -> List[dict]:
    """Drop relations whose subject is their object, and all but the highest-scoring copy of each
    (subject, predicate, object)."""
    graphs = _copy(graphs)
    for graph in graphs:
        seen, kept = set(), []
        for relation in _by_score(graph['relations']):
            key = (relation['subject'], relation['predicate'], relation['object'])
            if relation['subject'] == relation['object']:
                log.drop('relation: self pair')
            elif key in seen:
                log.drop('relation: repeated triplet')
            else:
                seen.add(key)
                kept.append(relation)
        graph['relations'] = kept
    return graphs


def topk_relations(graphs: Sequence[dict], topk: int, log: CurationLog) -> List[dict]:
    """Keep the ``topk`` highest-scoring relations of each image."""
    graphs = _copy(graphs)
    for graph in graphs:
        ranked = _by_score(graph['relations'])
        log.drop('relation: beyond top-k', max(0, len(ranked) - topk))
        graph['relations'] = ranked[:topk]
    return graphs


def plan_for(graph: dict, plans: Dict[str, dict]) -> Optional[dict]:
    """The plan entry of an image: by its ``file_name``, then the base name (plans are keyed by file name)."""
    for key in _image_keys(graph)[:2]:
        if key in plans:
            return plans[key]
    return None


def intended_triplets(plan: dict) -> List[Tuple[str, str, str]]:
    """(subject class, predicate, object class) of every relation a plan entry intends."""
    names = {obj['id']: obj['name'] for obj in plan['objects']}
    return [(names[r['subject']], r['predicate'], names[r['object']]) for r in plan['relations']]


def agree_with_plan(graphs: Sequence[dict], plans: Dict[str, dict], min_agreement: int, keep_only_agreeing: bool,
                    log: CurationLog) -> List[dict]:
    """Keep the images that realise their plan.

    An intended triplet is found when a relation of the image has the same subject class, predicate and
    object class; each relation realises at most one intended triplet (repeated intentions need as many
    relations). An image is kept when at least ``min(min_agreement, number intended)`` are found. With
    ``keep_only_agreeing`` only the relations that realise an intended triplet stay.

    Args:
        plans (dict): file name -> plan entry (:func:`speaq_mm.synthetic.planning.read_plan`).
    """
    kept = []
    for graph in _copy(graphs):
        plan = plan_for(graph, plans)
        if plan is None:
            log.drop('image: not in plan')
            continue
        wanted = Counter(intended_triplets(plan))
        required = min(min_agreement, sum(wanted.values()))
        found, agreeing = 0, []
        for relation in _by_score(graph['relations']):
            names = triplet_names(graph, relation)
            if wanted[names] > 0:
                wanted[names] -= 1
                found += 1
                agreeing.append(relation)
            elif keep_only_agreeing:
                continue
            else:
                agreeing.append(relation)
        if found < required:
            log.drop('image: disagrees with plan')
            continue
        if keep_only_agreeing:
            log.drop('relation: not in plan', len(graph['relations']) - len(agreeing))
            graph['relations'] = agreeing
        kept.append(graph)
    return kept


def cap_predicates(graphs: Sequence[dict], caps: Union[int, Dict[str, int]], log: CurationLog) -> List[dict]:
    """Keep at most ``caps`` relations per predicate over the whole set: the highest-scoring ones (ties: the
    earlier image, then the earlier relation)."""
    graphs = _copy(graphs)
    ranked = defaultdict(list)
    for image_index, graph in enumerate(graphs):
        for position, relation in enumerate(graph['relations']):
            ranked[relation['predicate']].append((-float(relation.get('score', 0.0)), image_index, position))
    dropped = set()
    for predicate, entries in ranked.items():
        cap = caps.get(predicate) if isinstance(caps, dict) else caps
        if cap is None:
            continue
        for _, image_index, position in sorted(entries)[cap:]:
            dropped.add((image_index, position))
    log.drop('relation: over predicate cap', len(dropped))
    for image_index, graph in enumerate(graphs):
        graph['relations'] = [r for p, r in enumerate(graph['relations']) if (image_index, p) not in dropped]
    return graphs


def prune(graphs: Sequence[dict], log: CurationLog) -> List[dict]:
    """Drop the objects no kept relation uses, then the images left without relations."""
    kept = []
    for graph in _copy(graphs):
        used = {relation[end] for relation in graph['relations'] for end in ('subject', 'object')}
        objects = [obj for obj in graph['objects'] if obj['id'] in used]
        log.drop('object: in no kept relation', len(graph['objects']) - len(objects))
        graph['objects'] = objects
        if not graph['relations']:
            log.drop('image: no relation kept')
            continue
        kept.append(graph)
    return kept


def curate(graphs: Sequence[dict], options: CurationOptions, plans: Optional[Dict[str, dict]] = None
           ) -> Tuple[List[dict], CurationLog]:
    """Run the filters in this order: exclude list, score threshold, duplicate-entity suppression, self pairs
    and repeated triplets, top-k per image, plan agreement (when ``plans`` is given), per-predicate caps over
    the set, then :func:`prune`. Relations come out sorted by score, highest first.

    Returns:
        tuple: (kept graphs, :class:`CurationLog`).
    """
    check_predictions(graphs, 'predictions')
    log = CurationLog()
    graphs = exclude_images(graphs, options.exclude, log)
    graphs = threshold_relations(graphs, options.score_thr, log)
    if options.entity_iou_thr is not None:
        graphs = suppress_duplicate_entities(graphs, options.entity_iou_thr, log)
    graphs = drop_self_and_repeated(graphs, log)
    if options.topk is not None:
        graphs = topk_relations(graphs, options.topk, log)
    if plans is not None:
        graphs = agree_with_plan(graphs, plans, options.min_plan_agreement, options.keep_only_agreeing, log)
    if options.predicate_caps is not None:
        graphs = cap_predicates(graphs, options.predicate_caps, log)
    return prune(graphs, log), log
