"""Benchmarks behind ``bijli bench``: one module per area, each with ``bench(seconds)``.

They measure; they never assert. The machine is shared and noisy, so figures are
compared side by side within one run, never against a figure from another run.
"""
