"""Throughput benchmarks, each reported against a peak-FLOP matmul measured in the same run."""
