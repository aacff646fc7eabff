"""One rule says which names hold secrets (review of issue 12, #3): placeholder values
that only sound like secrets are kept, and values assigned to names that end in a
secret's stem are scrubbed from the cell source, in the ledger and the catalog alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish import provenance, redact

SECRETS = ("abcdefgh", "dbKEYvalue123", "hfKEYvalue456", "apiTOKENvalue789")
CELL = (
    'my_key = "abcdefgh"\n'
    "db_key='dbKEYvalue123'\n"
    'hf_key = "hfKEYvalue456"\n'
    'api_token = "apiTOKENvalue789"\n'
    'author = "Ada Lovelace"\n'
    "tokenizer = 'bert-base-uncased'\n"
)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("author", False),
        ("tokenizer", False),
        ("private_dir", False),
        ("monkey", False),
        ("my_key", True),
        ("db_key", True),
        ("hf_key", True),
        ("api_token", True),
        ("apiKey", True),
        ("aws_secret_access_key", True),
        ("password", True),
    ],
)
def test_one_rule_for_secret_names(name, secret):
    assert redact.is_secret_name(name) is secret
    assert redact.is_secret_name("{{" + name + "}}") is secret


def test_placeholders_that_only_sound_secret_are_kept():
    values = {"{{author}}": "Ada", "{{tokenizer}}": "bert-base", "{{private_dir}}": "/data/p"}
    values["{{db_key}}"] = "x"
    assert provenance.public_values(values) == {
        "{{author}}": "Ada",
        "{{tokenizer}}": "bert-base",
        "{{private_dir}}": "/data/p",
    }


def test_keys_assigned_in_a_cell_are_scrubbed_from_the_ledger_and_the_catalog(outside, tmp_path):
    shared = tmp_path / "team"
    shared.mkdir()
    facts = {"cell_source": CELL, "magic_line": "%%publish"}
    result = jp.publish("results", provenance=facts, catalog=str(shared))
    source = result.provenance["cell_source"]
    assert 'my_key = "***"' in source and "db_key='***'" in source and 'api_token = "***"' in source
    assert 'author = "Ada Lovelace"' in source and "tokenizer = 'bert-base-uncased'" in source
    home = Path(os.environ["JUPYTER_PUBLISH_HOME"])
    stored = b"".join(p.read_bytes() for p in sorted(home.glob("ledger.sqlite*")))
    records = list((shared / "records").glob("*.json"))
    assert records and b"Ada Lovelace" in records[0].read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in stored
        for record in records:
            assert secret.encode() not in record.read_bytes()
