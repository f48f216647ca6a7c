"""Training hooks; each registers into mmdet's HOOKS on import."""
from .checkpoint_compatibility_hook import SpeaQCheckpointCompatibilityHook
from .empty_relations_guard_hook import SpeaQEmptyRelationsGuardHook
from .exact_resume_hook import SpeaQExactResumeHook
from .nan_guard_hook import SpeaQNonFiniteGuardHook
from .source_mix_hook import SourceMixHook
from .speaq_checkpoint_hook import SpeaQCheckpointHook
from .train_statistics_hook import SpeaQTrainStatisticsHook
from .vocabulary_check_hook import SpeaQVocabularyCheckHook

__all__ = [
    'SpeaQCheckpointCompatibilityHook', 'SpeaQEmptyRelationsGuardHook', 'SpeaQExactResumeHook',
    'SpeaQNonFiniteGuardHook', 'SourceMixHook', 'SpeaQCheckpointHook', 'SpeaQTrainStatisticsHook',
    'SpeaQVocabularyCheckHook'
]
