"""The core never imports IPython, and heavy libraries load only when first used."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = [
    "jupyter_publish",
    "jupyter_publish.api",
    "jupyter_publish.publisher",
    "jupyter_publish.fetcher",
    "jupyter_publish.cli",
    "jupyter_publish.ledger",
    "jupyter_publish.backends",
    "jupyter_publish.preview",
    "jupyter_publish.cellrun",
    "jupyter_publish.sync",
    "jupyter_publish.variables",
]
HEAVY = ["IPython", "ipywidgets", "boto3", "botocore", "pandas", "httpx", "pyarrow", "tqdm"]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_core_modules_import_nothing_heavy():
    loaded = _loaded_after("\n".join(f"import {name}" for name in CORE))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_loading_the_extension_stays_light():
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'jupyter_publish')\n"
        "assert 'publish' in ip.magics_manager.magics['cell']\n"
    )
    loaded = _loaded_after(code)
    assert not loaded & {"boto3", "botocore", "pandas", "httpx", "pyarrow", "ipywidgets"}
