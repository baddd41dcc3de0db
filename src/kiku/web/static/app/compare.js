  // ---------------------------------------------------------------- compare view (kiku compare)
  // Per topic: share in A and B, the change with its 95% interval as a bar, growth/decline
  // (BH-corrected) and new/vanished flags. Sortable by clicking a column head (or Enter on it).
  // Data: GET api/living/compare (served runs only; the export has no server to ask).
  // Second mode, "two topics": topic A against topic B of this run (GET api/living/compare-topics):
  // size and share with a Wilson 95% interval, facet value shares with the difference (largest
  // first), c-TF-IDF keyword weights. A and B are in the URL (ca=, cb=; views.js, S.cmpPair).
  const CMP = { data: null, sort: "change", desc: true, pair: -1, by: null, mode: "changes", topics: null };

  // A tab of the centre panel (views.js); served runs only, so the export has no Compare tab.
  if (source.canExport) {
    registerView({ id: "compare", label: "Compare",
      mount(box) { box.classList.add("compare-wrap"); },
      show() {
        if (S.cmpPair) { CMP.mode = "topics"; loadTopics(S.cmpPair[0], S.cmpPair[1]); }
        else if (CMP.mode === "topics") loadTopics(...defaultPair());
        else if (!CMP.data) loadCompare(CMP.by); else renderCompare();
      } });
  }

  function modeSelect() {
    const mode = h("select", { id: "compare-mode", "aria-label": "What to compare" });
    for (const [v, label] of [["changes", "All topics: change in share"], ["topics", "Two topics"]]) mode.append(h("option", { value: v, text: label, selected: v === CMP.mode }));
    mode.addEventListener("change", () => {
      CMP.mode = mode.value;
      if (CMP.mode === "topics") loadTopics(...defaultPair());
      else { S.cmpPair = null; syncUrl(true); if (!CMP.data) loadCompare(CMP.by); else renderCompare(); }
      const again = $("compare-mode"); if (again) again.focus();
    });
    return mode;
  }

  // ---- two topics: defaults are the selected topic (else the largest) and its largest sibling
  function defaultPair() {
    const real = (i) => !S.clusters[i].is_noise;
    const bySize = (list) => list.filter(real).sort((x, y) => S.clusters[y].size - S.clusters[x].size);
    let a = S.selected >= 0 && real(S.selected) ? S.selected : bySize(S.roots.slice())[0];
    if (a === undefined) a = 0;
    const parent = S.clusters[a].parent == null ? undefined : S.byId.get(S.clusters[a].parent);
    const siblings = bySize((parent === undefined ? S.roots : S.children.get(parent)).filter((i) => i !== a));
    const sameLevel = bySize(S.clusters.map((_, i) => i).filter((i) => i !== a && S.clusters[i].level === S.clusters[a].level));
    const b = siblings[0] !== undefined ? siblings[0] : sameLevel[0] !== undefined ? sameLevel[0] : a;
    return [S.clusters[a].id, S.clusters[b].id];
  }

  function topicOptions(select, chosen) {
    const walk = (list, depth) => {
      for (const i of list.slice().sort((x, y) => S.clusters[y].size - S.clusters[x].size)) {
        const c = S.clusters[i];
        select.append(h("option", { value: c.id, text: "\u2003".repeat(depth) + c.name + " (" + fmt.format(c.size) + ")", selected: c.id === chosen }));
        walk(S.children.get(i) || [], depth + 1);
      }
    };
    walk(S.roots, 0);
  }

  async function loadTopics(a, b) {
    const view = $("compare-view");
    S.cmpPair = [a, b]; syncUrl(true);
    view.replaceChildren(topicControls(a, b), h("p", { class: "muted", text: "Comparing…" }));
    try {
      const res = await fetch("api/living/compare-topics?a=" + encodeURIComponent(a) + "&b=" + encodeURIComponent(b), { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const body = await res.json();
      if (!res.ok) throw new Error(body.detail || "HTTP " + res.status);
      CMP.topics = body;
    } catch (err) {
      CMP.topics = null;
      view.replaceChildren(topicControls(a, b), h("p", { class: "muted compare-error", text: "Cannot compare these topics: " + err.message }));
      return;
    }
    renderTopics();
  }

  function topicControls(a, b) {
    const pick = (id, label, chosen) => {
      const sel = h("select", { id, "aria-label": label });
      topicOptions(sel, chosen);
      sel.addEventListener("change", async () => {
        const other = $(id === "compare-topic-a" ? "compare-topic-b" : "compare-topic-a").value;
        await (id === "compare-topic-a" ? loadTopics(sel.value, other) : loadTopics(other, sel.value));
        const again = $(id); if (again) again.focus();
      });
      return h("label", { text: label + " " }, sel);
    };
    return h("div", { class: "compare-controls" }, modeSelect(), pick("compare-topic-a", "Topic A", a), pick("compare-topic-b", "Topic B", b));
  }

  const pts = (d) => (d >= 0 ? "+" : "\u2212") + Math.abs(d * 100).toFixed(1);

  function renderTopics() {
    const T = CMP.topics, view = $("compare-view");
    if (!T) return;
    const hi = Math.max(T.a.high, T.b.high, 1e-6);
    const card = (side, which) => h("div", { class: "cmp-topic cmp-topic-" + which, "data-id": side.cluster_id },
      h("div", { class: "cmp-topic-name" }, h("span", { class: "cmp-side", text: which.toUpperCase() + " " }), h("button", { type: "button", class: "linkish", text: side.name,
        title: "Open this topic", onclick: () => { const i = S.byId.get(side.cluster_id); if (i !== undefined) selectCluster(i); } })),
      h("div", { class: "cmp-topic-share num", text: fmt.format(side.size) + " conversations · " + pct(side.share) + " of " + fmt.format(T.total) +
        " (95% interval " + pct(side.low) + "–" + pct(side.high) + ")" }),
      h("div", { class: "cmp-track", role: "img", "aria-label": "share " + pct(side.share) + ", 95% interval " + pct(side.low) + " to " + pct(side.high) },
        h("div", { class: "cmp-interval", style: { left: (100 * side.low / hi) + "%", width: Math.max(0.5, 100 * (side.high - side.low) / hi) + "%" } }),
        h("div", { class: "cmp-bar share", style: { left: "0%", width: (100 * side.share / hi) + "%" } })));
    const facetBody = h("tbody");
    const span = Math.max(1e-6, ...T.facets.map((d) => Math.abs(d.difference)));
    for (const d of T.facets) {
      const track = h("div", { class: "cmp-track" }, h("div", { class: "cmp-zero" }),
        h("div", { class: "cmp-bar " + (d.difference >= 0 ? "up" : "down"), style: { left: Math.min(50, 50 + 50 * d.difference / span) + "%", width: (50 * Math.abs(d.difference) / span) + "%" } }));
      facetBody.append(h("tr", { class: "cmp-facet-row", "data-facet": d.key },
        h("td", { text: d.label }), h("td", { text: d.value }), h("td", { class: "num", text: pct(d.share_a) }), h("td", { class: "num", text: pct(d.share_b) }),
        h("td", { class: "cmp-change" }, track, h("span", { class: "num", text: pts(d.difference) }))));
    }
    const facets = T.facets.length
      ? h("table", { id: "compare-facets", class: "compare-table" }, h("caption", { text: "Facet values: share of A's and of B's conversations, difference B − A in points (largest first)" }),
          h("thead", null, h("tr", null, ...["Facet", "Value", "A", "B", "B − A"].map((t) => h("th", { scope: "col", text: t })))), facetBody)
      : h("p", { class: "muted", text: "No facet tells these topics apart (this run has no facet with two values or more)." });
    const bars = (list, which) => {
      const max = Math.max(1e-9, ...list.map((k) => k.weight));
      const box = h("div", { class: "cmp-keywords cmp-keywords-" + which }, h("div", { class: "facet-name", text: "Keywords of " + which.toUpperCase() }));
      if (!list.length) box.append(h("p", { class: "muted", text: "No keywords (only stop words or empty texts)." }));
      for (const k of list) box.append(h("div", { class: "dist-row cmp-keyword", "aria-label": k.term + ": weight " + k.weight.toFixed(3) },
        h("span", { class: "dist-label", text: k.term }), h("span", { class: "dist-bar" }, h("span", { style: { width: (100 * k.weight / max).toFixed(1) + "%" } })),
        h("span", { class: "dist-val", text: k.weight.toFixed(3) })));
      return box;
    };
    view.replaceChildren(topicControls(T.a.cluster_id, T.b.cluster_id),
      h("div", { class: "cmp-topics" }, card(T.a, "a"), card(T.b, "b")),
      facets,
      h("div", { class: "facet-name", text: "Keywords: c-TF-IDF weight of each word or phrase in the opening requests, computed over these two topics" }),
      h("div", { class: "cmp-topics" }, bars(T.keywords_a, "a"), bars(T.keywords_b, "b")));
  }

  async function loadCompare(by) {
    const view = $("compare-view");
    view.replaceChildren(h("p", { class: "muted", text: "Comparing…" }));
    try {
      const res = await fetch("api/living/compare" + (by ? "?by=" + encodeURIComponent(by) : ""), { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const body = await res.json();
      if (!res.ok) throw new Error(body.detail || "HTTP " + res.status);
      CMP.data = body; CMP.by = body.by; CMP.pair = body.comparisons.length - 1;
    } catch (err) {
      CMP.data = null;
      view.replaceChildren(compareControls(), h("p", { class: "muted compare-error", text: "Nothing to compare: " + err.message }));
      return;
    }
    renderCompare();
  }

  function compareControls() {
    const by = h("select", { id: "compare-by", "aria-label": "Compare against" });
    for (const [v, label] of [["base", "base run"], ["day", "previous day"], ["week", "previous week"], ["month", "previous month"]]) {
      by.append(h("option", { value: v, text: label, selected: v === CMP.by }));
    }
    by.addEventListener("change", () => loadCompare(by.value));
    const bar = h("div", { class: "compare-controls" }, modeSelect(), h("label", { text: "Compare with " }, by));
    if (CMP.data && CMP.data.comparisons.length > 1) {
      const pick = h("select", { id: "compare-pair", "aria-label": "Periods" });
      CMP.data.comparisons.forEach((c, i) => pick.append(h("option", { value: i, text: c.label_a + " → " + c.label_b, selected: i === CMP.pair })));
      pick.addEventListener("change", () => { CMP.pair = Number(pick.value); renderCompare(); });
      bar.append(pick);
    }
    return bar;
  }

  const CMP_COLUMNS = [["name", "Topic"], ["share_a", "Share A"], ["share_b", "Share B"], ["change", "Change (95% interval)"], ["flag", ""]];

  function sortedRows(rows) {
    const key = CMP.sort, sign = CMP.desc ? -1 : 1;
    const value = (r) => (key === "change" ? Math.abs(r.change) : key === "flag" ? (r.direction ? 2 : r.status ? 1 : 0) : r[key]);
    return rows.slice().sort((a, b) => {
      const x = value(a), y = value(b);
      return (typeof x === "string" ? x.localeCompare(y) : x - y) * sign || a.cluster_id.localeCompare(b.cluster_id);
    });
  }

  function renderCompare() {
    const view = $("compare-view");
    const c = CMP.data && CMP.data.comparisons[CMP.pair];
    if (!c) return;
    const rows = sortedRows(c.rows);
    const span = Math.max(1e-6, ...rows.map((r) => Math.max(Math.abs(r.low), Math.abs(r.high))));
    const head = h("tr");
    for (const [key, label] of CMP_COLUMNS) {
      const th = h("th", { scope: "col", tabindex: "0", "data-key": key, "aria-sort": CMP.sort === key ? (CMP.desc ? "descending" : "ascending") : "none",
        text: label + (CMP.sort === key ? (CMP.desc ? " ↓" : " ↑") : "") });
      const sortBy = () => { CMP.desc = CMP.sort === key ? !CMP.desc : true; CMP.sort = key; renderCompare(); const again = $("compare-view").querySelector('th[data-key="' + key + '"]'); if (again) again.focus(); };
      th.addEventListener("click", sortBy);
      th.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(); } });
      head.append(th);
    }
    const body = h("tbody");
    for (const r of rows) {
      const flag = r.is_noise ? "not a topic" : [r.direction === "growth" ? "▲ growth" : r.direction === "decline" ? "▼ decline" : "", r.status].filter(Boolean).join(" · ");
      const track = h("div", { class: "cmp-track", title: (r.change * 100).toFixed(1) + " points [" + (r.low * 100).toFixed(1) + ", " + (r.high * 100).toFixed(1) + "]" });
      const at = (v) => 50 + (v / span) * 50;
      track.append(h("div", { class: "cmp-zero" }));
      track.append(h("div", { class: "cmp-interval", style: { left: at(r.low) + "%", width: Math.max(0.5, at(r.high) - at(r.low)) + "%" } }));
      track.append(h("div", { class: "cmp-bar " + (r.change >= 0 ? "up" : "down"), style: { left: Math.min(50, at(r.change)) + "%", width: Math.abs(at(r.change) - 50) + "%" } }));
      const tr = h("tr", { class: "cmp-row" + (r.direction ? " " + r.direction : "") + (r.is_noise ? " noise" : ""), "data-id": r.cluster_id, tabindex: "0" },
        h("td", { text: r.name }), h("td", { class: "num", text: pct(r.share_a) }), h("td", { class: "num", text: pct(r.share_b) }),
        h("td", { class: "cmp-change" }, track, h("span", { class: "num", text: (r.change >= 0 ? "+" : "") + (r.change * 100).toFixed(1) })),
        h("td", { class: "cmp-flag", text: flag }));
      const open = () => { const i = S.byId.get(r.cluster_id); if (i !== undefined) selectCluster(i); };
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
      body.append(tr);
    }
    const caption = c.label_a + " (" + fmt.format(c.total_a) + ") → " + c.label_b + " (" + fmt.format(c.total_b) + "), level " + c.level +
      "; flags at a 5% false discovery rate (Benjamini-Hochberg)";
    view.replaceChildren(compareControls(), h("table", { id: "compare-table", class: "compare-table" }, h("caption", { text: caption }), h("thead", null, head), body));
  }
