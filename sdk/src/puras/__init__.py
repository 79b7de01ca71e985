"""The Puras skill SDK: what skill code imports inside a job.

``load_bytes`` / ``load_path`` read a file input in any of its shapes (a drive path, a
URL, inline data; SPEC S1), ``media.run`` calls a registered media model and saves its
output in the drive, billed to the job (S2), and ``secret`` reads a project secret (S3).
The same calls work in a deterministic skill, in an agentic skill's tools and in Python
started from ``bash`` (S4): they rely only on the job's working directory (``./drive/``)
and its environment (the API's URL and the job's token for ``media``). Standard library
only: this package is installed into every deployment's virtualenv and must not bring
dependencies of its own. It also holds the drive-path normalizer the services use
(``puras._drive_paths``), so both sides read a path by one set of rules.
"""

from puras import media
from puras._errors import PurasError
from puras._inputs import load_bytes, load_path
from puras._secrets import secret

__all__ = ["PurasError", "load_bytes", "load_path", "media", "secret"]
