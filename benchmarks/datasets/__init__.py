"""Benchmark datasets: the ``python -m benchmarks.datasets`` command line (``stats``, ...)."""
