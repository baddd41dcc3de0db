"""The self-contained HTML report: the explorer app and the run's data in one file.

The export runs exactly the served front-end (``app.js``, bundled by :func:`app_script` from the
modules in ``static/app/``, and the CSS of :func:`app_style`: ``static/app.css`` then
``static/app/*.css``) inlined, with the data embedded instead of
the JSON API:

- a small JSON ``<script type="application/json" id="kiku-data">`` block (chunk layout, clip
  limits), escaped so no text can end the block (``<``, ``>``, ``&``, U+2028 and U+2029 become
  ``\\uXXXX``);
- the bundle (what the tree, map, filters and trends need), gzip-compressed and base64-encoded
  (``<script type="application/octet-stream" id="kiku-bundle">``), inflated at start;
- what a view's route module adds (:func:`extension_data`, e.g. the priorities reports), one
  gzip+base64 block each (``id="kiku-extra-<name>"``), inflated when the view asks for it;
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

from kiku.explore import EXPORT_CLIP
from kiku.web.data import RunData

STATIC_DIR = Path(__file__).resolve().parent / "static"
# What the export keeps of each conversation (a 17.5k-conversation ShareGPT run then fits in
# 14.3 MB; see docs/explorer.md): user messages up to 1,500 characters, replies up to 300,
# 2,500 per conversation. export_html takes other limits (None keeps everything).
DEFAULT_MAX_MESSAGE_CHARS = EXPORT_CLIP["message"]
DEFAULT_MAX_REPLY_CHARS = EXPORT_CLIP["reply"]
DEFAULT_MAX_CONVERSATION_CHARS = EXPORT_CLIP["conversation"]
#: Characters of each opening request in the export's bundle (cards, tooltips, titles).
EXPORT_REQUEST_CHARS = 240
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


#: The explorer's core front-end, one file per concern, in the order :func:`app_script` bundles
#: them: data access (JSON API or embedded export), DOM helpers, state and loading, the view
#: registry and the URL state, search and filters (with the header and theme), tree, details
#: panel, conversation viewer, map, tabs and trends, start-up (always last).
CORE_MODULES: tuple[str, ...] = ("api", "dom", "state", "views", "filters", "tree", "details", "conversation",
                                 "map", "trends", "main")
APP_DIR = STATIC_DIR / "app"


def app_modules() -> tuple[str, ...]:
    """Every front-end module in bundling order: the core ones, then any other ``static/app/*.js``
    (a new view's module, e.g. ``compare.js``, in name order), then ``main``.

    A new view needs no registration here: adding ``static/app/<name>.js`` that calls
    ``registerView({...})`` (see ``views.js``) puts it in both the served page and the export.

    >>> app_modules()[:4], app_modules()[-1]
    (('api', 'dom', 'state', 'views'), 'main')
    """
    extra = sorted(p.stem for p in APP_DIR.glob("*.js") if p.stem not in CORE_MODULES)
    return (*CORE_MODULES[:-1], *extra, CORE_MODULES[-1])


APP_MODULES: tuple[str, ...] = app_modules()
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
    return _APP_OPEN + "".join((APP_DIR / f"{name}.js").read_text(encoding="utf-8") for name in app_modules()) + _APP_CLOSE


def app_styles() -> tuple[str, ...]:
    """Every stylesheet in bundling order: ``app.css``, then any ``static/app/*.css`` (a view's own
    styles, e.g. ``app/priorities.css``, in name order), like :func:`app_modules` for scripts.

    >>> app_styles()[0], all(name.startswith("app/") for name in app_styles()[1:])
    ('app.css', True)
    """
    return ("app.css", *(f"app/{p.name}" for p in sorted(APP_DIR.glob("*.css"))))


def app_style() -> str:
    """The explorer's CSS: :func:`app_styles` concatenated (the served ``app.css`` and the export's ``<style>``)."""
    return "".join(_asset(name) for name in app_styles())


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _asset(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def render_page(mode: str, title: str, data_json: str | None = None, chunks: list[str] | None = None,
                bundle_b64: str | None = None, extra_b64: dict[str, str] | None = None) -> str:
    """The app's HTML page: ``mode="api"`` links the static assets, ``"embedded"`` inlines all.

    For ``"embedded"``, ``data_json`` must come from :func:`script_safe_json`, ``chunks`` are
    base64 strings from :func:`conversation_chunks` and ``bundle_b64`` from :func:`gzip_b64`
    (or ``None`` when ``data_json`` holds the bundle itself); ``extra_b64`` maps a view's name to
    its data from :func:`gzip_b64` (a ``kiku-extra-<name>`` block, see :func:`extension_data`).
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
        bundle = f'<script type="application/octet-stream" id="kiku-bundle">{bundle_b64}</script>\n' if bundle_b64 else ""
        bundle += "".join(f'<script type="application/octet-stream" id="kiku-extra-{html.escape(name)}">{b64}</script>\n'
                          for name, b64 in (extra_b64 or {}).items())
        tail = (f'<script type="application/json" id="kiku-data">{data_json or "null"}</script>\n{bundle}'
                f"<script>{js}</script>{blocks}")
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return template.replace("{{TITLE}}", title_html).replace("<!--HEAD-->", head).replace("<!--TAIL-->", tail)


def gzip_b64(value: Any) -> str:
    """JSON, gzip-compressed (level 9, no timestamp), base64-encoded: what the page inflates.

    >>> import base64, gzip, json
    >>> json.loads(gzip.decompress(base64.b64decode(gzip_b64({"n": 1}))))
    {'n': 1}
    """
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def conversation_chunks(conversations: list[dict[str, Any]], size: int = CHUNK_SIZE) -> list[str]:
    """Split conversations into gzip + base64 encoded JSON arrays of ``size`` each.

    >>> import base64, gzip, json
    >>> json.loads(gzip.decompress(base64.b64decode(conversation_chunks([{"id": "a"}])[0])))
    [{'id': 'a'}]
    """
    return [gzip_b64(conversations[start : start + size]) for start in range(0, len(conversations), size)]


def slim_conversation(conv: dict[str, Any], request: str) -> dict[str, Any]:
    """A conversation as the export stores it: what the page can rebuild from the bundle left out.

    Dropped: ``id`` (its position), ``topics`` (the bundle's assignments), the ``request``
    facet (the bundle has its start, ``request``), empty facet values and null message
    timestamps.

    >>> slim_conversation({"id": "a", "topics": [], "messages": [{"role": "user", "content": "Hi there",
    ...     "created_at": None}], "facets": {"request": "Hi there", "summary": None}}, "Hi")
    {'messages': [{'role': 'user', 'content': 'Hi there'}], 'facets': {}}
    """
    out = {k: v for k, v in conv.items() if k not in ("id", "topics")}
    out["messages"] = [{k: v for k, v in m.items() if v is not None} for m in conv.get("messages", [])]
    facets = {k: v for k, v in (conv.get("facets") or {}).items() if v not in (None, "", [])}
    req = facets.get("request")
    if isinstance(req, str) and req.startswith(request):
        facets.pop("request")  # the page shows the bundle's (clipped) request
    out["facets"] = facets
    return out


def render_export(run: RunData, max_message_chars: int | None = DEFAULT_MAX_MESSAGE_CHARS,
                  max_conversation_chars: int | None = DEFAULT_MAX_CONVERSATION_CHARS,
                  max_reply_chars: int | None = DEFAULT_MAX_REPLY_CHARS) -> str:
    """The whole report as one HTML string (bundle + every conversation, long texts clipped)."""
    conversations = run.all_conversations(max_message_chars, max_conversation_chars, max_reply_chars)
    bundle = dict(run.bundle())
    text = dict(bundle["text"])
    text["request"] = [r[:EXPORT_REQUEST_CHARS] for r in text["request"]]
    bundle["text"] = text
    slim = [slim_conversation(c, r) for c, r in zip(conversations, text["request"], strict=True)]
    data = {"chunk_size": CHUNK_SIZE, "chunks": -(-len(slim) // CHUNK_SIZE),
            "max_message_chars": max_message_chars, "max_reply_chars": max_reply_chars,
            "max_conversation_chars": max_conversation_chars}
    extra = {name: gzip_b64(value) for name, value in extension_data(run).items()}
    return render_page("embedded", f"kiku report · {run.run_dir.name}", script_safe_json(data),
                       conversation_chunks(slim), bundle_b64=gzip_b64(bundle), extra_b64=extra)


def extension_data(run: RunData) -> dict[str, Any]:
    """The data each view's route module adds to the export: ``{name: value}``.

    A module of ``server.ROUTE_MODULES`` may define ``export_data(run) -> JSON value | None``
    (``run`` the :class:`~kiku.web.data.RunData`); its value is embedded, gzip+base64, as the
    block ``kiku-extra-<name>`` (``name``: the module's name without ``routes_``, e.g.
    ``priorities``), which the page reads with ``source.extra(name)``. ``None`` embeds nothing.
    """
    import importlib

    from kiku.web.server import ROUTE_MODULES, _module_exists

    out: dict[str, Any] = {}
    for module_name in ROUTE_MODULES:
        if not _module_exists(module_name):
            continue
        module = importlib.import_module(module_name)
        if hasattr(module, "export_data"):
            value = module.export_data(run)
            if value is not None:
                out[module_name.rsplit(".", 1)[-1].removeprefix("routes_")] = value
    return out


def export_html(run_dir: str | Path, out_path: str | Path,
                max_message_chars: int | None = DEFAULT_MAX_MESSAGE_CHARS,
                max_conversation_chars: int | None = DEFAULT_MAX_CONVERSATION_CHARS,
                max_reply_chars: int | None = DEFAULT_MAX_REPLY_CHARS) -> Path:
    """Write the self-contained explorer for ``run_dir`` to ``out_path``; returns the path.

    Every conversation is included; each user message is clipped to ``max_message_chars``,
    each reply to ``max_reply_chars`` and a conversation's messages to
    ``max_conversation_chars`` in total (``None`` keeps everything) so a large run stays a
    file small enough to mail. The viewer says when text was clipped.

    >>> export_html("runs/chats", "report.html")   # doctest: +SKIP
    PosixPath('report.html')
    """
    out = Path(out_path)
    text = render_export(RunData(run_dir), max_message_chars, max_conversation_chars, max_reply_chars)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
