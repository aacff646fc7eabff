"""A real HTTP upload server for tests and tutorials: Debian's nginx, run unprivileged.

Two flavours of "HTTP drop" that the http backend must handle:

* ``mode="dav"``: nginx's WebDAV module. ``PUT /path`` stores the body (201 and a
  ``Location:`` header for a new file), ``GET /path`` serves it back.
* ``mode="transfer"``: transfer.sh style. ``PUT /NAME`` (or a ``POST`` multipart form
  with one ``file`` part) stores the body under a fresh random token and answers 200
  with ``http://host/TOKEN/NAME`` in the body. A few lines of Lua (ngx_http_lua) move
  the spooled request body into the served tree, so uploads never pass through memory.

Everything nginx writes (temp files, pid, logs) lives under the work dir; the error
log goes to stderr, which :class:`ServerProcess` captures in ``nginx.log``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from jupyter_publish.testing.process import LOOPBACK, ServerProcess, free_port

INSTALL_HINT = "apt-get install nginx-light libnginx-mod-http-lua"
MODULES_DIR = Path("/usr/lib/nginx/modules")
MODES = ("dav", "transfer")
_TEMP_MODULES = ("proxy", "fastcgi", "uwsgi", "scgi")
_READY_PATH = "/.jupyter-publish-ready"

# Runs for every request in transfer mode; GET/HEAD fall through to static files.
_TRANSFER_LUA = r"""
local method = ngx.req.get_method()
if method ~= "PUT" and method ~= "POST" then
    return ngx.exec("@files")
end

local function fail(status, why)
    ngx.status = status
    ngx.header.content_type = "text/plain"
    ngx.say(why)
    return ngx.exit(status)
end

local function safe_name(name)
    name = name and name:match("([^/\\]+)$")
    if not name or name == "." or name == ".." then return nil end
    return name
end

local function copy_range(src, from, to, dest)
    local out = io.open(dest, "wb")
    if not out then return false end
    src:seek("set", from)
    local left = to - from
    while left > 0 do
        local chunk = src:read(math.min(left, 1048576))
        if not chunk then break end
        out:write(chunk)
        left = left - #chunk
    end
    out:close()
    return left == 0
end

-- One multipart part named "file" (what `curl -F file=@x` sends), copied out of the
-- spooled body without loading it.
local function store_form(body, dir)
    local ctype = ngx.var.content_type or ""
    local boundary = ctype:match('boundary="([^"]+)"') or ctype:match("boundary=([^;%s]+)")
    if not boundary or not body then return nil, "expected a multipart/form-data body" end
    local f = io.open(body, "rb")
    local head = f:read(65536) or ""
    local first = "--" .. boundary .. "\r\n"
    local hend = head:find("\r\n\r\n", 1, true)
    if head:sub(1, #first) ~= first or not hend then
        f:close()
        return nil, "malformed multipart body"
    end
    local headers = head:sub(#first + 1, hend - 1)
    local name = safe_name(headers:match('filename="([^"]*)"'))
    if not headers:match('name="file"') or not name then
        f:close()
        return nil, "expected one form field named file with a filename"
    end
    local size = f:seek("end")
    local closing = "\r\n--" .. boundary .. "--"
    f:seek("set", math.max(0, size - #closing - 2))
    local tail = f:read("*a") or ""
    local stop
    if tail:sub(-#closing - 2) == closing .. "\r\n" then
        stop = size - #closing - 2
    elseif tail:sub(-#closing) == closing then
        stop = size - #closing
    else
        f:close()
        return nil, "multipart body has no closing boundary"
    end
    local ok = copy_range(f, hend + 3, stop, dir .. "/" .. name)
    f:close()
    if not ok then return nil, "could not store the upload" end
    return name
end

local function store_put(body, dir)
    local name = safe_name(ngx.var.uri)
    if not name then return nil, "PUT /NAME" end
    local dest = dir .. "/" .. name
    if body then
        local ok = os.rename(body, dest)
        if not ok then return nil, "could not store the upload" end
    else
        local data = ngx.req.get_body_data() or ""
        local out = io.open(dest, "wb")
        out:write(data)
        out:close()
    end
    return name
end

ngx.req.read_body()
local body = ngx.req.get_body_file()
local token = ngx.var.request_id:sub(1, 16)
local dir = ngx.var.document_root .. "/" .. token
if require("ffi").C.mkdir(dir, 493) ~= 0 then
    return fail(500, "cannot create " .. token)
end
local name, err
if method == "PUT" then
    name, err = store_put(body, dir)
else
    name, err = store_form(body, dir)
end
if not name then
    return fail(400, err)
end
ngx.header.content_type = "text/plain"
ngx.say(ngx.var.scheme, "://", ngx.var.http_host, "/", token, "/", ngx.escape_uri(name))
"""


def find_nginx() -> str:
    """Debian's /usr/sbin/nginx (not on a normal user's PATH), else nginx on PATH."""
    for candidate in ("/usr/sbin/nginx", shutil.which("nginx")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(f"nginx not found in /usr/sbin or on PATH; {INSTALL_HINT}")


@functools.cache
def _missing_temp_modules(nginx: str) -> frozenset[str]:
    """Modules built out of this nginx: their *_temp_path directives would not parse."""
    out = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False)
    flags = out.stdout + out.stderr
    return frozenset(m for m in _TEMP_MODULES if f"--without-http_{m}_module" in flags)


def ssha_hash(password: str) -> str:
    """An htpasswd ``{SSHA}`` entry (salted SHA-1) that nginx's auth_basic understands."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class Nginx(ServerProcess):
    """nginx on a free loopback port serving uploads under :attr:`root`."""

    name = "nginx"
    start_timeout = 30.0

    def __init__(
        self,
        mode: str = "dav",
        *,
        max_body: str = "0",
        auth_user: str | None = None,
        auth_password: str | None = None,
        ranges: bool = True,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if (auth_user is None) != (auth_password is None):
            raise ValueError("give both auth_user and auth_password, or neither")
        if auth_user is not None and (":" in auth_user or "\n" in auth_user + str(auth_password)):
            raise ValueError("auth_user cannot contain ':' and neither may contain a newline")
        super().__init__(workdir)
        self.nginx = find_nginx()
        self.mode = mode
        self.max_body = max_body
        self.auth_user = auth_user
        self.auth_password = auth_password
        self.ranges = ranges
        self.root = self.workdir / "files"
        self.conf_path = self.workdir / "nginx.conf"
        self.port = 0
        self._ready_token = secrets.token_hex(8)
        if mode == "transfer":
            self._check_lua()

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _check_lua(self) -> None:
        for module in ("ndk_http_module.so", "ngx_http_lua_module.so"):
            if not (MODULES_DIR / module).is_file():
                raise RuntimeError(f"nginx transfer mode needs {MODULES_DIR / module}; {INSTALL_HINT}")

    # -- ServerProcess -------------------------------------------------------------
    def prepare(self) -> None:
        self.log_path.write_bytes(b"")  # the port-conflict check reads this attempt only
        self.port = free_port()
        for sub in ("files", "logs", "tmp"):
            (self.workdir / sub).mkdir(exist_ok=True)
        if self.auth_user is not None and self.auth_password is not None:
            line = f"{self.auth_user}:{ssha_hash(self.auth_password)}\n"
            (self.workdir / "htpasswd").write_text(line)
        self.conf_path.write_text(self.config())

    def command(self) -> list[str]:
        return [self.nginx, "-p", f"{self.workdir}/", "-c", str(self.conf_path)]

    def ready(self) -> bool:
        """Our own token at a private path: proves it is this nginx that holds the port."""
        import httpx

        answer = httpx.get(self.base_url + _READY_PATH, timeout=2.0)
        return answer.status_code == 200 and answer.text == self._ready_token

    # -- configuration -------------------------------------------------------------
    def config(self) -> str:
        """The whole nginx.conf: main context, then one loopback server."""
        return "\n".join([*self._main_context(), "http {", *self._http_context(), "}", ""])

    def _main_context(self) -> list[str]:
        lines = []
        if self.mode == "transfer":
            lines += [
                f"load_module {MODULES_DIR / 'ndk_http_module.so'};",
                f"load_module {MODULES_DIR / 'ngx_http_lua_module.so'};",
            ]
        if os.geteuid() == 0:
            # As root, workers would drop to "nobody" and could not write our dirs.
            lines.append("user root;")
        lines += [
            "daemon off;",
            "worker_processes 1;",
            f"pid {self.workdir / 'nginx.pid'};",
            "error_log stderr notice;",
            "events { worker_connections 256; }",
        ]
        return lines

    def _http_context(self) -> list[str]:
        tmp = self.workdir / "tmp"
        lines = [
            f"client_body_temp_path {tmp / 'body'};",
            *(
                f"{module}_temp_path {tmp / module};"
                for module in _TEMP_MODULES
                if module not in _missing_temp_modules(self.nginx)
            ),
            f"access_log {self.workdir / 'logs' / 'access.log'};",
            "default_type application/octet-stream;",
            "sendfile on;",
            "server_tokens off;",
            *self._lua_init(),
            "server {",
            f"    listen {LOOPBACK}:{self.port};",
            f"    root {self.root};",
            f"    client_max_body_size {self.max_body};",
        ]
        if not self.ranges:
            lines.append("    max_ranges 0;")  # like servers that ignore Range: whole body, 200
        if self.auth_user is not None:
            lines += [
                '    auth_basic "jupyter-publish test";',
                f"    auth_basic_user_file {self.workdir / 'htpasswd'};",
            ]
        lines += [
            f"    location = {_READY_PATH} {{",
            "        auth_basic off;",
            "        access_log off;",
            f'        return 200 "{self._ready_token}";',
            "    }",
        ]
        lines += self._dav_locations() if self.mode == "dav" else self._transfer_locations()
        lines.append("}")
        return lines

    def _lua_init(self) -> list[str]:
        if self.mode != "transfer":
            return []
        # Declared once per worker: Lua has no mkdir of its own.
        return ['init_by_lua_block { require("ffi").cdef("int mkdir(const char *, unsigned int);") }']

    def _dav_locations(self) -> list[str]:
        return [
            "    location / {",
            "        dav_methods PUT DELETE;",
            "        create_full_put_path on;",
            "        dav_access user:rw group:r all:r;",
            "    }",
        ]

    def _transfer_locations(self) -> list[str]:
        return [
            "    location / {",
            "        client_body_in_file_only clean;",
            "        content_by_lua_block {",
            _TRANSFER_LUA,
            "        }",
            "    }",
            "    location @files { }",
        ]
