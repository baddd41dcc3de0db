"""The one home of the protections every kiku web server shares (the explorer and the review page).

:func:`secure` adds them to a FastAPI app:

- **Host check** (DNS rebinding): only the loopback names are accepted as ``Host`` unless the
  server was bound to another address on purpose (:func:`hosts_for`).
- **Headers** on every response: a strict Content-Security-Policy (no inline script, no
  framing: ``frame-ancestors 'none'``), ``X-Frame-Options: DENY``, ``nosniff``, no referrer.
- **State-changing requests** (anything but GET, HEAD, OPTIONS) must be same-origin and JSON:
  a request whose ``Origin`` (or ``Sec-Fetch-Site``) says another site sent it is refused
  (403), and so is one whose ``Content-Type`` is not ``application/json`` (415), with or
  without a body. A cross-site form or a "simple" ``fetch`` cannot send JSON without a CORS
  preflight, which these servers never grant. The check is kiku's own, so it holds whatever
  FastAPI version is installed (FastAPI checks the type only of requests that carry a JSON
  body, strictly only since 0.132).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

SERVER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": SERVER_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def hosts_for(host: str) -> list[str]:
    """The ``Host`` values a server bound to ``host`` accepts: loopback names, or any for a LAN bind.

    >>> hosts_for("127.0.0.1")[:2], hosts_for("0.0.0.0")
    (['127.0.0.1', 'localhost'], ['*'])
    """
    return LOOPBACK_NAMES if host in ("127.0.0.1", "localhost", "::1") else ["*"]


def is_json(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json`` (parameters ignored).

    >>> is_json("application/json; charset=utf-8"), is_json("text/plain"), is_json(None)
    (True, False, False)
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def cross_site_reason(method: str, headers: Any) -> tuple[int, str] | None:
    """Why a request must be refused as possibly sent by another site, or None when it may proceed.

    ``headers``: a case-insensitive mapping of the request headers (``Host``, ``Origin``,
    ``Sec-Fetch-Site``, ``Content-Type``).

    >>> cross_site_reason("POST", {"host": "127.0.0.1:8", "origin": "http://evil.com", "content-type": "application/json"})
    (403, 'cross-origin request refused')
    >>> cross_site_reason("POST", {"host": "127.0.0.1:8", "content-type": "text/plain"})
    (415, 'send application/json')
    >>> cross_site_reason("POST", {"host": "127.0.0.1:8", "origin": "http://127.0.0.1:8", "content-type": "application/json"})
    """
    if method.upper() in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != str(headers.get("host", "")).lower()):
        return 403, "cross-origin request refused"
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return 403, "cross-origin request refused"
    if not is_json(headers.get("content-type")):
        return 415, "send application/json"
    return None


def secure(app: Any, allowed_hosts: list[str] | None = None) -> Any:
    """Add the host check, the security headers and the same-origin JSON rule to a FastAPI app."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_NAMES)

    # added after the host check, so it wraps it: even a refused host gets the headers
    @app.middleware("http")
    async def security(request: Request, call_next):  # noqa: ANN001, ANN202
        refused = cross_site_reason(request.method, request.headers)
        if refused is not None:
            response = JSONResponse({"detail": refused[1]}, status_code=refused[0])
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    return app
