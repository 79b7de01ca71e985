"""Puras gateway service."""
