"""The quickstart's main job: results are made, published, listed, fetched back.

Runs on the embedded local store with nothing configured, so a fresh install shows
the whole loop (job ID, checksums, CIDs, verified fetch) in one command.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path


def make_sample_results(folder: Path) -> Path:
    """A small, realistic results folder: a table, metrics, a log, a plot-less figure."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "measurements.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "accuracy"])
        for step in range(1, 51):
            writer.writerow([step, round(2.5 * math.exp(-step / 12), 5), round(1 - math.exp(-step / 9), 5)])
    (folder / "metrics.json").write_text(json.dumps({"final_loss": 0.039, "final_accuracy": 0.996}, indent=2))
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "stdout").write_text("".join(f"epoch {i}: ok\n" for i in range(1, 11)))
    (folder / "exitCode").write_text("0\n")
    return folder


def run_demo(destination: str = "local", *, as_json: bool = False, folder: Path | None = None) -> int:
    """Publish a sample results folder, fetch it back verified, print what was recorded.

    Everything lands in ``./jupyter-publish-demo/`` (``results/`` and ``fetched/``) so
    it can be looked at afterwards; running it again publishes a new job.
    """
    from .api import cids, fetch, jobs
    from .publisher import publish

    root = folder or Path.cwd() / "jupyter-publish-demo"
    results = make_sample_results(root / "results")
    published = publish(results, destination, quiet=True)
    fetched = fetch(published.job_id, root / "fetched", quiet=True)
    if as_json:
        print(json.dumps(published.to_dict(), indent=2))
        return 0
    print(published)
    print(fetched)
    print("\nFiles of this job (sha256 and IPFS CID):")
    print(cids(published.job_id)[["kind", "path", "size", "cid"]].to_string(index=False))
    print("\nJobs in the ledger (newest first):")
    print(jobs(limit=5)[["job_id", "status", "type", "n_files", "uri"]].to_string(index=False))
    return 0
