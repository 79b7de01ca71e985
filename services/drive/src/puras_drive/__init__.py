"""Puras drive service."""
