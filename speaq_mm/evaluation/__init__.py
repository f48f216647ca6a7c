"""Scene graph evaluation: the registered ``SGGMetric`` and dump metric, a test progress bar, and the
numpy cores (``sgg_core`` for VG, ``oi_core`` for Open Images, ``records``) that the offline tool shares. See
``docs/evaluation.md`` and ``docs/open_images.md``."""
from .oi_core import compute_oi_image_stats, format_oi_summary, summarize_oi_stats
from .records import load_prediction_dump, load_zeroshot_triplets, record_from_data_sample
from .sgg_core import compute_image_stats
from .sgg_metric import SGGDumpResults, SGGMetric, add_scene_graph_outputs
from .sgg_summary import evaluation_settings, format_summary, summarize_image_stats

__all__ = [
    'SGGMetric', 'SGGDumpResults', 'add_scene_graph_outputs',
    'compute_image_stats', 'summarize_image_stats', 'evaluation_settings', 'format_summary',
    'compute_oi_image_stats', 'summarize_oi_stats', 'format_oi_summary',
    'load_prediction_dump', 'load_zeroshot_triplets', 'record_from_data_sample'
]
