"""A drop that echoes our secret into the download URL it answers (``?token=…`` in the
body, or in ``Location:``) had it stored raw in the ledger's ``uri``/``url`` columns and
its ``files`` rows (``result_json`` was scrubbed): every column of the ledger is clean now.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hostile import all_forms, find_secrets

import jupyter_publish as jp

TOKEN = "tok-5e3b9a7c1d2f-h7"


class _EchoingDrop(BaseHTTPRequestHandler):
    """Stores PUTs; answers a download URL holding the request's X-Api-Key."""

    objects: dict[str, bytes]
    where: str

    def do_PUT(self) -> None:
        path = self.path.split("?")[0]
        self.objects[path] = self.rfile.read(int(self.headers["Content-Length"]))
        link = f"{path}?token={self.headers.get('X-Api-Key', '')}"
        body = f"http://{self.headers['Host']}{link}\n".encode() if self.where == "body" else b""
        self.send_response(201)
        if self.where == "location":
            self.send_header("Location", link)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        data = self.objects.get(self.path.split("?")[0])
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("where", ["body", "location"])
def test_a_secret_echoed_into_the_link_is_not_stored(tmp_path, isolated_home, where):
    attrs = {"objects": {}, "where": where}
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_EchoingDrop,), attrs))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = tmp_path / "src"
        src.mkdir()
        (src / "a.txt").write_text("result\n")
        url = f"http://127.0.0.1:{server.server_address[1]}/drop/"
        result = jp.publish(src, url, archive=False, headers={"X-Api-Key": TOKEN})
        echoed = server.RequestHandlerClass.objects  # the server did take the upload
    finally:
        server.shutdown()
        server.server_close()
    assert echoed, "nothing was uploaded: the test would prove nothing"
    assert find_secrets(all_forms([TOKEN]), folders=[isolated_home]) == []
    # Not shown either: the returned result (card, --json, saved notebook outputs).
    shown = json.dumps(result.to_dict()) + str(result)
    assert find_secrets(all_forms([TOKEN]), texts={"result": shown}) == []
    assert "***" in result.url
