"""The drive-path normalizer (SPEC D9) under the name the services import.

The rules themselves live in the skill SDK (``puras._drive_paths``, standard library
only) so that skill code in a job and the services check a drive path with one
implementation; this module only re-exports it.
"""

from puras._drive_paths import (
    MAX_DECODE_LEVELS,
    MAX_PATH_BYTES,
    MAX_SEGMENT_BYTES,
    DrivePath,
    DrivePathError,
    normalize_file_path,
    normalize_path,
    normalize_prefix,
)

__all__ = [
    "MAX_DECODE_LEVELS",
    "MAX_PATH_BYTES",
    "MAX_SEGMENT_BYTES",
    "DrivePath",
    "DrivePathError",
    "normalize_file_path",
    "normalize_path",
    "normalize_prefix",
]
