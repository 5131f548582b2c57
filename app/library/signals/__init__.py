"""Signals beyond the embedding: see base.py."""
