"""Refuse a checkpoint whose tensors do not fit the model, before mmengine half-loads it.

mmengine loads ``load_from`` checkpoints non-strictly: a tensor whose shape differs from the model's (a
checkpoint trained with other query counts, classes or widths) is skipped with a warning and keeps its fresh
initialisation, and training or testing goes on with a partly random model; on ``--resume`` the optimizer
state then fails with an unrelated-looking error. This hook checks the shapes when the checkpoint is loaded
and stops with one message listing every mismatched key, both shapes, and the query counts on each side.
Missing and unexpected keys are still allowed (partial initialisation, e.g. from a DETR detector).
"""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

# The query tables of SpeaQDetector and the constructor argument that sets their number of rows.
QUERY_TABLES = {'subject_query_embedding.weight': 'num_entity_queries',
                'object_query_embedding.weight': 'num_entity_queries',
                'relation_query_embedding.weight': 'num_relation_queries'}


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors have other shapes than the model's."""


def shape_mismatches(checkpoint_state, model_state):
    """Keys present in both state dicts whose shapes differ.

    Args:
        checkpoint_state (dict): the checkpoint's ``state_dict`` (a ``module.`` prefix is ignored).
        model_state (dict): ``model.state_dict()``.

    Returns:
        list[tuple]: ``(key, checkpoint shape, model shape)``, in the model's key order.
    """
    stripped = {key[len('module.'):] if key.startswith('module.') else key: value
                for key, value in checkpoint_state.items()}
    return [(key, tuple(stripped[key].shape), tuple(value.shape)) for key, value in model_state.items()
            if key in stripped and hasattr(stripped[key], 'shape')
            and tuple(stripped[key].shape) != tuple(value.shape)]


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


@HOOKS.register_module()
class SpeaQCheckpointCompatibilityHook(Hook):
    """Raise :class:`CheckpointMismatchError` when a loaded or resumed checkpoint does not fit the model."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        """Compare the checkpoint's tensor shapes with the model's."""
        state = checkpoint.get('state_dict', checkpoint)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        mismatches = shape_mismatches(state, model.state_dict())
        if mismatches:
            source = getattr(runner, '_load_from', None) or 'the checkpoint'
            raise CheckpointMismatchError(describe_mismatches(mismatches, f'checkpoint {source}'))
