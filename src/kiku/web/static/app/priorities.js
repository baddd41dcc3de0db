  // ---------------------------------------------------------------- priorities view
  // Topics ranked by impact for a joined outcome (kiku join / kiku report): a sortable table with
  // each topic's rate, its 95% interval drawn against the baseline, the flag and the gap mix.
  // A view of the registry (views.js: the "Priorities" tab, `tab=priorities` in the URL).
  // Data: /api/priorities (served, web/routes_priorities.py) or the export's `kiku-extra-priorities`
  // block (every choice precomputed).
  const P = { options: null, report: null, outcome: "", weight: "", gap: "", level: "all",
    sort: { key: "rank", dir: 1 }, error: null, box: null };
  const SVG_NS = "http://www.w3.org/2000/svg";
  const GAP_COLORS = ["#E45756", "#4C78A8", "#9aa3b2", "#F58518", "#54A24B", "#B279A2"];

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  async function priorityJSON(path) {
    const res = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.detail || path + ": HTTP " + res.status);
    return body;
  }

  // In the export, every choice's report is in the `kiku-extra-priorities` block
  // (routes_priorities.export_data), inflated the first time the view opens.
  let priorityExport = null;
  const exported = () => (priorityExport = priorityExport || source.extra("priorities").then((x) => x || { outcomes: [], weights: [], gaps: [], reports: {} }));
  const prioritySource = {
    options() {
      return embedded ? exported() : priorityJSON("api/priorities/options");
    },
    async report(outcome, weight, gap) {
      if (embedded) {
        const r = ((await exported()).reports || {})[outcome + "|" + (weight || "-") + "|" + (gap || "-")];
        if (!r) throw new Error("This combination was not included in the export; open the run with kiku ui to compute it.");
        if (r.error) throw new Error(r.error);
        return r;
      }
      const q = new URLSearchParams({ outcome });
      if (weight) q.set("weight", weight);
      if (gap) q.set("gap", gap);
      return priorityJSON("api/priorities?" + q.toString());
    },
  };

  // A tab of the centre panel (views.js): mounted once, its options loaded the first time it opens.
  registerView({
    id: "priorities", label: "Priorities",
    mount(box) {
      P.box = box;
      box.classList.add("priorities-view");
      box.setAttribute("aria-label", "Priorities: topics ranked by impact for a joined outcome");
      if (window.kiku) window.kiku.priorities = { open: () => setTab("priorities"), state: P };
    },
    show() { openPriorities(); },
    update() { markSelectedPriority(); },
  });

  async function openPriorities() {
    if (!P.options) {
      P.options = { outcomes: [], weights: [], gaps: [], loading: true };
      renderPriorities();
      try { P.options = await prioritySource.options(); } catch (err) { P.options = { outcomes: [], weights: [], gaps: [], problem: err.message }; }
      if (P.options.outcomes.length) P.outcome = P.options.outcomes[0].value;
      if (P.outcome) await loadPriorityReport(); else renderPriorities();
    } else renderPriorities();
  }

  /** The row of the topic selected in the tree is marked (aria-current) while the view is open. */
  function markSelectedPriority() {
    if (!P.box) return;
    const id = S.selected >= 0 ? S.clusters[S.selected].id : null;
    for (const row of P.box.querySelectorAll("#priorities-table tbody tr")) {
      if (row.dataset.cluster === id) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
    }
  }

  async function loadPriorityReport() {
    P.error = null;
    try { P.report = await prioritySource.report(P.outcome, P.weight, P.gap); } catch (err) { P.report = null; P.error = err.message; }
    renderPriorities();
  }

  function prioritySelect(id, label, choices, value, onChange) {
    const sel = h("select", { id, "aria-label": label });
    for (const [v, text] of choices) sel.append(h("option", { value: v, text, selected: v === value }));
    sel.addEventListener("change", () => onChange(sel.value));
    return h("label", { class: "prio-control" }, label + " ", sel);
  }

  function priorityControls() {
    const o = P.options;
    const bar = h("div", { class: "prio-controls" });
    bar.append(prioritySelect("prio-outcome", "Outcome", o.outcomes.map((c) => [c.value, c.label]), P.outcome,
      (v) => { P.outcome = v; loadPriorityReport(); }));
    bar.append(prioritySelect("prio-weight", "Weight", [["", "volume (conversations)"], ...o.weights.map((w) => [w, w + " summed"])], P.weight,
      (v) => { P.weight = v; loadPriorityReport(); }));
    if (o.gaps.length) {
      bar.append(prioritySelect("prio-gap", "Gap type", [["", "all conversations"], ...o.gaps.map((g) => [g, g])], P.gap,
        (v) => { P.gap = v; loadPriorityReport(); }));
    }
    const levels = P.report ? [...new Set(P.report.rows.map((r) => r.level))].sort((a, b) => b - a) : [];
    bar.append(prioritySelect("prio-level", "Level", [["all", "all levels"], ...levels.map((l) => [String(l), "level " + l])], P.level,
      (v) => { P.level = v; renderPriorities(); }));
    return bar;
  }

  const PRIORITY_COLUMNS = [
    ["rank", "Rank"], ["level", "Level"], ["cluster_name", "Topic"], ["n", "n"], ["rate", "Rate · 95% interval"],
    ["impact", "Impact"], ["flag", "Flag"], ["gap", "Gap mix"],
  ];

  function sortedPriorityRows() {
    const { key, dir } = P.sort;
    let rows = P.report.rows.slice();
    if (P.level !== "all") rows = rows.filter((r) => String(r.level) === P.level);
    const value = (r) => (key === "flag" ? (r.flag || (r.status === "judged" ? "" : "~" + r.status)) : key === "gap" ? (r["gap_" + (P.report.gap_labels[0] || "")] ?? null) : r[key]);
    rows.sort((a, b) => {
      const va = value(a), vb = value(b);
      if (va == null && vb == null) return 0;
      if (va == null) return 1;
      if (vb == null) return -1;
      if (typeof va === "string") return dir * va.localeCompare(vb);
      return dir * (va - vb);
    });
    return rows;
  }

  function intervalScale(report) {
    if (report.measure === "proportion") return [0, 1];
    let lo = report.baseline, hi = report.baseline;
    for (const r of report.rows) {
      if (r.ci_low != null) lo = Math.min(lo, r.ci_low);
      if (r.ci_high != null) hi = Math.max(hi, r.ci_high);
    }
    const pad = (hi - lo) * 0.05 || 1;
    return [lo - pad, hi + pad];
  }

  function drawInterval(row, report, scale) {
    const W = 96, H = 18, x = (v) => 4 + (W - 8) * (v - scale[0]) / (scale[1] - scale[0]);
    const g = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "prio-ci", role: "img",
      "aria-label": "95% interval " + fmtRate(row.ci_low, report) + " to " + fmtRate(row.ci_high, report) });
    g.append(svg("line", { x1: 4, x2: W - 4, y1: H / 2, y2: H / 2, class: "prio-axis" }));
    g.append(svg("line", { x1: x(report.baseline), x2: x(report.baseline), y1: 1, y2: H - 1, class: "prio-baseline" }));
    if (row.ci_low != null && row.ci_high != null) {
      const cls = "prio-range " + (row.flag || (row.status === "judged" ? "plain" : "small"));
      g.append(svg("line", { x1: x(row.ci_low), x2: x(row.ci_high), y1: H / 2, y2: H / 2, class: cls, "data-low": row.ci_low, "data-high": row.ci_high }));
      if (row.rate != null) g.append(svg("circle", { cx: x(row.rate), cy: H / 2, r: 3.5, class: cls }));
    }
    return g;
  }

  function drawGapMix(row, labels) {
    const W = 56, H = 12;
    const g = svg("svg", { width: W, height: H, class: "prio-gapmix", role: "img" });
    let at = 0;
    const parts = [];
    labels.forEach((label, k) => {
      const share = row["gap_" + label] || 0;
      parts.push(label + " " + Math.round(share * 100) + "%");
      if (share > 0) g.append(svg("rect", { x: at * W, y: 0, width: share * W, height: H, fill: GAP_COLORS[k % GAP_COLORS.length] }));
      at += share;
    });
    const title = svg("title", {});
    title.textContent = parts.join(" · ");
    g.append(title);
    g.setAttribute("aria-label", parts.join(", "));
    return g;
  }

  function fmtRate(v, report) {
    if (v == null) return "–";
    return report.measure === "proportion" ? (v * 100).toFixed(0) + "%" : Number(v).toPrecision(3);
  }

  function renderPriorities() {
    const view = P.box;
    if (!view) return;
    view.replaceChildren();
    view.append(h("div", { class: "prio-head" }, h("h2", { text: "Priorities" })));
    const o = P.options;
    if (o && o.loading) { view.append(h("p", { class: "prio-loading muted", text: "Loading…" })); return; }
    if (!o || !o.outcomes.length) {
      view.append(h("p", { class: "prio-empty", text: (o && o.problem ? o.problem + " " : "") +
        "No outcomes joined to this run yet. Join feedback by conversation id with `kiku join RUN feedback.csv`, then reopen this view." }));
      return;
    }
    view.append(priorityControls());
    if (P.error) { view.append(h("p", { class: "prio-error", text: P.error })); return; }
    const R = P.report;
    if (!R) return;
    const flagged = R.rows.filter((r) => r.flag === "under").length;
    const small = R.rows.filter((r) => r.status !== "judged").length;
    view.append(h("p", { class: "prio-summary" },
      `Baseline ${fmtRate(R.baseline, R)} over ${fmt.format(R.conversations)} conversations` + (R.gap ? ` of gap type ${R.gap}` : "") +
      ` · ${flagged} topic${flagged === 1 ? "" : "s"} significantly under · ${small} too small to judge. Impact = ` +
      (R.weight ? `${R.weight} summed` : "conversations") + " × shortfall against the baseline."));
    view.append(h("p", { class: "prio-method muted", text: R.method }));
    const scale = intervalScale(R);
    const table = h("table", { id: "priorities-table", class: "prio-table" });
    const tr = h("tr");
    for (const [key, label] of PRIORITY_COLUMNS) {
      if (key === "gap" && !R.gap_labels.length) continue;
      const active = P.sort.key === key;
      const th = h("th", { scope: "col", "data-key": key, class: active ? "sorted" : null, "aria-sort": active ? (P.sort.dir > 0 ? "ascending" : "descending") : "none" },
        h("button", { type: "button", class: "prio-sort", text: label + (active ? (P.sort.dir > 0 ? " ↑" : " ↓") : "") }));
      th.addEventListener("click", () => {
        P.sort = P.sort.key === key ? { key, dir: -P.sort.dir } : { key, dir: key === "rank" || key === "cluster_name" || key === "level" ? 1 : -1 };
        renderPriorities();
      });
      tr.append(th);
    }
    table.append(h("thead", null, tr));
    const body = h("tbody");
    for (const r of sortedPriorityRows()) {
      const row = h("tr", { "data-cluster": r.cluster_id, "data-flag": r.flag || "", "data-status": r.status, class: r.flag ? "flag-" + r.flag : r.status !== "judged" ? "too-small" : null });
      row.append(h("td", { class: "num", text: r.rank == null ? "–" : r.rank }));
      row.append(h("td", { class: "num", text: r.level }));
      const name = h("button", { type: "button", class: "prio-topic", text: r.cluster_name, title: "Show this topic" });
      name.addEventListener("click", () => {
        const i = S.byId.get(r.cluster_id);
        if (i !== undefined) { setTab("map"); selectCluster(i); }
      });
      row.append(h("td", { class: "prio-topic-cell" }, name));
      row.append(h("td", { class: "num", text: fmt.format(r.n) }));
      row.append(h("td", { class: "prio-rate" }, h("div", { class: "prio-rate-cell" },
        h("span", { class: "prio-rate-text" }, h("span", { class: "num", text: fmtRate(r.rate, R) }),
          h("span", { class: "muted prio-ci-text", text: r.ci_low == null ? "" : fmtRate(r.ci_low, R) + "–" + fmtRate(r.ci_high, R) })),
        drawInterval(r, R, scale))));
      row.append(h("td", { class: "num", text: r.impact == null ? "–" : Number(r.impact).toFixed(1) }));
      row.append(h("td", { class: "prio-flag", text: r.flag ? (r.flag === "under" ? "▼ under" : "▲ over") : r.status === "judged" ? "" : r.status }));
      if (R.gap_labels.length) row.append(h("td", null, drawGapMix(r, R.gap_labels)));
      body.append(row);
    }
    table.append(body);
    view.append(h("div", { class: "prio-table-wrap" }, table));
    markSelectedPriority();
    if (R.gap_labels.length) {
      const legend = h("div", { class: "prio-legend" });
      R.gap_labels.forEach((label, k) => legend.append(h("span", null, h("i", { style: { background: GAP_COLORS[k % GAP_COLORS.length] } }), label)));
      view.append(legend);
    }
  }
