"""mtdepth: instance-aware depth completion (MT-Depth) as a cached two-stage pipeline."""

__version__ = "0.1.0"
