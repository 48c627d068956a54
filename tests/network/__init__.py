"""Tests of the HSMR network (hsmr_backend.hsmr)."""
