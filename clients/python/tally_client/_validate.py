"""_validate.py — MLflow's rules for metric, param and tag keys
(mlflow-rest-api.md §6), checked on the client so one bad key never reaches a
frame: the server would refuse the whole frame for it.
"""

import posixpath
import re

MAX_KEY_CHARS = 250
_KEY_RE = re.compile(r"^[/\w.\- :]*$")


def check_key(key, what="metric"):
    if not isinstance(key, str):
        raise TypeError(f"{what} key must be a str, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_CHARS or not _KEY_RE.match(key):
        raise ValueError(
            f"invalid {what} key {key!r}: 1..{MAX_KEY_CHARS} characters of letters, digits, "
            "'_', '-', '.', ' ', '/' or ':'")
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise ValueError(f"invalid {what} key {key!r}: it must be a normalized relative path")
