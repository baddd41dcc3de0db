/* kiku explorer. Vanilla JS, no dependencies, no build step.
 *
 * One code path for the served UI and the self-contained export: all data comes through
 * `source` (the JSON API, or the JSON block embedded in the export). Conversation text is
 * untrusted: it only ever reaches the page through textContent / createTextNode, never
 * innerHTML, and no data value is used as a URL.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- data access layer
  const mode = (document.querySelector('meta[name="kiku-mode"]') || {}).content || "api";
  let embedded = null;
  if (mode === "embedded") {
    const el = document.getElementById("kiku-data");
    embedded = JSON.parse(el.textContent);
  }
  async function getJSON(path) {
    const res = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!res.ok) throw new Error(path + ": HTTP " + res.status);
    return res.json();
  }
  // The export stores conversations as gzip+base64 chunks after the app script; a chunk is
  // inflated (natively, DecompressionStream) the first time one of its conversations opens.
  const chunkCache = new Map();
  let idIndex = null;
  const domReady = () => new Promise((ok) => {
    if (document.readyState !== "loading") ok(); else document.addEventListener("DOMContentLoaded", ok, { once: true });
  });
  async function inflateChunk(k) {
    await domReady();
    const el = document.getElementById("kiku-chunk-" + k);
    if (!el) return [];
    const text = atob(el.textContent.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  async function embeddedConversation(id) {
    if (!idIndex) { idIndex = new Map(); embedded.bundle.ids.forEach((v, i) => idIndex.set(v, i)); }
    const i = idIndex.get(id);
    if (i === undefined) return null;
    const k = Math.floor(i / embedded.chunk_size);
    if (!chunkCache.has(k)) chunkCache.set(k, inflateChunk(k));
    const list = await chunkCache.get(k);
    return list[i - k * embedded.chunk_size] || null;
  }
  const source = {
    canExport: mode === "api",
    bundle: () => (embedded ? Promise.resolve(embedded.bundle) : getJSON("api/bundle")),
    conversation: (id) => (embedded ? embeddedConversation(id) : getJSON("api/conversations/" + encodeURIComponent(id))),
    clipNote: () => (embedded ? { message: embedded.max_message_chars, conversation: embedded.max_conversation_chars } : null),
  };

  // ---------------------------------------------------------------- tiny DOM helpers
  const $ = (id) => document.getElementById(id);
  /** Create an element; text goes in via textContent only. */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
        else if (k === "style") Object.assign(el.style, v);
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const fmt = new Intl.NumberFormat();
  const pct = (x) => (x >= 0.1 ? (x * 100).toFixed(0) : x >= 0.01 ? (x * 100).toFixed(1) : (x * 100).toFixed(2)) + "%";
  function clip(s, n) { s = s == null ? "" : String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  /** Append `text` to `parent`, wrapping case-insensitive matches of `q` in <mark> (text nodes only). */
  function highlighted(parent, text, q) {
    text = text == null ? "" : String(text);
    if (!q) { parent.append(document.createTextNode(text)); return parent; }
    const lower = text.toLowerCase();
    let i = 0;
    for (;;) {
      const j = lower.indexOf(q, i);
      if (j < 0) break;
      if (j > i) parent.append(document.createTextNode(text.slice(i, j)));
      parent.append(h("mark", { text: text.slice(j, j + q.length) }));
      i = j + q.length;
    }
    if (i < text.length) parent.append(document.createTextNode(text.slice(i)));
    return parent;
  }

  const PALETTE = ["#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2", "#EECA3B", "#72B7B2", "#FF9DA6",
    "#9D755D", "#439894", "#D67195", "#88D27A", "#6F6FD8", "#F2A65A", "#2A9D8F", "#C8553D", "#8AB17D",
    "#B5838D", "#5E81AC", "#E9C46A"];
  const NOISE = "#9aa3b2";

  // ---------------------------------------------------------------- state
  const S = {
    B: null, n: 0, X: null, Y: null, T: null, levels: [], top: 0, base: 0,
    assign: {},          // level -> Int32Array of cluster index
    clusters: [], children: new Map(), roots: [], byId: new Map(),
    color: null,         // per cluster index: colour string
    pointColor: null,    // per point: palette slot (Uint8Array), 255 = noise
    facets: [],
    filters: [],         // {key, value (index), label}
    dateFrom: null, dateTo: null,
    mask: null, nActive: 0, counts: null,
    query: "", searchMask: null, nSearch: 0, searchCounts: null,
    selected: -1, expanded: new Set(), sortBy: "size", treeQuery: "",
    convId: null, tab: "map",
  };

  // ---------------------------------------------------------------- load
  async function start() {
    applyTheme(localStorage.getItem("kiku-theme"));
    let B;
    try {
      B = await source.bundle();
    } catch (err) {
      $("loading-text").textContent = "Could not load this run: " + err.message;
      document.body.dataset.error = "1";
      return;
    }
    prepare(B);
    $("loading").hidden = true;
    $("app").hidden = false;
    buildChrome();
    recompute();
    renderAll();
    fitMap();
    drawMap();
    document.body.dataset.ready = "1";
    window.__kikuReadyAt = performance.now();
  }

  function prepare(B) {
    S.B = B; S.n = B.n;
    S.X = Float32Array.from(B.x); S.Y = Float32Array.from(B.y);
    S.T = B.time ? Float64Array.from(B.time, (t) => (t == null ? NaN : t)) : null;
    S.levels = B.levels.slice().sort((a, b) => a - b);
    S.top = S.levels.length ? S.levels[S.levels.length - 1] : 0;
    S.base = S.levels.length ? S.levels[0] : 0;
    S.clusters = B.clusters;
    B.clusters.forEach((c, i) => { S.byId.set(c.id, i); S.children.set(i, []); });
    B.clusters.forEach((c, i) => {
      const p = c.parent == null ? undefined : S.byId.get(c.parent);
      if (p === undefined) S.roots.push(i); else S.children.get(p).push(i);
    });
    for (const l of S.levels) S.assign[l] = Int32Array.from(B.assign[String(l)]);
    // A topic can cover its conversations at levels above its own (collapsed single-child
    // chains, the unclustered bucket): count each topic only at its own level.
    S.clusterLevel = Int32Array.from(B.clusters, (c) => c.level);
    // colour: each root gets a palette slot by size; descendants inherit it
    S.color = new Array(S.clusters.length).fill(NOISE);
    const slot = new Int16Array(S.clusters.length).fill(-1);
    const roots = S.roots.slice().sort((a, b) => S.clusters[b].size - S.clusters[a].size);
    roots.forEach((r, k) => {
      const s = S.clusters[r].is_noise ? -1 : k % PALETTE.length;
      const stack = [r];
      while (stack.length) {
        const c = stack.pop();
        slot[c] = s; S.color[c] = s < 0 ? NOISE : PALETTE[s];
        stack.push(...S.children.get(c));
      }
    });
    S.pointColor = new Uint8Array(S.n).fill(255);
    const topA = S.assign[S.top];
    if (topA) for (let i = 0; i < S.n; i++) { const c = topA[i]; if (c >= 0 && slot[c] >= 0) S.pointColor[i] = slot[c]; }
    S.facets = B.facets.map((f) => ({ ...f, codes: f.kind === "category" ? Int32Array.from(f.codes) : f.codes }));
    S.mask = new Uint8Array(S.n);
    S.counts = new Float64Array(S.clusters.length);
    S.searchCounts = new Float64Array(S.clusters.length);
    // label anchor per cluster = mean of its points (falls back to the stored x/y)
    const sx = new Float64Array(S.clusters.length), sy = new Float64Array(S.clusters.length), sn = new Float64Array(S.clusters.length);
    for (const l of S.levels) {
      const a = S.assign[l], L = S.clusterLevel;
      for (let i = 0; i < S.n; i++) { const c = a[i]; if (c >= 0 && L[c] === l) { sx[c] += S.X[i]; sy[c] += S.Y[i]; sn[c]++; } }
    }
    S.clusters.forEach((c, i) => { c._x = sn[i] ? sx[i] / sn[i] : c.x || 0; c._y = sn[i] ? sy[i] / sn[i] : c.y || 0; c._level = c.level; });
    S.requestLower = null; S.summaryLower = null;
    buildGrid();
  }

  // ---------------------------------------------------------------- filtering
  function recompute() {
    const { n } = S;
    const groups = new Map();
    for (const f of S.filters) { if (!groups.has(f.key)) groups.set(f.key, new Set()); groups.get(f.key).add(f.value); }
    const checks = [];
    for (const [key, values] of groups) {
      const facet = S.facets.find((f) => f.key === key);
      if (!facet) continue;
      if (facet.kind === "category") checks.push((i) => values.has(facet.codes[i]));
      else checks.push((i) => { const c = facet.codes[i]; for (let k = 0; k < c.length; k++) if (values.has(c[k])) return true; return false; });
    }
    const lo = S.dateFrom, hi = S.dateTo, T = S.T;
    let active = 0;
    for (let i = 0; i < n; i++) {
      let ok = 1;
      if (T && (lo !== null || hi !== null)) {
        const t = T[i];
        if (t !== t || (lo !== null && t < lo) || (hi !== null && t >= hi)) ok = 0;
      }
      if (ok) for (let k = 0; k < checks.length; k++) if (!checks[k](i)) { ok = 0; break; }
      S.mask[i] = ok; active += ok;
    }
    S.nActive = active;
    S.counts.fill(0); S.searchCounts.fill(0);
    const L = S.clusterLevel;
    for (const l of S.levels) {
      const a = S.assign[l];
      for (let i = 0; i < n; i++) { const c = a[i]; if (S.mask[i] && c >= 0 && L[c] === l) S.counts[c]++; }
      if (S.searchMask) for (let i = 0; i < n; i++) { const c = a[i]; if (S.mask[i] && S.searchMask[i] && c >= 0 && L[c] === l) S.searchCounts[c]++; }
    }
    if (S.searchMask) { let k = 0; for (let i = 0; i < n; i++) k += S.mask[i] & S.searchMask[i]; S.nSearch = k; }
  }

  function runSearch(q) {
    S.query = q.trim().toLowerCase();
    if (!S.query) { S.searchMask = null; S.nSearch = 0; }
    else {
      if (!S.requestLower) {
        S.requestLower = S.B.text.request.map((s) => (s || "").toLowerCase());
        S.summaryLower = S.B.text.summary ? S.B.text.summary.map((s) => (s || "").toLowerCase()) : null;
      }
      const m = new Uint8Array(S.n), q2 = S.query;
      for (let i = 0; i < S.n; i++) {
        if (S.requestLower[i].includes(q2) || (S.summaryLower && S.summaryLower[i].includes(q2))) m[i] = 1;
      }
      S.searchMask = m;
    }
    recompute();
    renderAll();
  }

  /** Indices of active points in cluster c (or all when c < 0). */
  function membersOf(c, onlySearch) {
    const out = [];
    const a = c >= 0 ? S.assign[S.clusters[c].level] : null;
    for (let i = 0; i < S.n; i++) {
      if (!S.mask[i]) continue;
      if (a && a[i] !== c) continue;
      if (onlySearch && S.searchMask && !S.searchMask[i]) continue;
      out.push(i);
    }
    return out;
  }

  // ---------------------------------------------------------------- chrome (header, filters)
  function buildChrome() {
    const run = S.B.run || {};
    $("run-name").textContent = run.name || "";
    $("run-stats").textContent = fmt.format(S.n) + " conversations · " + fmt.format(S.clusters.filter((c) => c.level === S.base).length) + " topics" + (run.llm ? " · LLM facets" : "");
    document.title = (embedded ? "kiku report · " : "kiku · ") + (run.name || "run");
    $("export-btn").hidden = !source.canExport;
    if (source.canExport) $("export-btn").addEventListener("click", downloadExport);
    $("theme-btn").addEventListener("click", toggleTheme);
    $("search").addEventListener("input", debounce((e) => runSearch(e.target.value), 140));
    $("tree-search").addEventListener("input", debounce((e) => { S.treeQuery = e.target.value.trim().toLowerCase(); renderTree(); }, 100));
    $("tree-sort").addEventListener("click", () => {
      S.sortBy = S.sortBy === "size" ? "name" : "size";
      $("tree-sort").textContent = S.sortBy === "size" ? "Size ↓" : "Name A–Z";
      renderTree();
    });
    const fsel = $("filter-facet");
    fsel.append(h("option", { value: "", text: "Choose a facet…" }));
    const groups = [["Facets", S.facets.filter((f) => f.group !== "metadata")], ["Metadata", S.facets.filter((f) => f.group === "metadata")]];
    for (const [label, list] of groups) {
      if (!list.length) continue;
      const og = h("optgroup", { label });
      for (const f of list) og.append(h("option", { value: f.key, text: f.label }));
      fsel.append(og);
    }
    fsel.addEventListener("change", fillFilterValues);
    fillFilterValues();
    $("filter-add").addEventListener("click", () => {
      const key = fsel.value, v = $("filter-value").value;
      if (key && v !== "") addFilter(key, Number(v));
    });
    if (S.T) {
      let lo = Infinity, hi = -Infinity;
      for (const t of S.T) if (t === t) { if (t < lo) lo = t; if (t > hi) hi = t; }
      if (lo <= hi) {
        const d = (t) => new Date(t).toISOString().slice(0, 10);
        for (const id of ["date-from", "date-to"]) { $(id).min = d(lo); $(id).max = d(hi); }
      }
      const onDate = () => {
        const f = $("date-from").value, t = $("date-to").value;
        S.dateFrom = f ? Date.parse(f + "T00:00:00Z") : null;
        S.dateTo = t ? Date.parse(t + "T00:00:00Z") + 86400000 : null;
        update();
      };
      $("date-from").addEventListener("change", onDate);
      $("date-to").addEventListener("change", onDate);
    } else $("date-range").hidden = true;
    document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => setTab(b.dataset.tab)));
    setupMap();
    window.addEventListener("resize", debounce(() => { resizeMap(); drawMap(); if (S.tab === "trends") drawTrends(); }, 80));
    if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { drawMap(); drawTrends(); });
  }

  /** Build the report on the server, then save it; shows progress (a large run takes seconds). */
  async function downloadExport(e) {
    e.preventDefault();
    const btn = $("export-btn");
    if (btn.dataset.busy) return;
    btn.dataset.busy = "1";
    btn.textContent = "Preparing report…";
    try {
      const res = await fetch("api/export.html");
      if (!res.ok) throw new Error("HTTP " + res.status);
      const url = URL.createObjectURL(await res.blob());
      const name = ((S.B.run && S.B.run.name) || "kiku-report").replace(/[^\w.-]+/g, "_") + ".html";
      const a = h("a", { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      btn.textContent = "Export HTML";
    } catch (err) {
      btn.textContent = "Export failed";
    } finally {
      delete btn.dataset.busy;
    }
  }

  function fillFilterValues() {
    const sel = $("filter-value");
    sel.replaceChildren();
    const f = S.facets.find((x) => x.key === $("filter-facet").value);
    if (!f) { sel.append(h("option", { value: "", text: "value" })); sel.disabled = true; return; }
    sel.disabled = false;
    const counts = facetCounts(f, membersOf(-1));
    f.values.forEach((v, i) => sel.append(h("option", { value: String(i), text: clip(v, 60) + " (" + fmt.format(counts[i]) + ")" })));
  }

  function addFilter(key, value) {
    if (S.filters.some((f) => f.key === key && f.value === value)) return;
    S.filters.push({ key, value });
    update();
  }

  function renderChips() {
    const box = $("chips");
    box.replaceChildren();
    S.filters.forEach((flt, k) => {
      const f = S.facets.find((x) => x.key === flt.key);
      const text = (f ? f.label : flt.key) + ": " + (f ? f.values[flt.value] : flt.value);
      box.append(h("span", { class: "chip", title: text }, h("span", { text }),
        h("button", { type: "button", "aria-label": "Remove filter " + text, text: "×", onclick: () => { S.filters.splice(k, 1); update(); } })));
    });
    const filtered = S.filters.length || S.dateFrom !== null || S.dateTo !== null;
    $("filter-count").textContent = filtered ? fmt.format(S.nActive) + " of " + fmt.format(S.n) + " conversations match" : "";
  }

  function update() { recompute(); renderAll(); }

  function renderAll() {
    renderChips();
    $("search-count").textContent = S.query ? fmt.format(S.nSearch) + (S.nSearch === 1 ? " match" : " matches") : "";
    renderTree();
    renderDetails();
    drawMap();
    if (S.tab === "trends") drawTrends();
    if ($("filter-facet").value) fillFilterValues();
  }

  // ---------------------------------------------------------------- theme
  function applyTheme(t) {
    if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
    else delete document.documentElement.dataset.theme;
  }
  function currentTheme() {
    const t = document.documentElement.dataset.theme;
    if (t) return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function toggleTheme() {
    const next = currentTheme() === "dark" ? "light" : "dark";
    applyTheme(next);
    try { localStorage.setItem("kiku-theme", next); } catch (e) { /* storage may be off for file:// */ }
    drawMap(); drawTrends();
  }

  // ---------------------------------------------------------------- tree
  function sortedKids(list) {
    const arr = list.slice();
    if (S.sortBy === "size") arr.sort((a, b) => S.counts[b] - S.counts[a] || S.clusters[b].size - S.clusters[a].size);
    else arr.sort((a, b) => S.clusters[a].name.localeCompare(S.clusters[b].name));
    return arr;
  }

  function treeMatches() {
    if (!S.treeQuery) return null;
    const show = new Set();
    S.clusters.forEach((c, i) => {
      if (!c.name.toLowerCase().includes(S.treeQuery)) return;
      let k = i;
      while (k !== undefined && !show.has(k)) {
        show.add(k);
        const p = S.clusters[k].parent;
        k = p == null ? undefined : S.byId.get(p);
      }
    });
    return show;
  }

  function renderTree() {
    const box = $("tree");
    const scroll = box.scrollTop;
    box.replaceChildren();
    const show = treeMatches();
    const total = S.n || 1;
    const maxCount = Math.max(1, ...S.roots.map((r) => S.counts[r]));
    const build = (list, depth) => {
      const frag = document.createDocumentFragment();
      for (const c of sortedKids(list)) {
        if (show && !show.has(c)) continue;
        const kids = S.children.get(c);
        const open = show ? kids.some((k) => show.has(k)) : S.expanded.has(c);
        const cl = S.clusters[c];
        const count = S.counts[c];
        const node = h("div", {
          class: "node" + (S.selected === c ? " selected" : "") + (count === 0 ? " empty" : ""),
          role: "treeitem", "aria-expanded": kids.length ? String(open) : null, "aria-selected": String(S.selected === c),
          "data-cluster": cl.id, "data-level": String(cl.level), title: cl.name,
          onclick: () => selectCluster(c, "tree"),
        },
          h("button", { class: "caret" + (kids.length ? "" : " leaf") + (open ? " open" : ""), type: "button",
            "aria-label": (open ? "Collapse " : "Expand ") + cl.name, text: "▶",
            onclick: (e) => { e.stopPropagation(); toggle(c); } }),
          h("span", { class: "swatch", style: { background: S.color[c] } }),
          h("div", { class: "node-main" },
            highlighted(h("div", { class: "node-name" }), cl.name, S.treeQuery),
            h("div", { class: "node-bar" }, h("div", { style: { width: (100 * count / maxCount).toFixed(1) + "%" } }))),
          h("div", { class: "node-meta" }, h("b", { text: fmt.format(count) }), " · " + pct(count / total),
            S.searchMask && S.searchCounts[c] ? h("span", { class: "badge", title: "search matches", text: fmt.format(S.searchCounts[c]) }) : null),
        );
        frag.append(node);
        if (open && kids.length) { const sub = h("div", { class: "children", role: "group" }); sub.append(build(kids, depth + 1)); frag.append(sub); }
      }
      return frag;
    };
    box.append(build(S.roots, 0));
    if (!box.childElementCount) box.append(h("div", { class: "empty-state", text: S.treeQuery ? "No topic matches “" + S.treeQuery + "”." : "This run has no topics." }));
    box.scrollTop = scroll;
  }

  function toggle(c) { if (S.expanded.has(c)) S.expanded.delete(c); else S.expanded.add(c); renderTree(); }

  function ancestors(c) {
    const out = [];
    let p = S.clusters[c].parent;
    while (p != null && S.byId.has(p)) { const k = S.byId.get(p); out.unshift(k); p = S.clusters[k].parent; }
    return out;
  }

  function selectCluster(c, from) {
    S.selected = c; S.convId = null;
    if (c >= 0) {
      for (const a of ancestors(c)) S.expanded.add(a);
      if (from !== "tree" && S.children.get(c).length === 0) { /* leaf: ancestors opened */ }
    }
    renderTree(); renderDetails(); drawMap();
    if (S.tab === "trends") drawTrends();
    if (c >= 0) {
      const row = $("tree").querySelector('.node.selected');
      if (row && from !== "tree") row.scrollIntoView({ block: "nearest" });
    }
  }

  // ---------------------------------------------------------------- details
  function facetCounts(f, members) {
    const counts = new Float64Array(f.values.length);
    if (f.kind === "category") { for (const i of members) { const c = f.codes[i]; if (c >= 0) counts[c]++; } }
    else for (const i of members) for (const c of f.codes[i]) counts[c]++;
    return counts;
  }

  function distribution(f, members) {
    const counts = facetCounts(f, members);
    let order = f.values.map((_, i) => i).filter((i) => counts[i] > 0);
    if (!f.ordered) order.sort((a, b) => counts[b] - counts[a]);
    const withValue = f.kind === "category" ? members.reduce((s, i) => s + (f.codes[i] >= 0 ? 1 : 0), 0) : members.reduce((s, i) => s + (f.codes[i].length ? 1 : 0), 0);
    if (!order.length) return null;
    const shown = order.slice(0, f.ordered ? 12 : 8);
    const max = Math.max(...shown.map((i) => counts[i]));
    const box = h("div", { class: "facet-block", "data-facet": f.key },
      h("div", { class: "facet-name", text: f.label + (f.group === "metadata" ? " (metadata)" : "") }));
    const dist = h("div", { class: "dist" });
    for (const i of shown) {
      dist.append(h("div", { class: "dist-row", title: "Filter by " + f.label + " = " + f.values[i], onclick: () => addFilter(f.key, i) },
        h("span", { class: "dist-label", text: f.values[i] }),
        h("span", { class: "dist-bar" }, h("div", { style: { width: (100 * counts[i] / max).toFixed(1) + "%" } })),
        h("span", { class: "dist-val", text: members.length ? pct(counts[i] / members.length) : "" })));
    }
    box.append(dist);
    const rest = order.length - shown.length;
    const missing = members.length - withValue;
    const notes = [];
    if (rest > 0) notes.push(rest + " more value" + (rest > 1 ? "s" : ""));
    if (missing > 0) notes.push(fmt.format(missing) + " without a value");
    if (notes.length) box.append(h("div", { class: "more", text: notes.join(" · ") }));
    return box;
  }

  function exampleCards(members, c) {
    // closest to the topic's centre first: representative, not arbitrary
    let list = members;
    if (c >= 0) {
      const cx = S.clusters[c]._x, cy = S.clusters[c]._y;
      list = members.slice().sort((a, b) => ((S.X[a] - cx) ** 2 + (S.Y[a] - cy) ** 2) - ((S.X[b] - cx) ** 2 + (S.Y[b] - cy) ** 2));
    }
    const box = h("div", { class: "examples" });
    for (const i of list.slice(0, 8)) box.append(exampleCard(i));
    if (!list.length) box.append(h("div", { class: "empty-state", text: "No conversations match the current filters." }));
    return box;
  }

  function exampleCard(i) {
    const req = S.B.text.request[i] || "(no request)";
    const sum = S.B.text.summary ? S.B.text.summary[i] : null;
    const topic = S.assign[S.base] ? S.assign[S.base][i] : -1;
    const when = S.T && S.T[i] === S.T[i] ? new Date(S.T[i]).toISOString().slice(0, 10) : "";
    return h("button", { class: "example", type: "button", "data-conversation": S.B.ids[i], onclick: () => openConversation(S.B.ids[i]) },
      highlighted(h("div", { class: "ex-text" }), clip(req, 400), S.query),
      sum ? highlighted(h("div", { class: "ex-sum" }), clip(sum, 300), S.query) : null,
      h("div", { class: "ex-meta", text: [topic >= 0 ? S.clusters[topic].name : "", when].filter(Boolean).join(" · ") }));
  }

  function crumbs(c) {
    const box = h("div", { class: "crumbs" });
    box.append(h("button", { type: "button", text: "All topics", onclick: () => selectCluster(-1) }));
    for (const a of ancestors(c)) {
      box.append(h("span", { class: "sep", text: "›" }));
      box.append(h("button", { type: "button", text: S.clusters[a].name, onclick: () => selectCluster(a) }));
    }
    return box;
  }

  function stat(v, k) { return h("div", { class: "stat" }, h("div", { class: "v", text: v }), h("div", { class: "k", text: k })); }

  function renderDetails() {
    if (S.convId) return; // the conversation viewer stays until closed
    const box = $("details");
    box.replaceChildren();
    box.scrollTop = 0;
    const c = S.selected;
    const members = membersOf(c);
    if (S.query) {
      box.append(searchResults());
    }
    if (c >= 0) {
      const cl = S.clusters[c];
      const parent = cl.parent != null ? S.byId.get(cl.parent) : undefined;
      box.append(crumbs(c),
        h("h2", { class: "details-title", id: "topic-title", text: cl.name }),
        cl.description ? h("p", { class: "desc", text: cl.description }) : null,
        h("div", { class: "stats" },
          stat(fmt.format(S.counts[c]), S.nActive < S.n ? "matching (" + fmt.format(cl.size) + " total)" : "conversations"),
          stat(pct(cl.size / (S.n || 1)), "of all"),
          stat(parent !== undefined ? pct(cl.size / (S.clusters[parent].size || 1)) : "level " + cl.level, parent !== undefined ? "of parent" : "top level")));
      if (cl.keyphrases && cl.keyphrases.length) {
        box.append(h("h3", { text: "Keyphrases" }), h("div", { class: "tags" }, ...cl.keyphrases.map((k) => h("span", { class: "tag", text: k }))));
      }
      if (cl.representative_request) box.append(h("h3", { text: "Representative request" }), h("p", { class: "desc", text: cl.representative_request }));
      const kids = sortedKids(S.children.get(c));
      if (kids.length) box.append(h("h3", { text: "Subtopics (" + kids.length + ")" }), childList(kids, Math.max(1, S.counts[c])));
    } else {
      box.append(h("h2", { class: "details-title", id: "topic-title", text: "All conversations" }),
        h("p", { class: "desc", text: "Select a topic in the tree or on the map to see its details." }),
        h("div", { class: "stats" },
          stat(fmt.format(S.nActive), S.nActive < S.n ? "matching" : "conversations"),
          stat(fmt.format(S.roots.length), "top topics"),
          stat(fmt.format(S.clusters.filter((x) => x.level === S.base).length), "base topics")));
      box.append(h("h3", { text: "Top-level topics" }), childList(sortedKids(S.roots), Math.max(1, S.nActive)));
    }
    if (S.facets.length) {
      box.append(h("h3", { text: "Facets" }));
      const grid = h("div", { class: "facet-grid" });
      for (const f of S.facets) { const d = distribution(f, members); if (d) grid.append(d); }
      box.append(grid);
    }
    box.append(h("h3", { text: "Example conversations" }), exampleCards(members, c));
  }

  function childList(kids, denom) {
    const box = h("div", { class: "child-list" });
    for (const k of kids) {
      box.append(h("div", { class: "child-row", "data-cluster": S.clusters[k].id, onclick: () => selectCluster(k) },
        h("span", { class: "swatch", style: { background: S.color[k] } }),
        h("span", { class: "name", text: S.clusters[k].name, title: S.clusters[k].name }),
        h("span", { class: "n", text: fmt.format(S.counts[k]) + " · " + pct(S.counts[k] / denom) })));
    }
    return box;
  }

  function searchResults() {
    const hits = [];
    for (let i = 0; i < S.n && hits.length < 50; i++) if (S.mask[i] && S.searchMask[i] && (S.selected < 0 || S.assign[S.clusters[S.selected].level][i] === S.selected)) hits.push(i);
    const box = h("div", { class: "search-results", id: "search-results" },
      h("h3", { text: "Search: " + fmt.format(S.nSearch) + " match" + (S.nSearch === 1 ? "" : "es") + (S.selected >= 0 ? " (showing this topic)" : "") }));
    const list = h("div", { class: "examples" });
    hits.slice(0, 12).forEach((i) => list.append(exampleCard(i)));
    if (!hits.length) list.append(h("div", { class: "empty-state", text: "Nothing matches “" + S.query + "”." }));
    box.append(list);
    return box;
  }

  // ---------------------------------------------------------------- conversation viewer
  async function openConversation(id) {
    S.convId = id;
    const box = $("details");
    box.replaceChildren(h("div", { class: "empty-state", text: "Loading conversation…" }));
    let conv;
    try { conv = await source.conversation(id); } catch (err) { conv = null; }
    if (S.convId !== id) return;
    box.replaceChildren();
    box.scrollTop = 0;
    box.append(h("button", { class: "btn small back", type: "button", id: "back-btn", text: "← Back to " + (S.selected >= 0 ? "topic" : "overview"),
      onclick: () => { S.convId = null; renderDetails(); drawMap(); } }));
    if (!conv) { box.append(h("div", { class: "empty-state", text: "This conversation could not be loaded." })); return; }
    const topics = (conv.topics || []).slice().sort((a, b) => b.level - a.level);
    const cr = h("div", { class: "crumbs" });
    topics.forEach((t, k) => {
      if (k) cr.append(h("span", { class: "sep", text: "›" }));
      const idx = S.byId.get(t.cluster_id);
      cr.append(h("button", { type: "button", text: t.name || t.cluster_id, onclick: () => selectCluster(idx === undefined ? -1 : idx) }));
    });
    const f = conv.facets || {};
    box.append(cr, h("h2", { class: "details-title", id: "conversation-title", text: clip(f.request || conv.id, 160) }),
      h("div", { class: "muted", text: [conv.id, conv.created_at ? new Date(conv.created_at).toLocaleString() : null].filter(Boolean).join(" · ") }));
    if (f.summary) box.append(h("h3", { text: "Summary" }), h("div", { class: "summary", text: f.summary }));
    if (f.task) box.append(h("div", { class: "kv" }, h("span", { class: "k", text: "Task" }), h("span", { class: "v", text: f.task })));
    const kv = h("div", { class: "kv", id: "conversation-facets" });
    for (const [k, v] of Object.entries(f)) {
      if (["request", "summary", "task"].includes(k) || v === null || v === undefined || (Array.isArray(v) && !v.length)) continue;
      kv.append(h("span", { class: "k", text: k.startsWith("facet_") ? k.slice(6) : k.replace(/_/g, " ") }), h("span", { class: "v", text: Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v) }));
    }
    box.append(h("h3", { text: "Facets" }), kv);
    const msgs = h("div", { class: "messages", id: "messages" });
    for (const m of conv.messages || []) {
      const role = String(m.role || "");
      msgs.append(h("div", { class: "msg " + (role === "user" || role === "human" ? "user" : "assistant") },
        h("div", { class: "msg-head" }, h("span", { text: role }), h("span", { text: m.created_at ? new Date(m.created_at).toLocaleString() : "" })),
        highlighted(h("div", { class: "msg-body" }), m.content, S.query)));
    }
    box.append(h("h3", { text: "Messages (" + (conv.messages || []).length + ")" }), msgs);
    if (conv.clipped) {
      const c = source.clipNote() || {};
      box.append(h("p", { class: "note", id: "clipped-note", text: "This export keeps at most " + fmt.format(c.message || 0) + " characters per message and " + fmt.format(c.conversation || 0) + " per conversation; this conversation was shortened. The full text is in the run folder." }));
    }
    const meta = conv.metadata || {};
    const mk = Object.keys(meta);
    if (mk.length || conv.source) {
      const mkv = h("div", { class: "kv", id: "conversation-metadata" });
      for (const k of mk) { const v = meta[k]; mkv.append(h("span", { class: "k", text: k }), h("span", { class: "v", text: typeof v === "object" && v !== null ? JSON.stringify(v) : String(v) })); }
      if (conv.source) mkv.append(h("span", { class: "k", text: "source" }), h("span", { class: "v", text: conv.source + (conv.source_line ? ":" + conv.source_line : "") }));
      box.append(h("h3", { text: "Metadata" }), mkv);
    }
    drawMap();
  }

  // ---------------------------------------------------------------- map
  const M = { k: 1, cx: 0, cy: 0, w: 0, h: 0, dpr: 1, k0: 1, grid: null, hover: -1, raf: 0 };

  function buildGrid() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < S.n; i++) { const x = S.X[i], y = S.Y[i]; if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y; }
    if (!S.n) { x0 = y0 = -1; x1 = y1 = 1; }
    const G = 128, w = Math.max(1e-9, x1 - x0), hh = Math.max(1e-9, y1 - y0);
    const cell = new Int32Array(S.n), start = new Int32Array(G * G + 1), items = new Int32Array(S.n);
    for (let i = 0; i < S.n; i++) {
      const gx = Math.min(G - 1, Math.floor((S.X[i] - x0) / w * G)), gy = Math.min(G - 1, Math.floor((S.Y[i] - y0) / hh * G));
      cell[i] = gy * G + gx; start[cell[i] + 1]++;
    }
    for (let k = 0; k < G * G; k++) start[k + 1] += start[k];
    const fill = start.slice(0, G * G);
    for (let i = 0; i < S.n; i++) items[fill[cell[i]]++] = i;
    M.grid = { G, x0, y0, w, h: hh, start, items };
    M.bounds = { x0, x1, y0, y1 };
  }

  function setupMap() {
    const cv = $("map");
    resizeMap();
    let drag = null;
    cv.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, cx: M.cx, cy: M.cy, moved: false }; cv.classList.add("dragging"); });
    window.addEventListener("mouseup", (e) => {
      if (!drag) return;
      cv.classList.remove("dragging");
      const wasClick = !drag.moved;
      drag = null;
      if (wasClick && e.target === cv) clickMap(e);
    });
    window.addEventListener("mousemove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        M.cx = drag.cx - dx / M.k; M.cy = drag.cy + dy / M.k;
        $("tooltip").hidden = true;
        scheduleDraw();
      } else if (e.target === cv) hoverMap(e);
    });
    cv.addEventListener("mouseleave", () => { $("tooltip").hidden = true; if (M.hover >= 0) { M.hover = -1; scheduleDraw(); } });
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = cv.getBoundingClientRect();
      zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
    $("zoom-in").addEventListener("click", () => zoomAt(M.w / 2, M.h / 2, 1.5));
    $("zoom-out").addEventListener("click", () => zoomAt(M.w / 2, M.h / 2, 1 / 1.5));
    $("zoom-reset").addEventListener("click", () => { fitMap(); drawMap(); });
  }

  function resizeMap() {
    const cv = $("map"), r = cv.parentElement.getBoundingClientRect();
    M.dpr = window.devicePixelRatio || 1;
    M.w = Math.max(10, r.width); M.h = Math.max(10, r.height);
    cv.width = Math.round(M.w * M.dpr); cv.height = Math.round(M.h * M.dpr);
  }

  function fitMap() {
    const b = M.bounds;
    // keep the points clear of the legend at the bottom of the map
    const legend = $("legend"), lh = legend ? legend.offsetHeight + 12 : 0;
    M.k = 0.9 * Math.min(M.w / Math.max(1e-9, b.x1 - b.x0), Math.max(40, M.h - lh) / Math.max(1e-9, b.y1 - b.y0));
    M.cx = (b.x0 + b.x1) / 2; M.cy = (b.y0 + b.y1) / 2 - lh / 2 / M.k;
    M.k0 = M.k;
  }

  function zoomAt(px, py, f) {
    const wx = M.cx + (px - M.w / 2) / M.k, wy = M.cy - (py - M.h / 2) / M.k;
    M.k = Math.min(M.k0 * 200, Math.max(M.k0 * 0.3, M.k * f));
    M.cx = wx - (px - M.w / 2) / M.k; M.cy = wy + (py - M.h / 2) / M.k;
    scheduleDraw();
  }

  const toScreenX = (x) => (x - M.cx) * M.k + M.w / 2;
  const toScreenY = (y) => M.h / 2 - (y - M.cy) * M.k;

  function scheduleDraw() { if (!M.raf) M.raf = requestAnimationFrame(() => { M.raf = 0; drawMap(); }); }

  function nearest(px, py, radius) {
    const g = M.grid; if (!g || !S.n) return -1;
    const wx = M.cx + (px - M.w / 2) / M.k, wy = M.cy - (py - M.h / 2) / M.k, rw = radius / M.k;
    const gx0 = Math.max(0, Math.floor((wx - rw - g.x0) / g.w * g.G)), gx1 = Math.min(g.G - 1, Math.floor((wx + rw - g.x0) / g.w * g.G));
    const gy0 = Math.max(0, Math.floor((wy - rw - g.y0) / g.h * g.G)), gy1 = Math.min(g.G - 1, Math.floor((wy + rw - g.y0) / g.h * g.G));
    let best = -1, bd = rw * rw;
    for (let gy = gy0; gy <= gy1; gy++) for (let gx = gx0; gx <= gx1; gx++) {
      const c = gy * g.G + gx;
      for (let k = g.start[c]; k < g.start[c + 1]; k++) {
        const i = g.items[k];
        if (!S.mask[i]) continue;
        const d = (S.X[i] - wx) ** 2 + (S.Y[i] - wy) ** 2;
        if (d <= bd) { bd = d; best = i; }
      }
    }
    return best;
  }

  function topicPath(i) {
    const parts = [];
    for (let k = S.levels.length - 1; k >= 0; k--) { const c = S.assign[S.levels[k]][i]; if (c >= 0) parts.push(S.clusters[c].name); }
    return parts;
  }

  function hoverMap(e) {
    const r = $("map").getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const i = nearest(px, py, 8);
    const tip = $("tooltip");
    if (i !== M.hover) { M.hover = i; scheduleDraw(); }
    $("map").classList.toggle("pointing", i >= 0);
    if (i < 0) { tip.hidden = true; return; }
    const path = topicPath(i);
    tip.replaceChildren(h("div", { class: "tt-topic", text: path[path.length - 1] || "Unassigned" }),
      path.length > 1 ? h("div", { class: "tt-path", text: path.slice(0, -1).join(" › ") }) : null,
      h("div", { class: "tt-text", text: clip(S.B.text.request[i], 220) }));
    tip.hidden = false;
    const tx = Math.min(px + 14, M.w - 330), ty = py + 14 > M.h - 90 ? py - 90 : py + 14;
    tip.style.left = Math.max(4, tx) + "px"; tip.style.top = Math.max(4, ty) + "px";
    tip.dataset.conversation = S.B.ids[i];
  }

  function clickMap(e) {
    const r = $("map").getBoundingClientRect();
    const i = nearest(e.clientX - r.left, e.clientY - r.top, 8);
    if (i < 0) { if (S.selected >= 0) selectCluster(-1); return; }
    // zoomed out: select the top-level topic; zoomed in: the base topic under the point
    const level = M.k > M.k0 * 2.5 || S.levels.length < 2 ? S.base : S.levels[S.levels.length - 1];
    let c = S.assign[level][i];
    if (S.selected >= 0 && c === S.selected && level !== S.base) c = S.assign[S.base][i];
    if (c >= 0) selectCluster(c, "map");
  }

  function drawMap() {
    const cv = $("map");
    if (!cv || !S.B || S.tab !== "map") return;
    const ctx = cv.getContext("2d");
    ctx.setTransform(M.dpr, 0, 0, M.dpr, 0, 0);
    ctx.fillStyle = cssVar("--map-bg") || "#fff";
    ctx.fillRect(0, 0, M.w, M.h);
    const sel = S.selected, selA = sel >= 0 ? S.assign[S.clusters[sel].level] : null;
    const sm = S.searchMask;
    const zoom = M.k / M.k0;
    const r = Math.min(5, Math.max(1.2, (S.n > 50000 ? 1.4 : S.n > 10000 ? 1.9 : 2.6) * Math.sqrt(zoom)));
    const d = r * 2;
    const hi = (i) => S.mask[i] && (!selA || selA[i] === sel) && (!sm || sm[i]);
    // dimmed points first, in one path
    ctx.fillStyle = cssVar("--map-dim");
    ctx.beginPath();
    const W = M.w, H = M.h;
    for (let i = 0; i < S.n; i++) {
      if (hi(i)) continue;
      const x = (S.X[i] - M.cx) * M.k + W / 2, y = H / 2 - (S.Y[i] - M.cy) * M.k;
      if (x < -d || y < -d || x > W + d || y > H + d) continue;
      ctx.rect(x - r * 0.8, y - r * 0.8, d * 0.8, d * 0.8);
    }
    ctx.fill();
    // highlighted points, one path per colour
    const buckets = new Map();
    for (let i = 0; i < S.n; i++) {
      if (!hi(i)) continue;
      const x = (S.X[i] - M.cx) * M.k + W / 2, y = H / 2 - (S.Y[i] - M.cy) * M.k;
      if (x < -d || y < -d || x > W + d || y > H + d) continue;
      const slot = S.pointColor[i];
      let b = buckets.get(slot); if (!b) { b = []; buckets.set(slot, b); }
      b.push(x, y);
    }
    ctx.globalAlpha = sm || selA ? 0.95 : 0.8;
    const rr = sm ? r * 1.35 : r;
    let visible = 0;
    for (const pts of buckets.values()) visible += pts.length / 2;
    const round = visible < 30000; // circles look better; squares are cheaper for huge runs
    for (const [slot, pts] of buckets) {
      ctx.fillStyle = slot === 255 ? NOISE : PALETTE[slot];
      ctx.beginPath();
      if (round) for (let k = 0; k < pts.length; k += 2) { ctx.moveTo(pts[k] + rr, pts[k + 1]); ctx.arc(pts[k], pts[k + 1], rr, 0, 6.2832); }
      else for (let k = 0; k < pts.length; k += 2) ctx.rect(pts[k] - rr, pts[k + 1] - rr, rr * 2, rr * 2);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (sm) { // ring the search matches so they stand out on any colour
      ctx.strokeStyle = cssVar("--label"); ctx.lineWidth = 0.8; ctx.beginPath();
      for (const pts of buckets.values()) for (let k = 0; k < pts.length && k < 4000; k += 2) ctx.rect(pts[k] - rr - 1, pts[k + 1] - rr - 1, rr * 2 + 2, rr * 2 + 2);
      ctx.stroke();
    }
    const mark = (i, color) => {
      if (i < 0) return;
      ctx.beginPath(); ctx.arc(toScreenX(S.X[i]), toScreenY(S.Y[i]), r + 4, 0, Math.PI * 2);
      ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.stroke();
    };
    mark(M.hover, cssVar("--label"));
    if (S.convId) { const i = S.B.ids.indexOf(S.convId); mark(i, cssVar("--accent")); }
    drawLabels(ctx, zoom);
    renderLegend();
  }

  function drawLabels(ctx, zoom) {
    const boxes = [];
    const fits = (b) => !boxes.some((o) => b.x < o.x + o.w && b.x + b.w > o.x && b.y < o.y + o.h && b.y + b.h > o.y);
    const put = (c, size, weight) => {
      const cl = S.clusters[c];
      if (!S.counts[c]) return;
      let x = toScreenX(cl._x), y = toScreenY(cl._y);
      if (x < 0 || y < 0 || x > M.w || y > M.h) return;
      ctx.font = weight + " " + size + "px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
      const text = clip(cl.name, 38);
      const w = ctx.measureText(text).width;
      x = Math.min(M.w - w / 2 - 56, Math.max(w / 2 + 6, x)); // keep the label inside the map (and clear of the zoom buttons)
      y = Math.min(M.h - size, Math.max(size, y));
      const b = { x: x - w / 2 - 4, y: y - size / 2 - 3, w: w + 8, h: size + 6 };
      if (!fits(b)) return;
      boxes.push(b);
      ctx.lineWidth = 4; ctx.lineJoin = "round"; ctx.strokeStyle = cssVar("--halo");
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.strokeText(text, x, y);
      ctx.fillStyle = S.selected === c ? cssVar("--accent") : cssVar("--label");
      ctx.fillText(text, x, y);
    };
    if (S.selected >= 0) put(S.selected, 14, 700);
    const byCount = (list) => list.slice().sort((a, b) => S.counts[b] - S.counts[a]);
    for (const c of byCount(S.roots)) put(c, 13, 650);
    if (zoom > 2 && S.levels.length > 1) {
      const next = S.levels[S.levels.length - 2];
      for (const c of byCount(S.clusters.map((_, i) => i).filter((i) => S.clusters[i].level === next))) put(c, 11.5, 500);
    }
  }

  function renderLegend() {
    const box = $("legend");
    if (box.dataset.built) return;
    box.dataset.built = "1";
    const roots = S.roots.slice().sort((a, b) => S.clusters[b].size - S.clusters[a].size).slice(0, 12);
    for (const c of roots) box.append(h("span", { class: "legend-item", title: S.clusters[c].name, onclick: () => selectCluster(c, "legend") },
      h("span", { class: "swatch", style: { background: S.color[c] } }), h("span", { text: clip(S.clusters[c].name, 30) })));
  }

  // ---------------------------------------------------------------- trends
  function setTab(tab) {
    S.tab = tab;
    document.querySelectorAll(".tab").forEach((b) => { b.classList.toggle("active", b.dataset.tab === tab); b.setAttribute("aria-selected", String(b.dataset.tab === tab)); });
    $("map-view").hidden = tab !== "map";
    $("trends-view").hidden = tab !== "trends";
    $("map-hint").hidden = tab !== "map";
    if (tab === "map") { resizeMap(); drawMap(); } else drawTrends();
  }

  function drawTrends() {
    if (S.tab !== "trends" || !S.B) return;
    const cv = $("trends"), note = $("trends-note"), legend = $("trends-legend");
    legend.replaceChildren();
    if (!S.T) { note.textContent = "This run has no timestamps, so there is nothing to plot over time."; cv.hidden = true; return; }
    cv.hidden = false;
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < S.n; i++) { const t = S.T[i]; if (S.mask[i] && t === t) { if (t < lo) lo = t; if (t > hi) hi = t; } }
    const dpr = window.devicePixelRatio || 1, r = cv.getBoundingClientRect();
    cv.width = Math.round(r.width * dpr); cv.height = Math.round(r.height * dpr);
    const ctx = cv.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = r.width, H = r.height;
    ctx.clearRect(0, 0, W, H);
    if (!(lo <= hi)) { note.textContent = "No conversation with a timestamp matches the filters."; return; }
    const DAY = 86400000, span = hi - lo;
    const step = span <= 62 * DAY ? DAY : span <= 2 * 365 * DAY ? 7 * DAY : 30.44 * DAY;
    const unit = step === DAY ? "day" : step === 7 * DAY ? "week" : "month";
    const nb = Math.max(1, Math.floor(span / step) + 1);
    // series: children of the selected topic, else top-level topics
    const parent = S.selected >= 0 && S.children.get(S.selected).length ? S.selected : -1;
    const cands = parent >= 0 ? S.children.get(parent) : S.roots;
    const series = cands.slice().sort((a, b) => S.counts[b] - S.counts[a]).filter((c) => S.counts[c] > 0).slice(0, 8);
    const idx = new Map(series.map((c, k) => [c, k]));
    // siblings can sit at different levels (collapsed chains): look each one up at its own level
    const seriesLevels = [...new Set(series.map((c) => S.clusters[c].level))].map((l) => S.assign[l]);
    const data = series.map(() => new Float64Array(nb));
    const other = new Float64Array(nb);
    let hasOther = false;
    const selA = S.selected >= 0 ? S.assign[S.clusters[S.selected].level] : null;
    for (let i = 0; i < S.n; i++) {
      const t = S.T[i];
      if (!S.mask[i] || t !== t) continue;
      if (selA && selA[i] !== S.selected) continue;
      const b = Math.min(nb - 1, Math.floor((t - lo) / step));
      let k;
      for (const a of seriesLevels) { k = idx.get(a[i]); if (k !== undefined) break; }
      if (k === undefined) { other[b]++; hasOther = true; } else data[k][b]++;
    }
    note.textContent = "Conversations per " + unit + (parent >= 0 ? " in “" + S.clusters[parent].name + "”, by subtopic" : S.selected >= 0 ? " in “" + S.clusters[S.selected].name + "”" : ", by top-level topic") + (S.nActive < S.n ? " (filtered)" : "") + ".";
    const lines = data.map((d, k) => ({ d, color: S.color[series[k]], name: S.clusters[series[k]].name }));
    if (hasOther) lines.push({ d: other, color: NOISE, name: parent >= 0 || S.selected < 0 ? "Other" : S.clusters[S.selected].name });
    const max = Math.max(1, ...lines.map((l) => Math.max(...l.d)));
    const pad = { l: 48, r: 16, t: 16, b: 34 };
    const px = (b) => pad.l + (nb === 1 ? (W - pad.l - pad.r) / 2 : b / (nb - 1) * (W - pad.l - pad.r));
    const py = (v) => H - pad.b - v / max * (H - pad.t - pad.b);
    ctx.strokeStyle = cssVar("--border"); ctx.fillStyle = cssVar("--muted"); ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let g = 0; g <= 4; g++) {
      const v = max * g / 4, y = py(v);
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(W - pad.r, y); ctx.stroke();
      ctx.fillText(fmt.format(Math.round(v)), pad.l - 6, y);
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const ticks = Math.max(2, Math.min(nb, Math.floor((W - pad.l - pad.r) / 90)));
    for (let g = 0; g < ticks; g++) {
      const b = Math.round(g * (nb - 1) / Math.max(1, ticks - 1));
      ctx.fillText(new Date(lo + b * step).toISOString().slice(0, 10), px(b), H - pad.b + 8);
    }
    for (const l of lines) {
      ctx.strokeStyle = l.color; ctx.lineWidth = 2; ctx.beginPath();
      for (let b = 0; b < nb; b++) { const x = px(b), y = py(l.d[b]); if (b) ctx.lineTo(x, y); else ctx.moveTo(x, y); }
      ctx.stroke();
      if (nb === 1) { ctx.fillStyle = l.color; ctx.beginPath(); ctx.arc(px(0), py(l.d[0]), 3, 0, Math.PI * 2); ctx.fill(); }
      legend.append(h("span", { class: "legend-item", title: l.name }, h("span", { class: "swatch", style: { background: l.color } }), h("span", { text: clip(l.name, 40) })));
    }
  }

  // ---------------------------------------------------------------- go
  window.kiku = { state: S, selectCluster, openConversation, addFilter, runSearch, setTab, map: M, nearest, toScreenX, toScreenY, drawMap, update };
  // The markup and the data block precede this script in both modes (deferred when served;
  // inline before the conversation chunks in the export), so start without waiting for the
  // rest of a large export file to be parsed.
  start();
})();
