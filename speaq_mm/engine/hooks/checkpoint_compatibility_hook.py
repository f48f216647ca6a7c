"""Refuse a checkpoint that does not fit the model, before mmengine half-loads it.

mmengine loads ``load_from`` checkpoints non-strictly: a tensor whose shape differs from the model's (a
checkpoint trained with other query counts, classes or widths) is skipped with a warning and keeps its fresh
initialisation, and a checkpoint sharing no key with the model (every key prefixed, say) loads nothing at
all; training or testing then goes on with a partly or wholly random model. :func:`check_checkpoint_fits`
stops with one message listing every mismatched key with both shapes (and the query counts to set), or the
share of the model's tensors the checkpoint fills and examples of the keys on each side. Partial
initialisation stays possible (a DETR detector initialises most of SpeaQ): the checkpoint only has to fill
``min_matched_share`` of the model's tensors, after the model's own key conversions (``SpeaQDetector``
replicates a DETR decoder into its three decoders).

Partial initialisation is for training only. A checkpoint that is tested, validated or drawn must fill every
tensor of the model, or the missing ones (a relation branch, say) keep their random initialisation and the
run reports meaningless numbers: :func:`check_checkpoint_complete` stops with the missing keys.

:class:`SpeaQCheckpointCompatibilityHook` (a default hook of every config) applies the first to ``load_from``
and ``--resume`` of a training run, the second to a checkpoint loaded for ``Runner.test`` or ``Runner.val``
(``tools/test.py``); the image demo and other inference code call :func:`check_checkpoint_complete` themselves.

With ``transfer='by_name'`` the hook first maps the classifier rows of a checkpoint trained on another
vocabulary by name (:mod:`speaq_mm.engine.vocabulary_transfer`, docs/own_data.md).
"""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from ..vocabulary_transfer import (
    TRANSFER_MODES,
    by_name_hint,
    check_query_groups_follow_the_data,
    dataset_vocabulary,
    transfer_rows_by_name,
)

# The query tables of SpeaQDetector and the constructor argument that sets their number of rows.
QUERY_TABLES = {'subject_query_embedding.weight': 'num_entity_queries',
                'object_query_embedding.weight': 'num_entity_queries',
                'relation_query_embedding.weight': 'num_relation_queries'}
_KEYS_SHOWN = 5


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors have other shapes than the model's, or too few of them match the model."""


def shape_mismatches(checkpoint_state, model_state):
    """Keys present in both state dicts whose shapes differ.

    Args:
        checkpoint_state (dict): the checkpoint's ``state_dict`` (a ``module.`` prefix is ignored).
        model_state (dict): ``model.state_dict()``.

    Returns:
        list[tuple]: ``(key, checkpoint shape, model shape)``, in the model's key order.
    """
    stripped = _strip_module(checkpoint_state)
    return [(key, tuple(stripped[key].shape), tuple(value.shape)) for key, value in model_state.items()
            if key in stripped and hasattr(stripped[key], 'shape')
            and tuple(stripped[key].shape) != tuple(value.shape)]


def _strip_module(state):
    return {key[len('module.'):] if key.startswith('module.') else key: value for key, value in state.items()}


def _as_model_reads_it(model, state):
    """The checkpoint's state dict after the model's own ``load_state_dict`` pre-hooks (key conversions)."""
    converted = dict(_strip_module(state))
    for hook in model._load_state_dict_pre_hooks.values():
        hook(converted, '', {}, False, [], [], [])
    return converted


def describe_mismatches(mismatches, source='the checkpoint'):
    """The error message for :func:`shape_mismatches`' result, with the query counts when they differ."""
    lines = [f'{source} does not fit the model: {len(mismatches)} tensor(s) have other shapes '
             '(key: checkpoint shape vs model shape):']
    lines += [f'  {key}: {tuple(saved)} vs {tuple(current)}' for key, saved, current in mismatches]
    counts = {}
    for key, saved, current in mismatches:
        argument = QUERY_TABLES.get(key)
        if argument and saved[:1] != current[:1]:
            counts[argument] = (saved[0], current[0])
    if counts:
        lines.append('The query counts differ: ' + ', '.join(
            f'{argument} = {saved} in the checkpoint, {current} in the config'
            for argument, (saved, current) in counts.items())
            + '. Set model.' + ' and model.'.join(counts) + ' to the checkpoint\'s values, or load a '
            'checkpoint trained with this config.')
    return '\n'.join(lines)


def _examples(keys):
    keys = list(keys)
    return ', '.join(keys[:_KEYS_SHOWN]) + (f', ... ({len(keys)} in all)' if len(keys) > _KEYS_SHOWN else '')


def check_checkpoint_fits(model, checkpoint, source='the checkpoint', min_matched_share=0.5):
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` fits ``model``.

    Args:
        model (nn.Module): the model (not a DDP wrapper).
        checkpoint (dict): a loaded checkpoint (``state_dict`` inside, or a bare state dict).
        source (str): names the checkpoint in the message.
        min_matched_share (float): the share of the model's tensors the checkpoint must fill (same key and
            shape) after the model's key conversions.
    """
    model_state = model.state_dict()
    state = _as_model_reads_it(model, checkpoint.get('state_dict', checkpoint))
    mismatches = shape_mismatches(state, model_state)
    if mismatches:
        hint = by_name_hint(model, [key for key, _, _ in mismatches])
        raise CheckpointMismatchError(describe_mismatches(mismatches, source) + (f'\n{hint}' if hint else ''))
    matched = [key for key in model_state if key in state]
    if len(matched) < min_matched_share * len(model_state):
        missing = [key for key in model_state if key not in state]
        raise CheckpointMismatchError(
            f'{source} fills only {len(matched)} of the model\'s {len(model_state)} tensors '
            f'({len(matched) / max(len(model_state), 1):.0%}, less than min_matched_share={min_matched_share}), '
            f'so the model would run mostly untrained. Model keys it lacks: {_examples(missing)}. Its own keys: '
            f'{_examples(key for key in state if key not in model_state) or "none"}. Is it a checkpoint of '
            'this model (converted with tools/model_converters/ if it comes from the reference code)?')


def _module_counts(keys):
    """``'bbox_head.relation_decoder (40), ...'``: the keys counted by their first two dotted parts."""
    counts = {}
    for key in keys:
        prefix = '.'.join(key.split('.')[:2])
        counts[prefix] = counts.get(prefix, 0) + 1
    return ', '.join(f'{prefix} ({count})' for prefix, count in counts.items())


def check_checkpoint_complete(model, checkpoint, source='the checkpoint'):
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` gives every tensor of ``model``.

    What test-time code (``tools/test.py``, the image demo, inferencers) calls before it loads weights: a
    tensor the checkpoint lacks would keep its random initialisation. The message names the missing keys,
    grouped by module. Shapes are checked as in :func:`check_checkpoint_fits`.

    Args:
        model (nn.Module): the model (not a DDP wrapper).
        checkpoint (dict): a loaded checkpoint (``state_dict`` inside, or a bare state dict).
        source (str): names the checkpoint in the message.
    """
    model_state = model.state_dict()
    state = _as_model_reads_it(model, checkpoint.get('state_dict', checkpoint))
    mismatches = shape_mismatches(state, model_state)
    if mismatches:
        raise CheckpointMismatchError(describe_mismatches(mismatches, source))
    missing = [key for key in model_state if key not in state]
    if missing:
        raise CheckpointMismatchError(
            f'{source} lacks {len(missing)} of the model\'s {len(model_state)} tensors, which would keep their '
            f'random initialisation: {_module_counts(missing)}. Missing keys: {_examples(missing)}. Keys of the '
            f'checkpoint the model does not have: {_examples(k for k in state if k not in model_state) or "none"}. '
            'Testing, validating and drawing need a checkpoint of the whole model (one trained with this config); '
            'partial initialisation (default_hooks.checkpoint_check.min_matched_share) is for training only.')


def loads_for_training(runner):
    """Whether the checkpoint ``runner`` is loading (in ``after_load_checkpoint``) is for ``Runner.train``.

    ``Runner.train`` builds its train loop before it loads or resumes a checkpoint; ``Runner.test`` and
    ``Runner.val`` never build it (mmengine 0.10.7: ``_train_loop`` holds the loop's config until then).
    """
    return isinstance(getattr(runner, '_train_loop', None), BaseLoop)


@HOOKS.register_module()
class SpeaQCheckpointCompatibilityHook(Hook):
    """Raise :class:`CheckpointMismatchError` when a loaded or resumed checkpoint does not fit the model.

    A checkpoint loaded for training (``load_from``, ``--resume``) must fill ``min_matched_share`` of the model's
    tensors; one loaded for ``Runner.test`` / ``Runner.val`` (``tools/test.py``) every tensor.

    Args:
        min_matched_share (float): see :func:`check_checkpoint_fits`; ``default_hooks.checkpoint_check`` of
            the default runtime sets 0.5. Training only.
        transfer (str): ``'strict'`` (default): refuse any shape mismatch. ``'by_name'``: a checkpoint trained
            on other classes or predicates gives the rows of the names the two vocabularies share (names from
            its ``meta.dataset_meta``), the other rows keep their initialisation, and a table of copied, new
            and dropped names goes to the log (:func:`~speaq_mm.engine.vocabulary_transfer.transfer_rows_by_name`);
            every other mismatch is still refused.
    """

    priority = 'VERY_HIGH'

    def __init__(self, min_matched_share=0.5, transfer='strict'):
        if not 0 <= min_matched_share <= 1:
            raise ValueError(f'min_matched_share must be in [0, 1], got {min_matched_share!r}')
        if transfer not in TRANSFER_MODES:
            raise ValueError(f'transfer must be one of {TRANSFER_MODES}, got {transfer!r}')
        self.min_matched_share = min_matched_share
        self.transfer = transfer

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        """Check the checkpoint against the model before mmengine loads it (mapping its rows by name first
        with ``transfer='by_name'``)."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        source = f"checkpoint {getattr(runner, '_load_from', None) or ''}".rstrip()
        training = loads_for_training(runner)
        if self.transfer == 'by_name':
            self._transfer_by_name(runner, model, checkpoint, source, training)
        if training:
            check_checkpoint_fits(model, checkpoint, source, self.min_matched_share)
        else:
            check_checkpoint_complete(model, checkpoint, source)

    @staticmethod
    def _transfer_by_name(runner, model, checkpoint, source, training):
        """Map the vocabulary rows onto the names of the dataset the run uses: the train set when training
        (new names get fresh rows), else the test or val set (no new names allowed)."""
        loop = runner._train_loop if training else next(
            (loop for loop in (runner._test_loop, runner._val_loop) if isinstance(loop, BaseLoop)), None)
        metainfo = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
        vocabulary = dataset_vocabulary(getattr(metainfo, 'metainfo', None))
        transfer = transfer_rows_by_name(model, checkpoint, vocabulary, source, allow_new=training,
                                         require_identity=bool(runner._resume))
        check_query_groups_follow_the_data(model, transfer)
        print_log(transfer.table(source), logger='current')
