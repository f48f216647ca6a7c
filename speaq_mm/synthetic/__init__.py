"""From generated images to curated, weighted training data (docs/synthetic_data.md): planning the scenes to
generate, curating a scene graph model's pseudo-labels on them, and the curation report."""
from .filters import CURATION_REASONS, CurationLog, CurationOptions, curate
from .planning import ScenePlanner, read_plan
from .report import curation_report, plot_curation_report, report_text

__all__ = ['CURATION_REASONS', 'CurationLog', 'CurationOptions', 'curate', 'ScenePlanner', 'read_plan',
           'curation_report', 'plot_curation_report', 'report_text']
