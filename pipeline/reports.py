"""One reader for the JSON reports stages hand each other, with one error type.

A missing file, bytes that are not JSON, or JSON of the wrong shape (a report is an object; a
per-epoch curve is a list of rows) all raise ``ReportError``, whose message starts with the file.
Callers that must say more (the release gate refuses) wrap it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class ReportError(ValueError):
    """A report is missing, not JSON, or not of the expected shape; the message names the file."""


def parse_report(data: bytes, path: str | os.PathLike, expect: type[dict] | type[list] = dict) -> Any:
    """The report in ``data``: bytes already read, e.g. to hash exactly what is parsed."""
    try:
        report = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(report, expect):
        shape = "object" if expect is dict else "list"
        raise ReportError(f"{path}: must be a JSON {shape}, got {type(report).__name__}")
    return report


def read_report_bytes(path: str | os.PathLike) -> bytes:
    """The report file's bytes; a missing file says to run the stage that writes it."""
    file = Path(path)
    if not file.is_file():
        raise ReportError(f"{file}: not found; run the stages that produce it first")
    return file.read_bytes()


def read_report(path: str | os.PathLike, expect: type[dict] | type[list] = dict) -> Any:
    """An upstream stage's JSON report (an object; ``expect=list`` for a per-epoch curve)."""
    return parse_report(read_report_bytes(path), path, expect)
