"""Puras scheduler service."""
