"""The self-contained HTML report: the explorer app and the run's data in one file.

The export runs exactly the served front-end (``app.js``, bundled by :func:`app_script` from the
modules in ``static/app/``, and ``static/app.css``) inlined, with the data embedded instead of
the JSON API:

- the bundle (what the tree, map, filters and trends need) as a JSON
  ``<script type="application/json">`` block, escaped so conversation text cannot end the block
  (``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\uXXXX``);
- the conversations themselves in gzip-compressed, base64-encoded chunks of
  ``CHUNK_SIZE`` conversations (``<script type="application/octet-stream">``, base64 has no
  ``<``), placed after the app so the page is interactive before they are even parsed; the
  browser inflates one chunk (DecompressionStream) when a conversation in it is opened.

A Content-Security-Policy meta tag only allows the page's own inline script and style (by
hash) and no network at all.

Example::

    from kiku.web import export_html
    export_html("runs/chats", "report.html")      # open it offline, share it
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
from pathlib import Path
from typing import Any

from kiku.web.data import RunData

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_MESSAGE_CHARS = 4000
DEFAULT_MAX_CONVERSATION_CHARS = 16000
CHUNK_SIZE = 500

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_safe_json(value: Any) -> str:
    """JSON text that is safe inside an HTML ``<script>`` element.

    >>> script_safe_json({"t": "</script><b>&\\u2028"})
    '{"t":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026\\\\u2028"}'
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


#: The explorer's front-end, one file per view, in the order :func:`app_script` bundles them:
#: data access (JSON API or embedded export), DOM helpers, state and loading, search and filters
#: (with the header and theme), tree, details panel, conversation viewer, map, trends, start-up.
APP_MODULES: tuple[str, ...] = ("api", "dom", "state", "filters", "tree", "details", "conversation", "map",
                                "trends", "priorities", "main")
APP_DIR = STATIC_DIR / "app"
_APP_OPEN = """/* kiku explorer. Vanilla JS, no dependencies, no build step.
 *
 * One code path for the served UI and the self-contained export: all data comes through
 * `source` (the JSON API, or the JSON block embedded in the export). Conversation text is
 * untrusted: it only ever reaches the page through textContent / createTextNode, never
 * innerHTML, and no data value is used as a URL.
 */
(function () {
  "use strict";

"""
_APP_CLOSE = "})();\n"


def app_script() -> str:
    """The explorer's script: the modules of ``static/app/`` (:data:`APP_MODULES`) in order,
    inside one closure. The server sends it as ``/static/app.js``; the export inlines the same
    text, so the CSP hash the export computes is the hash of what runs.

    The modules share the closure's scope (a module calls another's functions directly), so they
    are concatenated, never loaded one by one.

    >>> script = app_script()
    >>> script.startswith("/* kiku explorer"), script.rstrip().endswith("})();"), "function renderTree" in script
    (True, True, True)
    """
    return _APP_OPEN + "".join((APP_DIR / f"{name}.js").read_text(encoding="utf-8") for name in APP_MODULES) + _APP_CLOSE


#: The explorer's stylesheets, concatenated in this order by :func:`app_style` (served as ``app.css``).
APP_STYLES: tuple[str, ...] = ("app.css", "app/priorities.css")


def app_style() -> str:
    """The explorer's CSS: :data:`APP_STYLES` in order (the served ``app.css`` and the export's ``<style>``)."""
    return "".join(_asset(name) for name in APP_STYLES)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _asset(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def render_page(mode: str, title: str, data_json: str | None = None, chunks: list[str] | None = None) -> str:
    """The app's HTML page: ``mode="api"`` links the static assets, ``"embedded"`` inlines all.

    For ``"embedded"``, ``data_json`` must come from :func:`script_safe_json` and ``chunks``
    are base64 strings from :func:`conversation_chunks`.
    """
    template = _asset("index.html")
    title_html = html.escape(title)
    if mode == "api":
        head = (
            '<meta name="kiku-mode" content="api">\n'
            '<link rel="icon" href="static/favicon.svg" type="image/svg+xml">\n'
            '<link rel="stylesheet" href="static/app.css">\n'
            '<script src="static/app.js" defer></script>'
        )
        tail = ""
    elif mode == "embedded":
        css, js = app_style(), app_script()
        if "</style" in css.lower() or "</script" in js.lower():
            raise ValueError("static assets must not contain closing style/script tags")
        csp = (
            f"default-src 'none'; script-src {_csp_hash(js)}; style-src {_csp_hash(css)}; "
            "img-src data:; base-uri 'none'; form-action 'none'"
        )
        head = (
            f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">\n'
            '<meta name="kiku-mode" content="embedded">\n'
            f"<style>{css}</style>"
        )
        blocks = "".join(
            f'\n<script type="application/octet-stream" id="kiku-chunk-{k}">{chunk}</script>'
            for k, chunk in enumerate(chunks or [])
        )
        tail = f'<script type="application/json" id="kiku-data">{data_json or "null"}</script>\n<script>{js}</script>{blocks}'
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return template.replace("{{TITLE}}", title_html).replace("<!--HEAD-->", head).replace("<!--TAIL-->", tail)


def conversation_chunks(conversations: list[dict[str, Any]], size: int = CHUNK_SIZE) -> list[str]:
    """Split conversations into gzip + base64 encoded JSON arrays of ``size`` each.

    >>> import base64, gzip, json
    >>> json.loads(gzip.decompress(base64.b64decode(conversation_chunks([{"id": "a"}])[0])))
    [{'id': 'a'}]
    """
    out = []
    for start in range(0, len(conversations), size):
        raw = json.dumps(conversations[start : start + size], ensure_ascii=False, separators=(",", ":"))
        out.append(base64.b64encode(gzip.compress(raw.encode("utf-8"), compresslevel=3, mtime=0)).decode("ascii"))
    return out


def render_export(run: RunData, max_message_chars: int | None = DEFAULT_MAX_MESSAGE_CHARS,
                  max_conversation_chars: int | None = DEFAULT_MAX_CONVERSATION_CHARS) -> str:
    """The whole report as one HTML string (bundle + every conversation, long texts clipped)."""
    conversations = run.all_conversations(max_message_chars, max_conversation_chars)
    data = {"bundle": run.bundle(), "chunk_size": CHUNK_SIZE, "chunks": -(-len(conversations) // CHUNK_SIZE),
            "max_message_chars": max_message_chars, "max_conversation_chars": max_conversation_chars}
    from kiku.web.routes_priorities import export_section  # additive hook: the priorities view's data

    data["priorities"] = export_section(run.run_dir)
    return render_page("embedded", f"kiku report · {run.run_dir.name}", script_safe_json(data),
                       conversation_chunks(conversations))


def export_html(run_dir: str | Path, out_path: str | Path,
                max_message_chars: int | None = DEFAULT_MAX_MESSAGE_CHARS,
                max_conversation_chars: int | None = DEFAULT_MAX_CONVERSATION_CHARS) -> Path:
    """Write the self-contained explorer for ``run_dir`` to ``out_path``; returns the path.

    Every conversation is included; each message is clipped to ``max_message_chars`` and a
    conversation's messages to ``max_conversation_chars`` in total (``None`` keeps
    everything) so a large run stays a shareable file. The viewer says when text was clipped.

    >>> export_html("runs/chats", "report.html")   # doctest: +SKIP
    PosixPath('report.html')
    """
    out = Path(out_path)
    text = render_export(RunData(run_dir), max_message_chars, max_conversation_chars)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
