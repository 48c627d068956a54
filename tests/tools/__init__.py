"""Tests of build.py, tools/, the benchmarks' own maths, and the repository's code rules."""
