"""The Puras skill SDK: what skill code imports inside a job.

``load_bytes`` / ``load_path`` read a file input in any of its shapes (a drive path, a
URL, inline data; SPEC S1) and ``secret`` reads a project secret (S3). The same calls
work in a deterministic skill, in an agentic skill's tools and in Python started from
``bash`` (S4): they rely only on the job's working directory (``./drive/``) and its
environment. Standard library only: this package is installed into every deployment's
virtualenv and must not bring dependencies of its own.
"""

from puras._errors import PurasError
from puras._inputs import load_bytes, load_path
from puras._secrets import secret

__all__ = ["PurasError", "load_bytes", "load_path", "secret"]
