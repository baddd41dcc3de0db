  // ---------------------------------------------------------------- tabs and trends
  function setTab(tab) {
    S.tab = tab;
    document.querySelectorAll(".tab").forEach((b) => { b.classList.toggle("active", b.dataset.tab === tab); b.setAttribute("aria-selected", String(b.dataset.tab === tab)); });
    $("map-view").hidden = tab !== "map";
    $("trends-view").hidden = tab !== "trends";
    $("map-hint").hidden = tab !== "map";
    for (const v of VIEWS.values()) if (v._box) v._box.hidden = v.id !== tab;
    if (tab === "map") { resizeMap(); drawMap(); } else if (tab === "trends") drawTrends();
    else { const v = VIEWS.get(tab); if (v && v.show) v.show(); }
    syncUrl(true);
  }

  /** Gridline values for 0..max: 1, 2 or 5 times a power of ten, so labels are exact. */
  function niceTicks(max, share) {
    if (share) { const step = max > 0.5 ? 0.2 : max > 0.2 ? 0.1 : max > 0.1 ? 0.05 : max > 0.04 ? 0.02 : 0.01; const out = []; for (let v = 0; v <= max + 1e-9; v += step) out.push(v); if (out[out.length - 1] < max) out.push(out[out.length - 1] + step); return out; }
    const raw = Math.max(1, max / 4), p = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    const out = [];
    for (let v = 0; v < max + step; v += step) { out.push(v); if (v >= max) break; }
    return out;
  }

  function drawTrends() {
    if (S.tab !== "trends" || !S.B) return;
    const cv = $("trends"), note = $("trends-note"), legend = $("trends-legend");
    legend.replaceChildren();
    $("trend-count").setAttribute("aria-pressed", String(S.trendMode === "count"));
    $("trend-share").setAttribute("aria-pressed", String(S.trendMode === "share"));
    if (!S.T) { note.textContent = "This run has no timestamps, so there is nothing to plot over time."; cv.hidden = true; return; }
    cv.hidden = false;
    const sm = S.searchMask, R = S.region;
    const on = (i) => S.mask[i] && (!sm || sm[i]) && (!R || R[i]);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < S.n; i++) { const t = S.T[i]; if (on(i) && t === t) { if (t < lo) lo = t; if (t > hi) hi = t; } }
    const dpr = window.devicePixelRatio || 1, r = cv.getBoundingClientRect();
    cv.width = Math.round(r.width * dpr); cv.height = Math.round(r.height * dpr);
    const ctx = cv.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = r.width, H = r.height;
    ctx.clearRect(0, 0, W, H);
    if (!(lo <= hi)) { note.textContent = "No conversation with a timestamp matches the filters" + (sm ? " and the search" : "") + "."; return; }
    const DAY = 86400000, span = hi - lo;
    const step = span <= 62 * DAY ? DAY : span <= 2 * 365 * DAY ? 7 * DAY : 30.44 * DAY;
    const unit = step === DAY ? "day" : step === 7 * DAY ? "week" : "month";
    const nb = Math.max(1, Math.floor(span / step) + 1);
    // series: children of the selected topic, else top-level topics
    const parent = S.selected >= 0 && S.children.get(S.selected).length ? S.selected : -1;
    const cands = parent >= 0 ? S.children.get(parent) : S.roots;
    const series = cands.slice().sort((a, b) => S.counts[b] - S.counts[a]).filter((c) => S.counts[c] > 0).slice(0, 8);
    const idx = new Map(series.map((c, k) => [c, k]));
    const seriesLevels = [...new Set(series.map((c) => S.clusters[c].level))].map((l) => S.assign[l]);
    const data = series.map(() => new Float64Array(nb));
    const other = new Float64Array(nb), totals = new Float64Array(nb);
    let hasOther = false;
    const selA = S.selected >= 0 ? S.assign[S.clusters[S.selected].level] : null;
    for (let i = 0; i < S.n; i++) {
      const t = S.T[i];
      if (!on(i) || t !== t) continue;
      const b = Math.min(nb - 1, Math.floor((t - lo) / step));
      totals[b]++;
      if (selA && selA[i] !== S.selected) continue;
      let k;
      for (const a of seriesLevels) { k = idx.get(a[i]); if (k !== undefined) break; }
      if (k === undefined) { other[b]++; hasOther = true; } else data[k][b]++;
    }
    const share = S.trendMode === "share";
    const of = "of all conversations" + (S.nActive < S.n || sm || R ? " that match" : "") + " in that " + unit;
    note.textContent = (share ? "Share " + of : "Conversations per " + unit) +
      (parent >= 0 ? " · “" + S.clusters[parent].name + "” by subtopic" : S.selected >= 0 ? " · “" + S.clusters[S.selected].name + "”" : " · by top-level topic") +
      (S.nActive < S.n ? " · filtered" : "") + (sm ? " · search “" + $("search").value.trim() + "”" : "") + ".";
    const lines = data.map((d, k) => ({ d, color: S.color[series[k]], name: S.clusters[series[k]].name, key: S.clusters[series[k]].id }));
    if (hasOther) lines.push({ d: other, color: NOISE, name: parent >= 0 || S.selected < 0 ? "Other" : S.clusters[S.selected].name, key: "__other" });
    for (const l of lines) l.v = share ? Array.from(l.d, (v, b) => (totals[b] ? v / totals[b] : 0)) : Array.from(l.d);
    const visible = lines.filter((l) => !S.hiddenSeries.has(l.key));
    const max = Math.max(share ? 0.01 : 1, ...visible.map((l) => Math.max(...l.v)));
    const ticks = niceTicks(max, share), top = ticks[ticks.length - 1];
    const label = (v) => (share ? (v * 100).toFixed(top < 0.05 ? 1 : 0) + "%" : fmt.format(v));
    const pad = { l: 52, r: 44, t: 16, b: 34 };
    const px = (b) => pad.l + (nb === 1 ? (W - pad.l - pad.r) / 2 : b / (nb - 1) * (W - pad.l - pad.r));
    const py = (v) => H - pad.b - v / top * (H - pad.t - pad.b);
    ctx.strokeStyle = cssVar("--border"); ctx.fillStyle = cssVar("--muted"); ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const v of ticks) {
      const y = py(v);
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(W - pad.r, y); ctx.stroke();
      ctx.fillText(label(v), pad.l - 6, y);
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const day = (b) => new Date(lo + b * step).toISOString().slice(0, 10);
    const nt = Math.max(2, Math.min(nb, Math.floor((W - pad.l - pad.r) / 90)));
    const tickBins = [];
    for (let g = 0; g < nt; g++) tickBins.push(Math.round(g * (nb - 1) / Math.max(1, nt - 1)));
    const shown = [...new Set(tickBins)];
    // the last bin is always labelled; a tick too close before it gives way
    while (shown.length > 1 && px(shown[shown.length - 1]) - px(shown[shown.length - 2]) < 76) shown.splice(shown.length - 2, 1);
    for (const b of shown) ctx.fillText(day(b), px(b), H - pad.b + 8);
    M.trendTicks = shown;
    for (const l of visible) {
      ctx.strokeStyle = l.color; ctx.lineWidth = 2; ctx.beginPath();
      for (let b = 0; b < nb; b++) { const x = px(b), y = py(l.v[b]); if (b) ctx.lineTo(x, y); else ctx.moveTo(x, y); }
      ctx.stroke();
      if (nb === 1) { ctx.fillStyle = l.color; ctx.beginPath(); ctx.arc(px(0), py(l.v[0]), 3, 0, Math.PI * 2); ctx.fill(); }
    }
    for (const l of lines) {
      const off = S.hiddenSeries.has(l.key);
      legend.append(h("button", { class: "legend-item" + (off ? " off" : ""), type: "button", title: (off ? "Show " : "Hide ") + l.name, "aria-pressed": String(!off), "data-series": l.key,
        onclick: () => { if (off) S.hiddenSeries.delete(l.key); else S.hiddenSeries.add(l.key); drawTrends(); } },
      h("span", { class: "swatch", style: { background: l.color } }), h("span", { text: clip(l.name, 40) })));
    }
    cv.setAttribute("aria-label", note.textContent);
    M.trend = { nb, px, lines: visible, day, label, totals, unit, pad, W, H };
  }

  function setupTrends() {
    const cv = $("trends"), tip = $("trends-tip");
    cv.addEventListener("pointermove", (e) => {
      const T = M.trend;
      if (!T) return;
      const r = cv.getBoundingClientRect(), x = e.clientX - r.left;
      let b = T.nb === 1 ? 0 : Math.round((x - T.pad.l) / (T.W - T.pad.l - T.pad.r) * (T.nb - 1));
      b = Math.max(0, Math.min(T.nb - 1, b));
      tip.replaceChildren(h("div", { class: "tt-topic", text: T.unit + " of " + T.day(b) + " · " + fmt.format(T.totals[b]) + " in all" }),
        ...T.lines.map((l) => h("div", { class: "tt-row" }, h("span", { class: "swatch", style: { background: l.color } }), " " + clip(l.name, 36) + ": " + T.label(l.v[b]))));
      tip.hidden = false;
      tip.dataset.bin = String(b);
      tip.style.left = Math.max(4, Math.min(T.px(b) + 12, T.W - 260)) + "px";
      tip.style.top = "24px";
    });
    cv.addEventListener("pointerleave", () => { tip.hidden = true; });
    $("trend-count").addEventListener("click", () => { S.trendMode = "count"; drawTrends(); syncUrl(true); });
    $("trend-share").addEventListener("click", () => { S.trendMode = "share"; drawTrends(); syncUrl(true); });
  }
