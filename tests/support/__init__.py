"""Helpers only tests use (the network and video tests' files); data tests and benchmarks share lives in synthetic/."""
