"""Fine-tune a checkpoint into another vocabulary: copy the classifier rows of the names both vocabularies share.

A checkpoint trained on VG150 (150 classes, 50 predicates) does not fit a model for one's own classes and
predicates: the entity and predicate classifiers have one row per name plus the no-object / no-relation row,
so their shapes differ and ``SpeaQCheckpointCompatibilityHook`` refuses the checkpoint. With
``default_hooks.checkpoint_check.transfer='by_name'`` the hook calls :func:`transfer_rows_by_name` first: it
rewrites the checkpoint's vocabulary tensors (in memory) into the model's shapes, taking

* the row of every name found in both vocabularies from the checkpoint (matched by exact name),
* the last row (no-object, no-relation) from the checkpoint,
* every other row from the model as initialised (the fresh initialisation of the run's seed),

and returns a :class:`VocabularyTransfer` whose :meth:`~VocabularyTransfer.table` lists the copied, new and
dropped names. The strict check then runs on the result, so every other shape mismatch is still refused.

The names of the checkpoint come from its metainfo (``meta.dataset_meta.classes`` / ``predicates``, which
mmengine saves from the train dataset); a checkpoint without them is refused, since rows cannot be matched by
position safely. Which tensors follow a vocabulary is declared by the head (``vocabulary_rows`` of
``SpeaQRelationHead``); the criterion's class weights and the matcher's query groups are not in the state dict:
they are recomputed from the new train split's statistics before training (``SpeaQTrainStatisticsHook``).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from terminaltables import AsciiTable

TRANSFER_MODES = ('strict', 'by_name')


class VocabularyTransferError(ValueError):
    """The checkpoint's vocabulary cannot be mapped onto the model's by name."""


@dataclass
class VocabularyTransfer:
    """What :func:`transfer_rows_by_name` did, per vocabulary (``classes``, ``predicates``).

    Attributes:
        copied (dict): vocabulary -> names whose rows came from the checkpoint.
        new (dict): vocabulary -> names of the model absent from the checkpoint (fresh rows).
        dropped (dict): vocabulary -> names of the checkpoint absent from the model.
        reordered (dict): vocabulary -> whether the shared names come in another order in the model.
        tensors (list): the state-dict keys that were rewritten.
    """

    copied: Dict[str, List[str]] = field(default_factory=dict)
    new: Dict[str, List[str]] = field(default_factory=dict)
    dropped: Dict[str, List[str]] = field(default_factory=dict)
    reordered: Dict[str, bool] = field(default_factory=dict)
    tensors: List[str] = field(default_factory=list)

    @property
    def is_identity(self) -> bool:
        """True when every row stays where it was (the same names in the same order)."""
        return not any(self.reordered.values()) and not any(self.new.values()) and not any(self.dropped.values())

    def table(self, source: str = 'the checkpoint') -> str:
        """The log table: per vocabulary, the counts and names copied, new and dropped."""
        rows = [['vocabulary', 'copied', 'new (fresh rows)', 'dropped (not in the dataset)']]
        for vocabulary in self.copied:
            rows.append([vocabulary] + [f'{len(names)}: {_shorten(names)}' for names in
                                        (self.copied[vocabulary], self.new[vocabulary], self.dropped[vocabulary])])
        return (f'transfer=by_name from {source}: rows of shared names copied (no-object / no-relation rows '
                f'too), new names keep their fresh initialisation; tensors {", ".join(self.tensors)}\n'
                + AsciiTable(rows).table)


def _shorten(names: Sequence[str], shown: int = 12) -> str:
    text = ', '.join(names[:shown])
    return text + (f', ... (+{len(names) - shown})' if len(names) > shown else '') if names else '-'


def vocabulary_rows(model) -> Dict[str, str]:
    """``{state-dict key: vocabulary}`` of the tensors whose rows follow a vocabulary, as the model's head
    declares them (``bbox_head.vocabulary_rows``); the last row of each is the background class."""
    head = getattr(model, 'bbox_head', None)
    rows = getattr(head, 'vocabulary_rows', None)
    if not rows:
        raise VocabularyTransferError(
            f'transfer=by_name: {type(model).__name__} declares no vocabulary rows (bbox_head.vocabulary_rows); '
            'use the default strict check')
    return {f'bbox_head.{key}': vocabulary for key, vocabulary in rows.items()}


def checkpoint_vocabulary(checkpoint: dict, vocabularies: Sequence[str], source: str) -> Dict[str, Tuple[str]]:
    """The checkpoint's names of each vocabulary, from ``meta.dataset_meta`` (refused when absent)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    dataset_meta = meta.get('dataset_meta') if isinstance(meta, dict) else None
    names = {}
    for vocabulary in vocabularies:
        found = dataset_meta.get(vocabulary) if isinstance(dataset_meta, dict) else None
        if not found or not all(isinstance(name, str) for name in found):
            raise VocabularyTransferError(
                f'transfer=by_name: {source} has no {vocabulary} names (meta.dataset_meta.{vocabulary}), so its '
                'classifier rows cannot be matched by name. Use a checkpoint saved by speaq_mm training (mmengine '
                'stores the train dataset\'s metainfo), or convert a reference checkpoint with '
                'tools/model_converters/speaq_d2_to_mm.py --dicts-file VG-SGG-dicts-with-attri.json')
        names[vocabulary] = tuple(found)
    return names


def _unique(names: Sequence[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise VocabularyTransferError(f'transfer=by_name: {what} lists {name!r} twice; names must be unique')
        seen.add(name)


def transfer_rows_by_name(model, checkpoint: dict, model_vocabulary: Dict[str, Sequence[str]],
                          source: str = 'the checkpoint', allow_new: bool = True,
                          require_identity: bool = False) -> VocabularyTransfer:
    """Rewrite the checkpoint's vocabulary tensors into the model's shapes, matching rows by name (in place).

    Args:
        model (nn.Module): the model (not a DDP wrapper), already initialised: its rows are the fresh ones.
        checkpoint (dict): the loaded checkpoint; ``checkpoint['state_dict']`` is modified.
        model_vocabulary (dict): ``classes`` / ``predicates`` names of the dataset the model is for.
        source (str): names the checkpoint in messages.
        allow_new (bool): False refuses names absent from the checkpoint (random rows), e.g. when testing.
        require_identity (bool): refuse any change of rows (resuming: the optimizer state has the old shapes).

    Returns:
        VocabularyTransfer: what was copied, new and dropped.
    """
    keys = vocabulary_rows(model)
    vocabularies = list(dict.fromkeys(keys.values()))
    old_names = checkpoint_vocabulary(checkpoint, vocabularies, source)
    state = checkpoint.get('state_dict', checkpoint)
    model_state = model.state_dict()
    transfer = VocabularyTransfer()
    for vocabulary in vocabularies:
        new_names = tuple(model_vocabulary.get(vocabulary) or ())
        if not new_names:
            raise VocabularyTransferError(f'transfer=by_name: the dataset metainfo has no {vocabulary} names')
        _unique(new_names, f'the dataset\'s {vocabulary}')
        _unique(old_names[vocabulary], f'{source}\'s meta.dataset_meta.{vocabulary}')
        old_index = {name: row for row, name in enumerate(old_names[vocabulary])}
        transfer.copied[vocabulary] = [name for name in new_names if name in old_index]
        transfer.new[vocabulary] = [name for name in new_names if name not in old_index]
        transfer.dropped[vocabulary] = [name for name in old_names[vocabulary] if name not in set(new_names)]
        shared_in_old_order = [name for name in old_names[vocabulary] if name in set(new_names)]
        transfer.reordered[vocabulary] = transfer.copied[vocabulary] != shared_in_old_order
    if require_identity and not transfer.is_identity:
        raise VocabularyTransferError(
            f'transfer=by_name while resuming: {source} was trained with other classes or predicates than the '
            'dataset (its optimizer state has their shapes); resume only the run\'s own checkpoints, and use '
            'load_from (not --resume) to fine-tune into a new vocabulary')
    if not allow_new and any(transfer.new.values()):
        raise VocabularyTransferError(
            f'transfer=by_name outside training: {source} has no rows for '
            + '; '.join(f'{vocabulary} {names}' for vocabulary, names in transfer.new.items() if names)
            + ' of the dataset; their rows would be random. Evaluate a checkpoint fine-tuned on this vocabulary')
    for key, vocabulary in keys.items():
        stored_key = key if key in state else f'module.{key}' if f'module.{key}' in state else None
        if stored_key is None or key not in model_state:
            continue  # nothing to map (e.g. a detector checkpoint without these heads)
        old, fresh = state[stored_key], model_state[key]
        names = old_names[vocabulary]
        new_names = tuple(model_vocabulary[vocabulary])
        if old.shape[0] != len(names) + 1 or fresh.shape[0] != len(new_names) + 1 or old.shape[1:] != fresh.shape[1:]:
            raise VocabularyTransferError(
                f'transfer=by_name: {key} has shape {tuple(old.shape)} in {source} ({len(names)} {vocabulary} + '
                f'background in its metainfo) and {tuple(fresh.shape)} in the model ({len(new_names)} + '
                'background); only the rows of the vocabulary may differ')
        old_index = {name: row for row, name in enumerate(names)}
        mapped = fresh.detach().clone().to(old.dtype)
        for row, name in enumerate(new_names):
            if name in old_index:
                mapped[row] = old[old_index[name]]
        mapped[-1] = old[-1]  # the no-object / no-relation row
        state[stored_key] = mapped
        transfer.tensors.append(key)
    return transfer


def by_name_hint(model, mismatched_keys: Sequence[str]) -> str:
    """A line pointing at ``transfer='by_name'`` when the strict check found vocabulary tensors among the
    mismatched keys (another vocabulary), else ''."""
    head = getattr(model, 'bbox_head', None)
    keys = {f'bbox_head.{key}' for key in (getattr(head, 'vocabulary_rows', None) or {})}
    if not keys.intersection(mismatched_keys):
        return ''
    return ('The classifier rows differ: the checkpoint was trained on other classes or predicates. To fine-tune '
            'it into this dataset\'s vocabulary (rows of shared names copied, docs/own_data.md), add '
            '--cfg-options default_hooks.checkpoint_check.transfer=by_name')


def check_query_groups_follow_the_data(model, transfer: VocabularyTransfer) -> None:
    """Refuse a matcher whose query groups come from a fixed table (``group_counts='reference'``, VG150's
    predicates) when the predicates changed: the groups must come from the new train statistics."""
    matcher = getattr(getattr(model, 'bbox_head', None), 'matcher', None)
    changed = (transfer.new.get('predicates') or transfer.dropped.get('predicates')
               or transfer.reordered.get('predicates'))
    if changed and getattr(matcher, 'group_counts', None) == 'reference':
        raise VocabularyTransferError(
            "transfer=by_name: the predicates differ from the checkpoint's, but the matcher's query groups come "
            "from the reference VG150 table (group_counts='reference'). Set "
            "model.train_cfg.assigner.group_counts='train_statistics' so that they follow the new train split")


def dataset_vocabulary(metainfo: Optional[dict]) -> Dict[str, Tuple[str]]:
    """``classes`` and ``predicates`` of a dataset metainfo (missing ones left out)."""
    return {key: tuple(metainfo[key]) for key in ('classes', 'predicates') if metainfo and metainfo.get(key)}
