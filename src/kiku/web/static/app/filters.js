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
      if (ok && S.region && !S.region[i]) ok = 0; // a map selection narrows everything, like a filter
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
    S.nRegion = S.region ? active : 0;
  }

  /** Search every conversation for all words of q (server: DuckDB; export: the embedded texts). */
  async function runSearch(q, quiet) {
    const text = String(q || "").trim();
    const seq = ++S.searchSeq;
    S.query = text.toLowerCase();
    if (!S.query) { S.searchMask = null; S.nSearch = 0; S.searchTokens = []; S.searchError = null; }
    else {
      $("search-count").textContent = "Searching…";
      let res;
      try { res = await source.search(text); S.searchError = null; }
      catch (err) { res = { tokens: [], rows: [] }; S.searchError = err.message; }
      if (seq !== S.searchSeq) return; // a newer search started meanwhile
      const m = new Uint8Array(S.n);
      for (const r of res.rows) if (r >= 0 && r < S.n) m[r] = 1;
      S.searchMask = m; S.searchTokens = res.tokens || [];
    }
    S.listShown = 0;
    if (quiet) return;
    recompute();
    renderAll();
    syncUrlSoon();
    announce(S.query ? fmt.format(S.nSearch) + (S.nSearch === 1 ? " conversation matches" : " conversations match") + " “" + text + "”" : "Search cleared");
  }

  /** Indices of active points in cluster c (or all when c < 0). */
  function membersOf(c, onlySearch) {
    const out = [];
    const a = c >= 0 ? S.assign[S.clusters[c].level] : null;
    const R = S.region;
    for (let i = 0; i < S.n; i++) {
      if (!S.mask[i]) continue;
      if (a && a[i] !== c) continue;
      if (R && !R[i]) continue;
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
    $("search").placeholder = S.B.text.summary ? "Search all words in messages and summaries…" : "Search all words in the messages…";
    if (embedded) $("search").placeholder = "Search all words in the conversations kept here…";
    $("search").addEventListener("input", debounce((e) => runSearch(e.target.value), 200));
    const csel = $("color-by");
    csel.append(h("option", { value: "topic", text: "Topic and subtopics" }), h("option", { value: "top", text: "Top-level topic" }));
    for (const f of S.facets) if (f.kind === "category" && !isUninformative(f)) csel.append(h("option", { value: f.key, text: f.label }));
    csel.addEventListener("change", () => setColorBy(csel.value));
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
      for (const f of list) if (!isUninformative(f)) og.append(h("option", { value: f.key, text: f.label }));
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
        syncUrl(true);
      };
      $("date-from").addEventListener("change", onDate);
      $("date-to").addEventListener("change", onDate);
    } else $("date-range").hidden = true;
    document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => setTab(b.dataset.tab)));
    document.addEventListener("keydown", (e) => {
      if (e.key !== "Escape" || e.defaultPrevented) return;
      if (S.convId) { e.preventDefault(); closeConversation(true); }
      else if (S.region) { e.preventDefault(); clearRegion(); }
    });
    setupMap();
    setupTrends();
    $("tree").addEventListener("keydown", treeKey);
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
    S.listShown = 0;
    resetFilterSelects();
    update();
    syncUrl(true);
    const f = S.facets.find((x) => x.key === key);
    announce("Filter " + (f ? f.label + ": " + f.values[value] : key) + " added; " + fmt.format(S.nActive) + " conversations match");
  }
  function removeFilter(k) {
    S.filters.splice(k, 1);
    S.listShown = 0;
    resetFilterSelects();
    update();
    syncUrl(true);
    announce("Filter removed; " + fmt.format(S.nActive) + " conversations match");
    const next = $("chips").querySelector("button") || $("filter-facet");
    next.focus();
  }
  /** The facet and value selects show no filter once it has been added (or removed). */
  function resetFilterSelects() { $("filter-facet").value = ""; fillFilterValues(); }

  /** A facet that tells nothing: every conversation with a value has the same one. */
  function isUninformative(f) {
    const seen = new Set();
    if (f.kind === "category") { for (const c of f.codes) if (c >= 0) { seen.add(c); if (seen.size > 1) return false; } }
    else for (const list of f.codes) for (const c of list) { seen.add(c); if (seen.size > 1) return false; }
    return true;
  }

  function renderChips() {
    const box = $("chips");
    box.replaceChildren();
    S.filters.forEach((flt, k) => {
      const f = S.facets.find((x) => x.key === flt.key);
      const text = (f ? f.label : flt.key) + ": " + (f ? f.values[flt.value] : flt.value);
      box.append(h("span", { class: "chip", title: text }, h("span", { text }),
        h("button", { type: "button", "aria-label": "Remove filter " + text, text: "×", onclick: () => removeFilter(k) })));
    });
    const filtered = S.filters.length || S.dateFrom !== null || S.dateTo !== null || S.region;
    $("filter-count").textContent = filtered ? fmt.format(S.nActive) + " of " + fmt.format(S.n) + " conversations match" : "";
    if (S.region) box.append(h("span", { class: "chip region-chip", title: "Map selection" }, h("span", { text: "Map selection: " + fmt.format(S.nRegion) }),
      h("button", { type: "button", "aria-label": "Clear the map selection", text: "×", onclick: () => clearRegion() })));
  }

  function update() { recompute(); renderAll(); }

  function renderAll() {
    renderChips();
    $("search-count").textContent = S.searchError ? "Search failed" : S.query ? fmt.format(S.nSearch) + (S.nSearch === 1 ? " match" : " matches") : "";
    renderTree();
    renderDetails();
    drawMap();
    if (S.tab === "trends") drawTrends();
    updateViews();
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

