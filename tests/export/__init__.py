"""Tests of the biomechanics exports (hsmr_backend.export)."""
