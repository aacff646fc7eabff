"""Destination parsing and placeholder resolution (pure, no servers)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jupyter_publish.destinations import (
    object_key,
    parse_destination,
    placeholder_values,
    resolve_template,
)
from jupyter_publish.errors import DestinationError


def test_local_forms():
    for text in ("local", "local://", "LOCAL"):
        assert parse_destination(text).scheme == "local"


def test_s3_with_bacalhau_inline_options():
    dest = parse_destination(
        "s3://my-bucket/runs/{jobID}/out,opt=endpoint=http://127.0.0.1:9000,opt=region=eu-west-1"
    )
    assert (dest.scheme, dest.bucket, dest.key) == ("s3", "my-bucket", "runs/{jobID}/out")
    assert dest.options == {"endpoint": "http://127.0.0.1:9000", "region": "eu-west-1"}


def test_keyword_options_override_and_none_is_dropped():
    dest = parse_destination("s3://b1/k", endpoint="http://e", region=None)
    assert dest.options == {"endpoint": "http://e"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty destination"),
        ("ftp://host/x", "unknown destination"),
        ("s3://", "no bucket"),
        ("s3://Bad_Bucket!/k", "invalid bucket name"),
        ("s3://b1/{jobid}/", "unknown placeholder {jobid}"),
        ("s3://b1/{jobID", "malformed placeholder"),
        ("s3://b1/k,opt=region", "malformed option"),
        ("ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "computed, not chosen"),
        ("http://user:pw@host/x/", "credentials in the destination URL"),
    ],
)
def test_bad_destinations_say_what_to_do(text, fragment):
    with pytest.raises(DestinationError) as info:
        parse_destination(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "pw" not in message or "user:pw" not in message


def test_placeholders_resolve_once_in_utc():
    now = datetime(2023, 9, 26, 16, 5, 30, tzinfo=timezone.utc)
    values = placeholder_values(
        job_id="j-1", execution_id="e-1", node_id="n-1", user="ana", notebook="", now=now
    )
    key = resolve_template("results/{jobID}/{date}/{time}/{user}-{notebook}-{executionID}-{nodeID}", values)
    assert key == "results/j-1/20230926/160530/ana-notebook-e-1-n-1"


def test_placeholder_time_is_utc_even_for_local_times():
    from datetime import timedelta

    local = datetime(2023, 9, 26, 18, 5, 30, tzinfo=timezone(timedelta(hours=2)))
    values = placeholder_values(job_id="j", execution_id="e", node_id="n", user="u", notebook="n", now=local)
    assert values["time"] == "160530"


def test_literal_braces_survive():
    assert resolve_template("a/{{literal}}/{jobID}", {"jobID": "j-9"}) == "a/{literal}/j-9"


@pytest.mark.parametrize(
    ("key", "archive", "expected"),
    [
        ("runs/j-1", True, "runs/j-1.tar.gz"),
        ("runs/j-1.tar.gz", True, "runs/j-1.tar.gz"),
        ("runs/j-1/", True, "runs/j-1/results.tar.gz"),
        ("", True, "results.tar.gz"),
        ("runs/j-1", False, "runs/j-1/"),
        ("runs/j-1/", False, "runs/j-1/"),
    ],
)
def test_object_key_follows_bacalhau(key, archive, expected):
    assert object_key(key, archive=archive, archive_name="results.tar.gz") == expected


def test_query_strings_are_refused_without_echoing_them():
    with pytest.raises(DestinationError) as info:
        parse_destination("https://drop.example/up/?token=s3cr3t&x=1")
    assert "s3cr3t" not in str(info.value) and "JUPYTER_PUBLISH_HTTP_HEADERS" in str(info.value)


def test_resolve_some_pins_known_placeholders_and_keeps_the_rest():
    from jupyter_publish.destinations import resolve_some

    pinned = resolve_some("runs/{jobID}/{executionID}/{{raw}}", {"jobID": "j-1"})
    assert pinned == "runs/j-1/{executionID}/{{raw}}"
    assert resolve_template(pinned, {"executionID": "e-2"}) == "runs/j-1/e-2/{raw}"
