"""One scrubber for every secret in play, in every encoding a server may echo it in.

A store that echoes the request's ``Authorization`` header in an error body hands us
the base64 of ``user:password``; a proxy log may show it URL-encoded, a JSON error
body JSON-escaped. Backends :func:`register` each secret they are given (HTTP basic
auth, header values, S3 keys and tokens); the environment's secrets are known without
registering. :func:`scrub` then replaces every form of every one of them (raw, base64
of the whole and of any 3-byte alignment inside a longer base64 stream, URL-encoded,
JSON-, HTML- and repr-escaped, hex) with ``***`` before anything is shown or stored.
Presigned-URL signatures are scrubbed from messages too (not from recorded links:
a presigned link is the result a user asked for).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import threading
from functools import lru_cache
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET = 4
"""Shorter values would mask ordinary words: such a secret is too weak to matter anyway."""
MIN_STORED_SECRET = 8
"""Records (links, paths) are scrubbed of secrets this long or longer; messages of all."""
MIN_FRAGMENT = 8
"""Shortest base64 fragment (of a secret inside a longer base64 stream) worth masking."""

_lock = threading.Lock()
_registered: set[tuple[str, bool]] = set()
"""(value, is_identifier): identifiers (an access key ID) are masked in messages only."""

_QUERY_SECRET = re.compile(
    r"(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|signature|"
    r"awsaccesskeyid|x-goog-signature|sig|token|access_token|"
    # ``password=…`` in a connection string or an exception's message (a cell's own)
    r"[a-z_-]{0,24}(?:passw(?:or)?d|pwd|secret|api_?key|private_?key)[a-z_-]{0,24})"
    r"(=|%3D|%253D)((?:(?!%26|%2526)[^&\s\"'<>#])+)"
)
"""A presigned query's secret parameters, also URL-encoded once or twice (a signed link
inside another link's ``next=``/``redirect=`` parameter, whose ``&`` is ``%26``)."""
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/@\s:]*):([^@\s/?#]+)@")
_URL_PASSWORD_LOOSE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/@\s:]*):([^@\s]+)@")
"""A password in a URL's userinfo (``http://user:pw@host``); the loose form, for messages,
also covers one with an unencoded ``/`` that makes the URL malformed."""
_AUTH_SCHEME = re.compile(r"(?i)^(basic|bearer|token|digest|aws4-hmac-sha256)\s+(\S.*)$")


_SECRET_NAME = re.compile(
    r"(?:^|_)(?:passw(?:or)?d|pwd|pw|passphrase|secret|token|api_?key|access_?key|private_?key|key"
    r"|credentials?|auth|authorization|signature)"
    r"(?:_(?:id|value|string|str))?$"
    r"|(?:passw(?:or)?d|secret|token|apikey|credentials?)(?:_(?:id|value|string|str))?$"
)
"""The stem ends the name (after a separator, a camelCase step, or, for the long stems,
anything: ``db_key``, ``apiKey``, ``mytoken``), so ``author``, ``tokenizer`` and
``private_dir`` are ordinary names."""


def is_secret_name(name: str) -> bool:
    """Whether a variable, placeholder or option called ``name`` holds a secret: the one
    rule for placeholder values, cell source assignments and options never recorded."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip("{} "))
    return bool(_SECRET_NAME.search(re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")))


def register(value: str | None, *, identifier: bool = False) -> None:
    """Remember a secret for the rest of the process (header values also by their token)."""
    if not value or len(value) < MIN_SECRET:
        return
    found = {(value, identifier)}
    scheme = _AUTH_SCHEME.match(value.strip())
    if scheme and len(scheme.group(2)) >= MIN_SECRET:
        found.add((scheme.group(2), identifier))
    with _lock:
        _registered.update(found)


def forget_all() -> None:
    """Drop every registered secret (tests; a kernel whose credentials changed)."""
    with _lock:
        _registered.clear()


_CREDENTIAL_HEADER = re.compile(
    r"(?i)^(authorization|proxy-authorization|cookie)$|token|key|secret|auth|session|passw|signature"
)
"""Header names whose values are credentials. Other headers (``Accept``, ``X-Team``) are
not secrets: masking their values would rewrite file names in stored records."""


def is_credential_header(name: str) -> bool:
    return bool(_CREDENTIAL_HEADER.search(name.strip()))


def register_header(name: str, value: str | None) -> None:
    """A header's value, if the header carries a credential."""
    if is_credential_header(name):
        register(value)


def register_basic(user: str, password: str) -> None:
    """HTTP basic auth: ``user:password`` (its base64 is the header) and the password."""
    register(f"{user}:{password}")
    register(password)


def _from_environment() -> set[tuple[str, bool]]:
    """Secrets configured in the environment, known whether or not a backend ran yet."""
    found: set[tuple[str, bool]] = set()
    auth = os.environ.get("JUPYTER_PUBLISH_HTTP_AUTH", "")
    if ":" in auth:
        found.add((auth, False))
        found.add((auth.partition(":")[2], False))
    for item in re.split(r"[;\n]", os.environ.get("JUPYTER_PUBLISH_HTTP_HEADERS", "")):
        name, _, value = (part.strip() for part in item.partition(":"))
        if value and is_credential_header(name):
            found.add((value, False))
            scheme = _AUTH_SCHEME.match(value)
            if scheme:
                found.add((scheme.group(2), False))
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        if os.environ.get(name):
            found.add((os.environ[name], False))
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        found.add((os.environ["AWS_ACCESS_KEY_ID"], True))
    return {(v, i) for v, i in found if len(v) >= MIN_SECRET}


def _base64_forms(data: bytes) -> set[str]:
    """The base64 text of ``data`` alone and at each alignment inside a longer stream."""
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode()
        forms.update({whole, whole.rstrip("=")})
        for pad in range(3):
            text = encode(b"\0" * pad + data).decode()
            start = -(-8 * pad // 6)  # first character made of the secret's bits only
            end = (8 * (pad + len(data))) // 6
            fragment = text[start:end]
            if len(fragment) >= MIN_FRAGMENT:
                forms.add(fragment)
    return forms


@lru_cache(maxsize=256)
def forms_of(secret: str) -> frozenset[str]:
    """Every encoding of ``secret`` we mask."""
    data = secret.encode("utf-8")
    forms = {secret, html.escape(secret), html.escape(secret, quote=False), data.hex(), data.hex().upper()}
    forms |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1]}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret), quote_plus(secret, safe="")):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    forms |= _base64_forms(data)
    # A server that base64s the request it got (headers included) encodes the header twice.
    forms |= _base64_forms(base64.b64encode(data))
    return frozenset(f for f in forms if len(f) >= MIN_SECRET)


def _patterns(messages: bool) -> list[str]:
    with _lock:
        known = set(_registered)
    known |= _from_environment()
    forms: set[str] = set()
    for value, identifier in known:
        if not messages and len(value) < MIN_STORED_SECRET:
            continue  # a short password is too likely a word of a file name in a record
        if messages or not identifier:
            forms |= forms_of(value)
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, *, links: bool = True) -> str:
    """``text`` with every form of every known secret replaced by ``***``.

    ``links=False`` keeps presigned-URL signatures and access key IDs (for a recorded
    result, whose links are what the user asked for); messages scrub them too.
    """
    if not text:
        return text
    for form in _patterns(messages=links):
        if form in text:
            text = text.replace(form, MASK)
    if links and ("=" in text or "%3" in text.upper()):
        text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    if "@" in text:
        userinfo = _URL_PASSWORD_LOOSE if links else _URL_PASSWORD
        text = userinfo.sub(_mask_password, text)
    return text


def _mask_password(match: re.Match[str]) -> str:
    if _PORT_THEN_PATH.match(match.group(2)):  # http://host:80/a@b: a port, not a password
        return match.group(0)
    return f"{match.group(1)}:{MASK}@"


_PORT_THEN_PATH = re.compile(r"\d{1,5}[/?#]")


_SIGNED_QUERY = re.compile(
    r"(?i)(?:^|[&?;])(?:x-amz-|x-goog-|awsaccesskeyid=|signature=|sig=|expires=|token=)"
)
"""Query parameters of a presigned link (S3 SigV4 and V2, GCS, Azure SAS) or a token."""


def _secret_query(query: str) -> bool:
    """Whether a query carries a presigned signature or a key: also URL-encoded (a signed
    link in another's ``next=``), and any parameter whose name says it holds a secret
    (``key=``, ``api_key=``, ``password=``, ``auth=``)."""
    decoded = unquote(unquote(query))
    if _SIGNED_QUERY.search(decoded):
        return True
    return any(is_secret_name(part.partition("=")[0]) for part in re.split(r"[&;?]", decoded) if "=" in part)


def public_url(url: str, *, query: bool = True) -> str | None:
    """``url`` as anyone may read it (a shared catalog, an RO-Crate, a git remote): no
    user or password, no query carrying a presigned signature or key ID (``query=False``:
    no query at all); None if a secret is left (a registered one in the path). A text
    with no scheme (an scp-like ``git@host:x``) names no userinfo: kept if clean."""
    from .serve_state import home_token

    token = home_token()
    if token is not None and token in url:
        return None  # a link of this home's `serve`: its token opens every served job
    if "://" not in url:
        return url if scrub(url) == url else None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    kept = parts.query if query and not _secret_query(parts.query) else ""
    fragment = parts.fragment if query else ""
    bare = urlunsplit((parts.scheme, netloc, parts.path, kept, fragment))
    if kept and scrub(bare) != bare:  # a secret in the query after all: drop it
        bare = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return bare if bare and scrub(bare) == bare else None
