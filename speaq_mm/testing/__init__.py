"""Helpers for tests and benchmarks: random valid batches (``random_batches``), the plain-loop evaluation
oracles with their synthetic images: VG150-like (``evaluation_oracle``) and Open Images-like
(``oi_evaluation_oracle``), the host round-trip counter (``host_sync_counter``) and the per-stage profile of
``tools/benchmarks/bench_model.py --profile`` (``stage_profile``)."""
from .host_sync_counter import HostSyncCounter

__all__ = ['HostSyncCounter']
