"""From a relation's confidence to its loss weight: the one map that turns the ``relationship_scores`` of a
pseudo-labelled VG file (docs/dataset_format.md) into per-relation loss weights (docs/synthetic_data.md).

The map is a dict with two optional keys, applied as ``weight = max(floor, score ** power)``:

- identity: ``dict()`` (power 1, floor 0): the weight is the score;
- a power: ``dict(power=2.0)``: doubtful relations count much less than confident ones;
- a floor: ``dict(floor=0.2)``: no relation counts less than 0.2;
- both: ``dict(power=2.0, floor=0.2)``.

Configs key it by source name, like the other mix settings: ``SGGConcatDataset(relation_weights=dict(
synthetic=dict(power=2.0)))``. A source without an entry trains every relation at weight 1.
"""
import math
from typing import Optional

import numpy as np

RELATION_WEIGHT_KEYS = ('power', 'floor')


def check_relation_weight(spec: Optional[dict], where: str) -> Optional[dict]:
    """Validate a score-to-weight map (module docstring) and return it with both keys filled in.

    Args:
        spec (dict, optional): the map; None means "no map" (every relation weighs 1).
        where (str): the config key, for the error message.

    Returns:
        dict | None: ``dict(power=..., floor=...)``, or None.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f'{where} must be a dict with the optional keys {RELATION_WEIGHT_KEYS} (e.g. dict() for '
                         f'identity, dict(power=2.0), dict(floor=0.2)), got {spec!r}')
    unknown = sorted(set(spec) - set(RELATION_WEIGHT_KEYS))
    if unknown:
        raise ValueError(f'{where}: unknown keys {unknown}; the map takes {RELATION_WEIGHT_KEYS}')
    power, floor = spec.get('power', 1.0), spec.get('floor', 0.0)
    for name, value, valid in (('power', power, lambda v: v > 0), ('floor', floor, lambda v: 0 <= v <= 1)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not valid(value):
            limits = '> 0' if name == 'power' else 'in [0, 1]'
            raise ValueError(f'{where}.{name} must be a finite number {limits}, got {value!r}')
    return dict(power=float(power), floor=float(floor))


def relation_weights_from_scores(scores: np.ndarray, spec: dict) -> np.ndarray:
    """``max(floor, score ** power)`` for every score (float32, same shape)."""
    scores = np.asarray(scores, np.float32)
    return np.maximum(np.float32(spec['floor']), scores ** np.float32(spec['power'])).astype(np.float32)
