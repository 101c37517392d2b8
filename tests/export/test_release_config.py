"""Params sections of export/register/serve: typos and bad values are errors naming the key."""

import pytest

from pipeline.config import load_section
from pipeline.export.config import ExportSection
from pipeline.registry_mlflow.config import RegisterSection
from pipeline.serve.config import ServeSection
from tests.export.release_fixtures import write_params


def test_defaults_are_valid():
    assert ExportSection().max_batch == 64 and ServeSection().host == "127.0.0.1"
    assert RegisterSection().champion_alias == "champion"


@pytest.mark.parametrize(
    ("section", "schema", "raw", "message"),
    [
        ("export", ExportSection, {"max_bach": 8}, "export.max_bach"),
        ("export", ExportSection, {"parity": {"atol": -1}}, "export.parity.atol"),
        ("export", ExportSection, {"max_batch": 4}, "opt_batch"),
        ("export", ExportSection, {"name": "has space"}, "model name must match"),
        ("register", RegisterSection, {"champion_alias": "candidate"}, "must differ"),
        ("serve", ServeSection, {"port": 70000}, "serve.port"),
    ],
)
def test_bad_values_name_the_key(tmp_path, section, schema, raw, message):
    params = write_params(tmp_path / "params.yaml", **{section: raw})
    with pytest.raises(ValueError, match=message):
        load_section(section, params, schema)
