"""Synthetic data and stand-in parts that tests and benchmarks both build on (never imports either)."""
