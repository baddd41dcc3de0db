  // ---------------------------------------------------------------- compare view (kiku compare)
  // Per topic: share in A and B, the change with its 95% interval as a bar, growth/decline
  // (BH-corrected) and new/vanished flags. Sortable by clicking a column head (or Enter on it).
  // Data: GET api/living/compare (served runs only; the export has no server to ask).
  const CMP = { data: null, sort: "change", desc: true, pair: -1, by: null };

  // A tab of the centre panel (views.js); served runs only, so the export has no Compare tab.
  if (source.canExport) {
    registerView({ id: "compare", label: "Compare",
      mount(box) { box.classList.add("compare-wrap"); },
      show() { if (!CMP.data) loadCompare(CMP.by); else renderCompare(); } });
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
    const bar = h("div", { class: "compare-controls" }, h("label", { text: "Compare with " }, by));
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
