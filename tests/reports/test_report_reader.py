"""The one JSON report reader: every way a report can be unusable is a ReportError naming the file."""

from __future__ import annotations

import pytest

from pipeline.compare.table import read_setting_reports
from pipeline.driver import gate_verdict
from pipeline.reports import ReportError, parse_report, read_report
from pipeline.results import render


def test_a_report_is_read_as_the_object_it_holds(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"natural_accuracy": 0.9}')
    assert read_report(path) == {"natural_accuracy": 0.9}
    path.write_text('[{"epoch": 1}]')
    assert read_report(path, expect=list) == [{"epoch": 1}]


@pytest.mark.parametrize(
    ("content", "expect", "message"),
    [
        (None, dict, r"r\.json: not found; run the stages that produce it first"),
        ("{oops", dict, r"r\.json: not valid JSON"),
        (b"\xff\xfe", dict, r"r\.json: not valid JSON"),
        ("[1, 2]", dict, r"r\.json: must be a JSON object, got list"),
        ('{"epoch": 1}', list, r"r\.json: must be a JSON list, got dict"),
    ],
)
def test_missing_garbled_or_misshapen_reports_name_the_file(tmp_path, content, expect, message):
    path = tmp_path / "r.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ReportError, match=message):
        read_report(path, expect)


def test_parse_report_reads_bytes_already_in_hand():
    assert parse_report(b'{"verdict": "approved"}', "gate.json") == {"verdict": "approved"}
    with pytest.raises(ReportError, match="gate.json: not valid JSON"):
        parse_report(b"{", "gate.json")


def test_the_former_readers_all_raise_the_one_error(tmp_path):
    """The comparison table, the driver's verdict and the README tables read reports the same way."""
    (tmp_path / "baseline.json").write_text("{not json")
    with pytest.raises(ReportError, match="baseline.json: not valid JSON"):
        read_setting_reports(tmp_path)
    with pytest.raises(ReportError, match="gate.json: not found"):
        gate_verdict(tmp_path / "gate.json")
    with pytest.raises(ReportError, match="train_baseline.json: not found"):
        render(tmp_path)
