"""Tests of the body models (hsmr_backend.skel: SKEL and the open body)."""
