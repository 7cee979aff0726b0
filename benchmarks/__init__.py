"""Measuring the chat: a load generator and the results it produced.

Not part of the ``chat`` package -- a tool beside the course, as a profiler is.
Run ``python -m benchmarks --help`` from the repository folder; the figures
and how they were measured are in ``benchmarks/results.md``.
"""
