"""``export(job, ro_crate=DIR)``: an RO-Crate 1.1 of a real publish, checked against the
spec's required properties and read back with ro-crate-py."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import jupyter_publish as jp
from jupyter_publish import redact
from jupyter_publish.crate import COMPLETED, FAILED, HOMEPAGE, METADATA_FILE, NO_LICENSE, check_crate
from jupyter_publish.errors import DestinationError, NotFoundError

CONTEXT = "https://w3id.org/ro/crate/1.1/context"


@pytest.fixture(autouse=True)
def _no_license_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTER_PUBLISH_LICENSE", raising=False)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    (root / "plots" / "deep").mkdir(parents=True)
    (root / "table.csv").write_text("a,b\n1,2\n")
    (root / "plots" / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(50)))
    (root / "plots" / "deep" / "notes.md").write_text("# notes\n")
    (root / "my file #1 50%.txt").write_text("odd name\n")
    (root / "面试.json").write_text("{}\n")
    return root


def provenance() -> dict[str, Any]:
    """A provenance dict shaped as the contract says (the prov helper fills it for real)."""
    return {
        "notebook": "/home/alice/work/analysis.ipynb",
        "cell_source": "df = load()\ndf.to_csv('results/table.csv')",
        "cell_sha256": "5" * 64,
        "magic_line": "%%publish s3://bucket/runs/{jobID}/ --name results",
        "kernel": "ipykernel 6.29.5",
        "python": "3.11.7",
        "packages": {"pandas": "2.2.3", "numpy": "1.26.4"},
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True, "branch": "main"},
        "host": "lab-7",
        "user": "alice",
        "started_at": "2026-12-07T06:00:00.000Z",
        "finished_at": "2026-12-07T06:00:02.250Z",
        "duration_s": 2.25,
        "status": "published",
        "tool": "jupyter-publish 0.1.0",
    }


INPUTS = [
    {"ref": "j-01ABCDEFGHJKMNPQRSTVWXYZ00", "kind": "job", "job_id": "j-01ABCDEFGHJKMNPQRSTVWXYZ00",
     "cid": None, "via": "fetch"},
    {"ref": "ipfs://QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX", "kind": "cid", "job_id": None,
     "cid": "QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX", "via": "line"},
    {"ref": "https://example.org/data/raw.csv", "kind": "uri", "job_id": None, "cid": None, "via": "fetch"},
]  # fmt: skip


def load(written: Path) -> dict[str, Any]:
    assert written.name == METADATA_FILE
    document: dict[str, Any] = json.loads(written.read_text(encoding="utf-8"))
    return document


def graph(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["@id"]: e for e in document["@graph"]}


def refs(value: Any) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def assert_valid(crate_dir: Path) -> dict[str, Any]:
    """Our check of RO-Crate 1.1's requirements, and ro-crate-py reading it back."""
    from rocrate.rocrate import ROCrate

    document = load(crate_dir / METADATA_FILE)
    assert check_crate(document) == []
    crate = ROCrate(crate_dir)
    assert crate.name == graph(document)["./"]["name"]
    assert {e.id for e in crate.data_entities} == set(refs(graph(document)["./"]["hasPart"]))
    return document


def assert_describes(document: dict[str, Any], result: jp.PublishedResult) -> None:
    """Every file, folder and archive of the job is a data entity with its facts."""
    entities = graph(document)
    parts = refs(entities["./"]["hasPart"])
    by_path = {(e["alternateName"], e["@type"]): e for e in (entities[p] for p in parts)}
    assert len(parts) == len(result.all_records()) == len(set(parts))
    for record in result.all_records():
        kind = "Dataset" if record.kind == "dir" else "File"
        entity = by_path[(record.path, kind)]
        assert entity["identifier"] == f"ipfs://{record.cid}"
        if record.kind != "dir":
            assert entity["sha256"] == record.sha256
            assert entity["contentSize"] == str(record.size)
            assert entity["encodingFormat"]
            assert entity["contentUrl"] == entity["@id"]
            assert unquote(entity["@id"]).endswith(record.path)
    root = entities["./"]
    assert root["identifier"] == result.job_id
    assert root["datePublished"] == result.created_at
    action = entities[refs(root["mentions"])[0]]
    assert action["@type"] == "CreateAction"
    assert sorted(refs(action["result"])) == sorted(parts)


def test_local_archive_publish_exports_a_valid_crate_by_job_id(results, tmp_path):
    result = jp.publish(results)
    written = jp.export(result.job_id, ro_crate=tmp_path / "crate")

    assert written == tmp_path / "crate" / METADATA_FILE
    document = assert_valid(tmp_path / "crate")
    assert_describes(document, result)
    entities = graph(document)
    assert document["@context"][0] == CONTEXT
    descriptor = entities[METADATA_FILE]
    assert descriptor["conformsTo"] == {"@id": "https://w3id.org/ro/crate/1.1"}
    assert descriptor["about"] == {"@id": "./"}
    assert result.archive is not None
    archive = entities[f"local://{result.job_id}/{result.archive.path}"]
    assert archive["encodingFormat"] == "application/gzip"
    top = next(e for e in entities.values() if e.get("alternateName") == "." and e["@type"] == "Dataset")
    assert top["distribution"] == {"@id": archive["@id"]}
    assert top["identifier"] == f"ipfs://{result.root_cid}"
    png = next(e for e in entities.values() if e.get("alternateName") == "plots/fig.png")
    assert png["encodingFormat"] == "image/png"
    assert png["@id"] == f"local://{result.job_id}/{result.archive.path}#plots/fig.png"


def test_plain_publish_keeps_the_folder_tree_and_odd_names(results, tmp_path):
    result = jp.publish(results, archive=False)
    jp.export(result.job_id[:12], ro_crate=tmp_path / "crate")  # a unique prefix is enough

    document = assert_valid(tmp_path / "crate")
    assert_describes(document, result)
    entities = graph(document)
    base = f"local://{result.job_id}/"
    assert refs(entities[base]["hasPart"]) == sorted(
        [base + "my%20file%20%231%2050%25.txt", base + "plots/", base + "table.csv", base + "面试.json"]
    )
    assert refs(entities[base + "plots/"]["hasPart"]) == [base + "plots/deep/", base + "plots/fig.png"]
    assert refs(entities[base + "plots/deep/"]["hasPart"]) == [base + "plots/deep/notes.md"]
    odd = entities[base + "my%20file%20%231%2050%25.txt"]
    assert odd["alternateName"] == "my file #1 50%.txt"
    assert odd["name"] == "my file #1 50%.txt"


def test_provenance_becomes_a_create_action(results, tmp_path):
    result = jp.publish(results)
    result.provenance = provenance()
    result.inputs = [dict(i) for i in INPUTS]
    jp.export(result, ro_crate=tmp_path / "crate", license="CC-BY-4.0")

    document = assert_valid(tmp_path / "crate")
    entities = graph(document)
    root = entities["./"]
    assert root["conformsTo"] == {"@id": "https://w3id.org/ro/wfrun/process/0.5"}
    assert root["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert entities["https://spdx.org/licenses/CC-BY-4.0"]["identifier"] == "CC-BY-4.0"
    action = entities[f"#publish-{result.job_id}"]
    assert action["actionStatus"] == COMPLETED
    assert action["startTime"] == "2026-12-07T06:00:00.000+00:00"
    assert action["endTime"] == "2026-12-07T06:00:02.250+00:00"
    assert action["description"] == provenance()["magic_line"]
    person = entities[refs(action["agent"])[0]]
    assert (person["@type"], person["name"]) == ("Person", "alice")
    assert root["author"] == action["agent"]

    tool, notebook = (entities[i] for i in refs(action["instrument"]))
    assert (tool["@id"], tool["softwareVersion"]) == (HOMEPAGE, "0.1.0")
    assert notebook["name"] == "analysis.ipynb"
    assert notebook["alternateName"] == "/home/alice/work/analysis.ipynb"
    assert notebook["version"] == "0123456789abcdef0123456789abcdef01234567-dirty"
    assert "uncommitted changes" in notebook["description"]
    needs = {
        entities[i]["name"]: entities[i].get("softwareVersion")
        for i in refs(notebook["softwareRequirements"])
    }
    assert needs == {"Python": "3.11.7", "ipykernel": "6.29.5", "numpy": "1.26.4", "pandas": "2.2.3"}
    cell = entities[refs(notebook["hasPart"])[0]]
    assert cell["text"] == provenance()["cell_source"]
    assert cell["sha256"] == "5" * 64

    used = [entities[i] for i in refs(action["object"])]
    assert [u["identifier"] for u in used[:2]] == [INPUTS[0]["job_id"], f"ipfs://{INPUTS[1]['cid']}"]
    assert used[2]["@id"] == "https://example.org/data/raw.csv"
    assert all(u["@type"] == "CreativeWork" for u in used)  # contextual: not part of this crate


def test_empty_provenance_still_makes_a_valid_crate(results, tmp_path):
    # A record from before provenance was captured (or a hand-made one) has none.
    result = dataclasses.replace(jp.publish(results), provenance={}, inputs=[])
    jp.export(result, ro_crate=tmp_path / "crate")

    entities = graph(assert_valid(tmp_path / "crate"))
    action = entities[f"#publish-{result.job_id}"]
    assert refs(action["instrument"]) == [HOMEPAGE]
    assert "agent" not in action and "object" not in action
    assert action["endTime"] == result.created_at.replace("Z", "+00:00")
    assert entities["./"]["license"] == {"@id": NO_LICENSE}  # 1.1 requires one; never guessed
    assert entities[NO_LICENSE]["name"] == "No license stated"
    assert "softwareVersion" not in entities[HOMEPAGE]  # the version that published is unknown

    jp.export(result.to_dict(), ro_crate=tmp_path / "from-dict")  # a result as --json printed it
    assert (tmp_path / "from-dict" / METADATA_FILE).read_bytes() == (
        tmp_path / "crate" / METADATA_FILE
    ).read_bytes()


def test_a_failed_job_says_so(results, tmp_path):
    result = jp.publish(results)
    result.provenance = {**provenance(), "status": "failed", "error": "BackendError: 503 from the store"}
    jp.export(result, ro_crate=tmp_path / "crate", license="https://example.org/licence")

    entities = graph(assert_valid(tmp_path / "crate"))
    action = entities[f"#publish-{result.job_id}"]
    assert action["actionStatus"] == FAILED
    assert action["error"] == "BackendError: 503 from the store"
    assert entities["./"]["license"] == {"@id": "https://example.org/licence"}


def test_no_secret_reaches_the_crate(results, tmp_path, monkeypatch):
    secret = "s3cr3t-T0ken-value-9f8e7d"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY")
    redact.register(secret)
    result = jp.publish(results)
    result.url = f"https://store.example/x.tar.gz?X-Amz-Signature=abc123def&token={secret}"
    result.provenance = {
        **provenance(),
        "magic_line": f"%%publish https://up.example/ --auth alice:{secret}",
        "cell_source": f"API_TOKEN = '{secret}'\n",
        "git": {"commit": "ab" * 20, "dirty": False, "remote": f"https://alice:{secret}@git.example/r.git"},
    }
    result.inputs = [
        {"ref": f"https://data.example/in.csv?X-Amz-Signature=ff00&X-Amz-Credential={secret}", "kind": "uri",
         "job_id": None, "cid": None, "via": "fetch"},
    ]  # fmt: skip
    jp.export(result, ro_crate=tmp_path / "crate")

    text = (tmp_path / "crate" / METADATA_FILE).read_text(encoding="utf-8")
    assert secret not in text
    assert "wJalrXUtnFEMI" not in text
    assert "abc123def" not in text and "X-Amz-Signature" not in text and "ff00" not in text
    entities = graph(assert_valid(tmp_path / "crate"))
    assert entities["https://data.example/in.csv"]["url"] == "https://data.example/in.csv"
    assert entities["#notebook"]["codeRepository"] == "https://git.example/r.git"


def test_a_secret_shaped_like_json_does_not_break_the_crate(results, tmp_path):
    """Scrubbing the text in one pass could cut through JSON syntax (a registered secret
    that spans a quote): then each value is scrubbed on its own, and the crate stays valid."""
    redact.register('": "alice')
    result = jp.publish(results)
    result.provenance = {**provenance(), "cell_source": 'who = "": "alice"'}
    jp.export(result, ro_crate=tmp_path / "crate")

    entities = graph(assert_valid(tmp_path / "crate"))
    assert entities["#person-alice"]["name"] == "alice"
    assert entities["#cell"]["text"] == 'who = "***"'


# -- the folder ------------------------------------------------------------------------------


def test_a_folder_holding_other_files_is_refused_untouched(results, tmp_path):
    result = jp.publish(results)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("mine")

    with pytest.raises(DestinationError, match="not empty") as caught:
        jp.export(result, ro_crate=busy)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in busy.iterdir()) == ["thesis.tex"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(DestinationError, match="is a file"):
        jp.export(result, ro_crate=tmp_path / "a-file")


def test_a_previous_crate_is_replaced_and_an_empty_folder_used(results, tmp_path):
    first, second = jp.publish(results), jp.publish(results)
    folder = tmp_path / "crate"
    jp.export(first, ro_crate=folder)
    (folder / "ro-crate-preview.html").write_text("<html>old</html>")  # what another tool may add
    jp.export(second, ro_crate=folder)

    assert graph(load(folder / METADATA_FILE))["./"]["identifier"] == second.job_id
    assert sorted(p.name for p in folder.iterdir()) == [METADATA_FILE]  # the stale preview went
    empty = tmp_path / "empty"
    empty.mkdir()
    jp.export(first, ro_crate=empty)
    assert graph(load(empty / METADATA_FILE))["./"]["identifier"] == first.job_id


def test_nothing_half_written_when_writing_fails(results, tmp_path, monkeypatch):
    first, second = jp.publish(results), jp.publish(results)
    folder = tmp_path / "crate"
    jp.export(first, ro_crate=folder)
    before = (folder / METADATA_FILE).read_bytes()

    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        jp.export(second, ro_crate=folder)
    assert (folder / METADATA_FILE).read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [METADATA_FILE]

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(OSError, match="No space"):
        jp.export(second, ro_crate=tmp_path / "new" / "crate")
    assert list((tmp_path / "new").iterdir()) == []  # no folder, no staging left behind


def test_an_unknown_job_is_one_line(tmp_path):
    with pytest.raises(NotFoundError, match="no job"):
        jp.export("j-nope-nope", ro_crate=tmp_path / "crate")
    assert not (tmp_path / "crate").exists()


# -- the command line and the package --------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_export(results, tmp_path):
    result = jp.publish(results)
    done = run("export", result.job_id, "--ro-crate", str(tmp_path / "crate"), "--license", "MIT")
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "crate" / METADATA_FILE) in done.stdout
    assert graph(assert_valid(tmp_path / "crate"))["./"]["license"] == {
        "@id": "https://spdx.org/licenses/MIT"
    }

    again = run("export", result.job_id, "--ro-crate", str(tmp_path / "crate"), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["@context"][0] == CONTEXT

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("x")
    refused = run("export", result.job_id, "--ro-crate", str(tmp_path / "other"))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "not empty" in refused.stderr
    missing = run("export", "j-nothing-here", "--ro-crate", str(tmp_path / "x"))
    assert missing.returncode == 1 and "no job" in missing.stderr


def test_export_is_lazy():
    probe = (
        "import sys, jupyter_publish, jupyter_publish.api, jupyter_publish.cli, jupyter_publish.crate\n"
        "assert 'rocrate' not in sys.modules, 'rocrate imported eagerly'\n"
        "export = jupyter_publish.export\n"
        "assert callable(export) and export.__module__ == 'jupyter_publish.api'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
    assert "export" in jp.__all__


# -- real stores -------------------------------------------------------------------------------


def test_s3_publish_with_a_presigned_link(s3_env, s3_bucket, results, tmp_path):
    result = jp.publish(results, f"s3://{s3_bucket}/runs/{{jobID}}/", endpoint=s3_env.endpoint, presign="1h")
    assert result.url and "X-Amz-Signature" in result.url
    jp.export(result.job_id, ro_crate=tmp_path / "crate")

    text = (tmp_path / "crate" / METADATA_FILE).read_text(encoding="utf-8")
    assert s3_env.secret_key not in text and s3_env.access_key not in text
    assert "X-Amz-" not in text
    document = assert_valid(tmp_path / "crate")
    assert_describes(document, result)
    assert result.archive is not None
    archive = graph(document)[f"s3://{s3_bucket}/runs/{result.job_id}/{result.archive.path}"]
    assert archive["url"] == f"{s3_env.endpoint}/{s3_bucket}/runs/{result.job_id}/{result.archive.path}"


def test_s3_plain_publish(s3_env, s3_bucket, results, tmp_path):
    result = jp.publish(
        results, f"s3://{s3_bucket}/plain/{{jobID}}/", endpoint=s3_env.endpoint, archive=False
    )
    jp.export(result, ro_crate=tmp_path / "crate")

    entities = graph(assert_valid(tmp_path / "crate"))
    base = f"s3://{s3_bucket}/plain/{result.job_id}/"
    assert entities[base + "table.csv"]["contentUrl"] == base + "table.csv"
    assert entities[base + "plots/"]["@type"] == "Dataset"


def test_ipfs_publish(ipfs_env, results, tmp_path):
    result = jp.publish(results, "ipfs://", archive=False)
    jp.export(result, ro_crate=tmp_path / "crate")

    document = assert_valid(tmp_path / "crate")
    assert_describes(document, result)
    entities = graph(document)
    table = entities[f"ipfs://{result.params['CID']}/table.csv"]
    record = next(r for r in result.files if r.path == "table.csv")
    assert table["identifier"] == f"ipfs://{record.cid}"
    assert table["url"] == record.url  # the gateway link, which has no secret


def test_the_license_setting(results, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PUBLISH_LICENSE", "CC0-1.0")
    result = jp.publish(results)
    jp.export(result, ro_crate=tmp_path / "env")
    jp.export(result, ro_crate=tmp_path / "given", license="Apache-2.0")

    assert graph(assert_valid(tmp_path / "env"))["./"]["license"] == {
        "@id": "https://spdx.org/licenses/CC0-1.0"
    }
    given = graph(assert_valid(tmp_path / "given"))["./"]["license"]
    assert given == {"@id": "https://spdx.org/licenses/Apache-2.0"}


def test_check_crate_finds_what_the_spec_requires():
    """The checker the tests rely on fails a crate missing what RO-Crate 1.1 requires."""
    good = {
        "@context": CONTEXT,
        "@graph": [
            {"@id": METADATA_FILE, "@type": "CreativeWork", "about": {"@id": "./"},
             "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"}},
            {"@id": "./", "@type": "Dataset", "name": "n", "description": "d", "datePublished": "2026-12-07",
             "license": {"@id": "https://spdx.org/licenses/MIT"}, "hasPart": {"@id": "a.csv"}},
            {"@id": "a.csv", "@type": "File"},
        ],
    }  # fmt: skip
    assert check_crate(good) == []
    root = good["@graph"][1]
    broken = {**good, "@graph": [good["@graph"][0], {**root, "datePublished": "7 Dec"}]}
    assert check_crate(broken) == [
        "datePublished '7 Dec' is not ISO 8601",
        "hasPart a.csv is not in @graph",
        "./ hasPart refers to a.csv, which is not described",
    ]
    unlicensed = {**good, "@graph": [good["@graph"][0], {k: v for k, v in root.items() if k != "license"}]}
    assert "the root has no license" in check_crate(unlicensed)
    dangling = {**good, "@graph": [*good["@graph"], {"@id": "#x", "@type": "Thing", "about": {"@id": "#y"}}]}
    assert check_crate(dangling) == ["#x about refers to #y, which is not described"]
    assert "no ro-crate-metadata.json descriptor" in check_crate({**good, "@graph": good["@graph"][1:]})


def _validator_python() -> str | None:
    """A Python with roc-validator (optional: not a dependency): ``$JP_ROCRATE_VALIDATOR_PYTHON``
    (e.g. a separate venv's), or this one if it has it."""
    configured = os.environ.get("JP_ROCRATE_VALIDATOR_PYTHON")
    if configured:
        return configured
    return sys.executable if importlib.util.find_spec("rocrate_validator") else None


@pytest.mark.skipif(_validator_python() is None, reason="roc-validator is not installed (optional)")
def test_the_community_validator_accepts_the_crates(results, tmp_path):
    import rocrate

    full = jp.publish(results, archive=False)
    full.provenance, full.inputs = provenance(), [dict(i) for i in INPUTS]
    jp.export(full, ro_crate=tmp_path / "full", license="CC-BY-4.0")
    jp.export(jp.publish(results), ro_crate=tmp_path / "bare")  # no provenance, no license
    # The 1.1 context if given, else ro-crate-py's bundled one (a superset of 1.1's terms).
    context = os.environ.get("JP_RO_CRATE_CONTEXT") or str(
        Path(rocrate.__file__).parent / "data/ro-crate.jsonld"
    )
    runner = Path(__file__).with_name("rocrate_validation.py")
    for crate in ("full", "bare"):
        done = subprocess.run(
            [str(_validator_python()), str(runner), context, str(tmp_path / crate)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "[OK] RO-Crate is a valid process-run-crate-0.5" in done.stdout


def test_export_never_touches_the_process_umask(results, tmp_path, monkeypatch):
    """Setting the umask (even for a moment, to read it) gives files another thread makes
    then 0666 modes: the crate is made with modes the umask applies to, and the umask
    is never called (review of issue 12, #21)."""
    result = jp.publish(results)
    calls: list[int] = []
    real_umask = os.umask
    previous = real_umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
        jp.export(result, ro_crate=tmp_path / "crate")  # a new folder
        jp.export(result, ro_crate=tmp_path / "crate")  # replaced in place
    finally:
        monkeypatch.undo()
        real_umask(previous)
    assert calls == []
    assert stat.S_IMODE((tmp_path / "crate").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "crate" / "ro-crate-metadata.json").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.joinpath("crate").iterdir()) == ["ro-crate-metadata.json"]
