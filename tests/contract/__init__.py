"""Tests of the contract package (hsmr_contract) and the documents generated from it."""
