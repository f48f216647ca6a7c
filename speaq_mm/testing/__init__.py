"""Helpers for tests and benchmarks: random valid batches (``random_batches``) and the plain-loop evaluation
oracles with their synthetic images: VG150-like (``evaluation_oracle``) and Open Images-like
(``oi_evaluation_oracle``)."""
