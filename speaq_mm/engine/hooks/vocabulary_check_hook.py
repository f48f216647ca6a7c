"""Refuse a model whose classes or predicates differ from those of the dataset it trains or is evaluated on.

A model with 8 entity classes evaluated on a 6-class dataset runs without an error (the labels are only
indices) and produces metrics for classes that do not exist; a checkpoint trained with two class names in
the other order is evaluated against the wrong names just as silently. mmdet's ``NumClassCheckHook`` checks
``num_classes`` only; this hook checks the entity classes and the predicates of the SpeaQ head
(``num_entity_classes``, ``num_predicates``) and the ``num_classes`` of mmdet heads against the ``classes`` and
``predicates`` of the dataset's metainfo, and, when the checkpoint the model was loaded from names them too
(mmengine saves the training set's metainfo in ``meta.dataset_meta``), the names in order, before training,
validation and testing.
"""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from .checkpoint_compatibility_hook import loads_for_training

# head attribute -> the dataset metainfo key whose length it must equal
_COUNTS = (('num_entity_classes', 'classes'), ('num_classes', 'classes'), ('num_predicates', 'predicates'))
_NAME_KEYS = ('classes', 'predicates')
_SHOWN = 5


def vocabulary_mismatches(model, metainfo):
    """``(head attribute, model count, metainfo key, dataset count)`` for every count that disagrees."""
    head = getattr(model, 'bbox_head', None)
    found = []
    for attribute, key in _COUNTS:
        count, names = getattr(head, attribute, None), (metainfo or {}).get(key)
        if isinstance(count, int) and names is not None and count != len(names):
            found.append((attribute, count, key, len(names)))
    return found


def vocabulary_name_mismatches(model_vocabulary, metainfo):
    """``(metainfo key, [(position, model name, dataset name), ...])`` for every key whose names differ where
    both sides give them (``classes``, ``predicates``; keys compared case-insensitively)."""
    model_side = {str(key).lower(): value for key, value in (model_vocabulary or {}).items()}
    dataset_side = {str(key).lower(): value for key, value in (metainfo or {}).items()}
    found = []
    for key in _NAME_KEYS:
        ours, theirs = model_side.get(key), dataset_side.get(key)
        if ours is None or theirs is None:
            continue
        ours, theirs = [str(name) for name in ours], [str(name) for name in theirs]
        if ours != theirs:
            length = max(len(ours), len(theirs))
            pairs = [(i, ours[i] if i < len(ours) else None, theirs[i] if i < len(theirs) else None)
                     for i in range(length)]
            found.append((key, [pair for pair in pairs if pair[1] != pair[2]]))
    return found


@HOOKS.register_module()
class SpeaQVocabularyCheckHook(Hook):
    """Raise ``ValueError`` before train / val / test when the model's counts or names differ from the
    dataset's.

    The model's names are those of the checkpoint it was loaded from for testing or validation, or resumed
    from (``meta.dataset_meta``); a checkpoint loaded to initialise training (``load_from``) may come from
    another vocabulary, so only its counts are checked.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self.model_vocabulary = None

    def after_load_checkpoint(self, runner, checkpoint):
        """Keep the names of a checkpoint loaded for testing, validation or resuming."""
        if not loads_for_training(runner) or getattr(runner, '_resume', False):
            self.model_vocabulary = (checkpoint.get('meta') or {}).get('dataset_meta')

    def _check(self, runner, loader_name):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = getattr(runner, loader_name).dataset
        mismatches = vocabulary_mismatches(model, dataset.metainfo)
        if mismatches:
            details = '; '.join(f'model.bbox_head.{attribute} = {count} but {loader_name}.dataset has {size} '
                                f'{key}' for attribute, count, key, size in mismatches)
            raise ValueError(f'the model does not fit the dataset: {details}. Set the head to the dataset\'s '
                             'vocabulary, or evaluate on the dataset the model was trained for.')
        renamed = vocabulary_name_mismatches(self.model_vocabulary, dataset.metainfo)
        if renamed:
            details = '; '.join(
                f'{key}: ' + ', '.join(f'#{i} is {ours!r} in the checkpoint but {theirs!r} in the dataset'
                                       for i, ours, theirs in pairs[:_SHOWN])
                + (f' ({len(pairs)} positions differ)' if len(pairs) > _SHOWN else '') for key, pairs in renamed)
            raise ValueError(f'the checkpoint\'s names differ from {loader_name}.dataset\'s ({details}): the model '
                             'would be scored against the wrong names. Use the dataset (dicts file) the model was '
                             'trained on, or a checkpoint trained on this one.')

    def before_train(self, runner):
        """Check the training dataset."""
        self._check(runner, 'train_dataloader')

    def before_val(self, runner):
        """Check the validation dataset."""
        self._check(runner, 'val_dataloader')

    def before_test(self, runner):
        """Check the test dataset."""
        self._check(runner, 'test_dataloader')
