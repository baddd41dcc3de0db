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

