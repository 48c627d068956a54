"""The test suite, one folder per part under test (the rule: docs/development.md)."""
