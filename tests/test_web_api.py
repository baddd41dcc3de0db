"""The explorer's data layer and JSON API, against a real uvicorn server on a free port."""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import web_runs
from kiku.errors import InputError
from kiku.web import RunData, export_html, running_server
from kiku.web.data import MAX_PAGE, clamp_page, encode_facet
from kiku.web.export import app_script, app_style, script_safe_json
from kiku.web.server import SERVER_CSP, static_body, static_path


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("web") / "llm-run", llm=True, hostile=True)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_runs.write_wandb_run(tmp_path_factory.mktemp("web") / "plain-run", llm=False)


@pytest.fixture(scope="module")
def server(llm_run: Path):
    with running_server(llm_run) as url:
        yield url


def raw_get(url: str, path: str, host: str | None = None) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (httpx would normalise ``..``)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("GET", path, skip_host=host is not None)
    if host is not None:
        conn.putheader("Host", host)
    conn.endheaders()
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res.status, body


# ---- pure logic --------------------------------------------------------------------------------

def test_encode_facet_codes_categories_lists_and_bins() -> None:
    cat = encode_facet("language", "Language", ["en", None, "de", "en"])
    assert cat["values"] == ["en", "de"] and cat["codes"] == [0, -1, 1, 0]
    multi = encode_facet("pl", "PL", [["python", "sql"], [], None, ["python"]])
    assert multi["kind"] == "multi" and multi["values"][0] == "python"
    assert multi["codes"] == [[0, 1], [], [], [0]]
    many = encode_facet("chars", "Chars", list(range(100)))
    assert many["ordered"] and many["values"][:3] == ["0", "1", "2-3"]
    assert many["values"][many["codes"][70]] == "64-127"
    assert encode_facet("summary", "S", [None, None]) is None
    wide = encode_facet("k", "K", [f"v{i % 60}" for i in range(600)])
    assert len(wide["values"]) == 40 and wide["values"][-1] == "(other)"
    assert wide["values"][wide["codes"][59]] == "(other)"


def test_script_safe_json_cannot_close_the_script_block() -> None:
    text = script_safe_json({"t": "</script><script>alert(1)</script>&\u2028\u2029"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text)["t"] == "</script><script>alert(1)</script>&\u2028\u2029"


def test_clamp_page_and_static_whitelist() -> None:
    assert clamp_page(10**9, -3) == (MAX_PAGE, 0)
    assert static_path("favicon.svg") is not None and static_body("app.js") == app_script().encode()
    assert static_body("app.css") == app_style().encode() and static_path("app.css") is None  # bundled: app.css + each view's css
    for bad in ["../data.py", "..%2fdata.py", "/etc/passwd", "index.html", "static/app.js", "../../manifest.json"]:
        assert static_path(bad) is None


def test_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing .*clusters.parquet"):
        (tmp_path / "conversations.parquet").write_bytes(b"")
        RunData(tmp_path)
    with pytest.raises(InputError, match="not a run folder"):
        RunData(tmp_path / "nope")


def test_bundle_matches_the_run_files(llm_run: Path) -> None:
    import duckdb

    run = RunData(llm_run)
    b = run.bundle()
    con = duckdb.connect()
    n = con.execute(f"select count(*) from '{llm_run}/projection.parquet'").fetchone()[0]
    assert b["n"] == n == len(b["ids"]) == len(b["x"]) == len(b["text"]["request"])
    assert b["levels"] == [0, 1]
    # every conversation's level-1 topic agrees with assignments.parquet
    truth = dict(con.execute(f"select conversation_id, cluster_id from '{llm_run}/assignments.parquet' where level = 1").fetchall())
    ids = [b["clusters"][k]["id"] for k in b["assign"]["1"]]
    assert ids == [truth[c] for c in b["ids"]]
    keys = [f["key"] for f in b["facets"]]
    assert {"language", "concern", "frustration", "turns", "programming_languages", "facet_label", "meta.channel"} <= set(keys)
    assert "meta.query_id" not in keys  # an identifier is not a distribution
    assert b["time"] is not None and b["text"]["summary"] is not None and b["run"]["llm"] is True


def test_runs_without_llm_hide_llm_facets(plain_run: Path) -> None:
    b = RunData(plain_run).bundle()
    keys = {f["key"] for f in b["facets"]}
    assert not keys & {"concern", "frustration"}
    assert b["text"]["summary"] is None and b["run"]["llm"] is False
    conv = RunData(plain_run).conversation(b["ids"][0])
    assert conv["facets"]["summary"] is None and conv["messages"]


# ---- the real server ---------------------------------------------------------------------------

def test_index_and_assets_carry_a_strict_csp(server: str) -> None:
    res = httpx.get(server)
    assert res.status_code == 200
    assert res.headers["content-security-policy"] == SERVER_CSP
    assert "script-src 'self'" in SERVER_CSP and "unsafe-inline" not in SERVER_CSP
    assert res.headers["x-content-type-options"] == "nosniff"
    assert '<script src="static/app.js"' in res.text and "http://" not in res.text and "https://" not in res.text
    js = httpx.get(server + "static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert httpx.get(server + "static/app.css").status_code == 200


@pytest.mark.parametrize("path", [
    "/static/../data.py", "/static/..%2fdata.py", "/static/%2e%2e/%2e%2e/manifest.json",
    "/static/../../../../etc/passwd", "/static/index.html", "/static//etc/passwd", "/static/./app.js/..",
    "/manifest.json", "/conversations.parquet", "/../manifest.json",
])
def test_path_traversal_is_refused(server: str, path: str) -> None:
    status, body = raw_get(server, path)
    assert status in (400, 404), (path, status)
    assert b"kiku_version" not in body and b"root:" not in body and b"import duckdb" not in body


def test_foreign_host_header_is_refused(server: str) -> None:
    status, _ = raw_get(server, "/api/run", host="evil.example")
    assert status == 400
    status, _ = raw_get(server, "/api/run", host="127.0.0.1")
    assert status == 200


def test_api_is_paginated_with_a_maximum(server: str, llm_run: Path) -> None:
    first = httpx.get(server + "api/conversations", params={"limit": 7, "offset": 0}).json()
    second = httpx.get(server + "api/conversations", params={"limit": 7, "offset": 7}).json()
    assert first["total"] == 560 and len(first["items"]) == 7 and len(second["items"]) == 7
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert httpx.get(server + "api/conversations", params={"limit": MAX_PAGE + 1}).status_code == 422
    assert httpx.get(server + "api/conversations", params={"offset": -1}).status_code == 422
    everything = []
    offset = 0
    while True:
        page = httpx.get(server + "api/conversations", params={"limit": MAX_PAGE, "offset": offset}).json()
        everything += page["items"]
        offset += MAX_PAGE
        if offset >= page["total"]:
            break
    assert len({i["id"] for i in everything}) == 560
    clusters = httpx.get(server + "api/clusters", params={"level": 1, "limit": 3}).json()
    assert clusters["total"] == 7 and len(clusters["items"]) == 3
    topic = clusters["items"][0]
    in_topic = httpx.get(server + "api/conversations", params={"cluster_id": topic["id"], "limit": 500}).json()
    assert in_topic["total"] == topic["size"]


def test_conversation_search_and_bundle_endpoints(server: str) -> None:
    bundle = httpx.get(server + "api/bundle").json()
    cid = bundle["ids"][0]
    conv = httpx.get(server + "api/conversations/" + cid).json()
    assert conv["id"] == cid and conv["messages"][0]["role"] == "user"
    assert conv["messages"][0]["content"].startswith("<script>")  # data is returned as data
    assert [t["level"] for t in conv["topics"]] == [1, 0]
    assert httpx.get(server + "api/conversations/does-not-exist").status_code == 404
    res = httpx.get(server + "api/search", params={"q": "artifact", "limit": 5}).json()
    assert res["total"] > 5 and len(res["items"]) == 5
    assert all("artifact" in i["snippet"].lower() for i in res["items"])
    # punctuation is not searched: "%" has no words
    assert httpx.get(server + "api/search", params={"q": "%"}).json()["total"] == 0
    assert httpx.get(server + "api/search", params={"q": ""}).status_code == 422


def test_only_the_started_run_is_served(server: str, plain_run: Path) -> None:
    run = httpx.get(server + "api/run").json()
    assert run["name"] == "llm-run"
    status, _ = raw_get(server, "/api/bundle?run=" + str(plain_run))
    assert status == 200 and httpx.get(server + "api/run", params={"run": str(plain_run)}).json()["name"] == "llm-run"


def test_export_is_one_offline_file_with_escaped_data(llm_run: Path, tmp_path: Path, server: str) -> None:
    import base64
    import gzip

    out = export_html(llm_run, tmp_path / "report.html", max_message_chars=100, max_conversation_chars=150, max_reply_chars=100)
    text = out.read_text(encoding="utf-8")
    scripts = re.findall(r"<script([^>]*)>", text)
    # the JSON block, the compressed bundle, the app, and two conversation chunks (560 / 500) - nothing else
    assert scripts == [' type="application/json" id="kiku-data"', ' type="application/octet-stream" id="kiku-bundle"', "",
                       ' type="application/octet-stream" id="kiku-chunk-0"', ' type="application/octet-stream" id="kiku-chunk-1"']
    assert re.search(r"""(src|href)=["']?(https?:)?//""", text) is None
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src &#x27;none&#x27;" in csp and "unsafe" not in csp and "connect-src" not in csp
    data = text.split('<script type="application/json" id="kiku-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "\u2028" not in data
    parsed = json.loads(data)
    parsed["bundle"] = json.loads(gzip.decompress(base64.b64decode(re.search(r'id="kiku-bundle">([^<]*)<', text).group(1))))
    assert parsed["bundle"]["n"] == 560 and parsed["chunks"] == 2
    chunks = re.findall(r'id="kiku-chunk-\d+">([^<]*)</script>', text)
    conversations = [c for chunk in chunks for c in json.loads(gzip.decompress(base64.b64decode(chunk)))]
    assert len(conversations) == parsed["bundle"]["n"] and "id" not in conversations[0]  # aligned by position
    assert all(len(r) <= 240 for r in parsed["bundle"]["text"]["request"])
    first = conversations[0]
    assert first["messages"][0]["content"].startswith("<script>")  # stored as data, inside base64
    long = next(c for c in conversations if c["clipped"])
    assert all(len(m["content"]) <= 100 for m in long["messages"])
    assert sum(len(m["content"]) for m in long["messages"]) <= 150
    served = httpx.get(server + "api/export.html")
    assert served.status_code == 200 and "attachment" in served.headers["content-disposition"]
    assert served.text.count("<script") == 5


def test_every_front_end_module_is_bundled_once_and_the_export_hashes_the_bundle(llm_run: Path, tmp_path: Path) -> None:
    import base64
    import hashlib

    from kiku.web.export import APP_DIR, CORE_MODULES, app_modules

    modules = app_modules()
    assert sorted(p.stem for p in APP_DIR.glob("*.js")) == sorted(modules) and len(set(modules)) == len(modules)
    assert modules[: len(CORE_MODULES) - 1] == CORE_MODULES[:-1] and modules[-1] == "main"
    page = export_html(llm_run, tmp_path / "r.html").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(app_script().encode()).digest()).decode()
    import html

    assert html.escape(f"script-src 'sha256-{digest}'") in page and f"<script>{app_script()}</script>" in page
