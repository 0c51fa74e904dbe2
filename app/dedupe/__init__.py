"""Probabilistic dedupe for ledger rows without a natural key, review queue and merge."""
