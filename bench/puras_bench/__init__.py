"""Puras benchmarks: our stack and the Celery + Redis peer, driven by the same HTTP client.

``bench/run.py`` is the entry point (``./dev bench``); the modules here are its parts.
"""
