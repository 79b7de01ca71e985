"""Puras billing service."""
