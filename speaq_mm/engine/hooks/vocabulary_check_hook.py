"""Refuse a model whose class or predicate count differs from the dataset it trains or is evaluated on.

A model with 8 entity classes evaluated on a 6-class dataset runs without an error (the labels are only
indices) and produces metrics for classes that do not exist. mmdet's ``NumClassCheckHook`` checks
``num_classes`` only; this hook checks the entity classes and the predicates of the SpeaQ head
(``num_entity_classes``, ``num_predicates``) and the ``num_classes`` of mmdet heads, against the ``classes`` and
``predicates`` of the dataset's metainfo, before training, validation and testing.
"""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

# head attribute -> the dataset metainfo key whose length it must equal
_COUNTS = (('num_entity_classes', 'classes'), ('num_classes', 'classes'), ('num_predicates', 'predicates'))


def vocabulary_mismatches(model, metainfo):
    """``(head attribute, model count, metainfo key, dataset count)`` for every count that disagrees."""
    head = getattr(model, 'bbox_head', None)
    found = []
    for attribute, key in _COUNTS:
        count, names = getattr(head, attribute, None), (metainfo or {}).get(key)
        if isinstance(count, int) and names is not None and count != len(names):
            found.append((attribute, count, key, len(names)))
    return found


@HOOKS.register_module()
class SpeaQVocabularyCheckHook(Hook):
    """Raise ``ValueError`` before train / val / test when the model's counts differ from the dataset's."""

    priority = 'VERY_HIGH'

    def _check(self, runner, loader_name):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = getattr(runner, loader_name).dataset
        mismatches = vocabulary_mismatches(model, dataset.metainfo)
        if mismatches:
            details = '; '.join(f'model.bbox_head.{attribute} = {count} but {loader_name}.dataset has {size} '
                                f'{key}' for attribute, count, key, size in mismatches)
            raise ValueError(f'the model does not fit the dataset: {details}. Set the head to the dataset\'s '
                             'vocabulary, or evaluate on the dataset the model was trained for.')

    def before_train(self, runner):
        """Check the training dataset."""
        self._check(runner, 'train_dataloader')

    def before_val(self, runner):
        """Check the validation dataset."""
        self._check(runner, 'val_dataloader')

    def before_test(self, runner):
        """Check the test dataset."""
        self._check(runner, 'test_dataloader')
