"""Helpers for tests and benchmarks: random valid batches (``random_batches``) and the plain-loop evaluation
oracle with its synthetic VG150-like images (``evaluation_oracle``)."""
