"""Groupwise query specialisation: which predicates form a group and which relation queries serve it.

SpeaQ splits the predicates into groups of roughly halving frequency mass and gives every group a contiguous
block of relation queries proportional to its mass. The reference derives the groups from a hard-coded table
of raw Visual Genome counts and ignores the dataset's own statistics; here the counts are an argument, the
train split's ``fg_rel_count`` by default, and the reference table is kept as ``REFERENCE_PREDICATE_COUNTS``
so that its layout (relation queries 0-289 / 290-405 / 406-493 / 494-599 for 4 groups) can be reproduced.
"""
from dataclasses import dataclass

import numpy as np
import torch

from ..utils.relation_structures import check_query_counts

# Counts per VG150 predicate (0-based, alphabetical `predicate_to_idx` order) from the table hard-coded in
# the SpeaQ matcher. They total 2,046,006 and are raw Visual Genome counts, not VG150-train counts.
REFERENCE_PREDICATE_COUNTS = (
    47341, 1996, 3092, 3624, 3477, 9903, 10190, 41356, 3288, 3411,
    5213, 2312, 3806, 4688, 1973, 9145, 2945, 1853, 9894, 277936,
    42722, 251756, 13715, 3739, 3083, 1869, 2380, 2253, 96589, 146339,
    712409, 1914, 9317, 3095, 2721, 2065, 3810, 8856, 2241, 18643,
    14185, 2517, 22596, 1925, 1740, 4613, 3490, 136099, 15457, 66425)


def validate_predicate_counts(counts, num_predicates, origin):
    """Return ``counts`` as a float64 numpy vector after checking it can drive grouping and reweighting.

    Args:
        counts (array-like): one non-negative count per predicate, no background entry.
        num_predicates (int): the number of predicates the model predicts.
        origin (str): where the counts came from, named in the error (e.g. a dataset and its metainfo key).

    Raises:
        ValueError: wrong length, non-finite or negative entries, or a zero total (which would make the
            reference's frequencies 0/0 and every class weight NaN).
    """
    array = np.asarray(counts, dtype=np.float64).reshape(-1)
    if array.shape[0] != num_predicates:
        raise ValueError(f'{origin}: expected {num_predicates} predicate counts (no background entry), '
                         f'got {array.shape[0]}')
    if not np.all(np.isfinite(array)):
        raise ValueError(f'{origin}: predicate counts contain NaN or infinity: {array.tolist()}')
    if np.any(array < 0):
        raise ValueError(f'{origin}: predicate counts must be >= 0, got {array.tolist()}')
    if array.sum() <= 0:
        raise ValueError(f'{origin}: all predicate counts are zero; the statistics were computed from a '
                         'split without relations')
    return array


@dataclass(frozen=True)
class PredicateGroupLayout:
    """Which group every predicate and every relation query belongs to.

    Attributes:
        predicate_group (Tensor): (P,) int64, the group of each predicate.
        query_group (Tensor): (N_rel,) int64, the group of each relation query.
        predicates_per_group (tuple[int]): group sizes in predicates.
        entity_queries_per_group (tuple[int]): subject/object query slots per group.
        relation_query_ranges (tuple[tuple[int, int]]): inclusive (first, last) relation query index per
            group.
    """
    predicate_group: torch.Tensor
    query_group: torch.Tensor
    predicates_per_group: tuple
    entity_queries_per_group: tuple
    relation_query_ranges: tuple

    def mismatch_table(self):
        """(N_rel, P) bool: True where a query's group differs from a predicate's group."""
        return self.query_group[:, None] != self.predicate_group[None, :]


def _greedy_group_sizes(sorted_counts, num_groups):
    """Group sizes by the reference rule: each group takes the most frequent remaining predicates while its
    running sum plus the next count stays strictly below half of the remaining mass; the last group takes
    the rest. A group can be empty when the next predicate alone reaches half."""
    sizes = []
    cursor = 0
    for _ in range(num_groups - 1):
        half = np.floor(sorted_counts[cursor:].sum() / 2)
        running = 0.0
        size = 0
        while cursor < len(sorted_counts) and running + sorted_counts[cursor] < half:
            running += sorted_counts[cursor]
            cursor += 1
            size += 1
        sizes.append(size)
    sizes.append(len(sorted_counts) - cursor)
    return sizes


def build_predicate_group_layout(counts, num_groups, num_entity_queries, num_relation_queries):
    """Compute the group layout from per-predicate counts.

    Query budgets follow the reference: group g gets ``floor(mass_g * N_so / total)`` subject/object slots,
    the leftover is spread with ``divmod`` (every group gets the quotient, the remainder adds one slot to the
    *last* groups), and each slot carries ``N_rel / N_so`` relation queries laid out in contiguous blocks in
    group order. The reference multiplies by ``MULTIPLY_QUERY`` instead of ``N_rel / N_so``, which breaks when
    subject/object queries are multiplied as well; the ratio is the same for its recipe and right otherwise.

    Args:
        counts (array-like): per-predicate counts (validated by the caller).
        num_groups (int): number of groups G, 1 <= G <= number of predicates.
        num_entity_queries (int): N_so, subject/object query slots.
        num_relation_queries (int): N_rel, a multiple of N_so.

    Returns:
        PredicateGroupLayout
    """
    counts = np.asarray(counts, dtype=np.float64)
    num_predicates = counts.shape[0]
    if not 1 <= num_groups <= num_predicates:
        raise ValueError(f'num_groups must be in [1, {num_predicates}], got {num_groups}')
    check_query_counts(num_entity_queries, num_relation_queries)
    # Stable sort: ties keep predicate index order, which makes the layout deterministic.
    order = np.argsort(-counts, kind='stable')
    sorted_counts = counts[order]
    sizes = _greedy_group_sizes(sorted_counts, num_groups)
    boundaries = np.cumsum([0] + sizes)
    masses = np.array([sorted_counts[boundaries[g]:boundaries[g + 1]].sum() for g in range(num_groups)])
    slots = np.floor(masses * num_entity_queries / masses.sum()).astype(np.int64)
    quotient, remainder = divmod(int(num_entity_queries - slots.sum()), num_groups)
    slots += quotient
    if remainder:
        slots[num_groups - remainder:] += 1

    predicate_group = torch.empty(num_predicates, dtype=torch.long)
    for group in range(num_groups):
        predicate_group[torch.from_numpy(order[boundaries[group]:boundaries[group + 1]])] = group
    queries_per_slot = num_relation_queries // num_entity_queries
    relation_queries = slots * queries_per_slot
    query_group = torch.repeat_interleave(torch.arange(num_groups), torch.from_numpy(relation_queries))
    ends = np.cumsum(relation_queries)
    ranges = tuple((int(end - size), int(end - 1)) for end, size in zip(ends, relation_queries))
    return PredicateGroupLayout(
        predicate_group=predicate_group,
        query_group=query_group,
        predicates_per_group=tuple(int(s) for s in sizes),
        entity_queries_per_group=tuple(int(s) for s in slots),
        relation_query_ranges=ranges)
