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

