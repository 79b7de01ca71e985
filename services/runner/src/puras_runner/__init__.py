"""Puras runner service."""
