"""High-level entry points built on the package: the toy train-and-evaluate run."""
