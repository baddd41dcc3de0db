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

  // Pointer input: one pointer drags (pans), two pinch (zoom), a short press without moving is a
  // click (opens the conversation under it); shift-drag, or a drag in box mode, selects a region.
  // Touch never shows the hover tooltip (it would stick after a tap).
  function setupMap() {
    const cv = $("map");
    resizeMap();
    const pointers = new Map();
    let drag = null, pinch = null;
    const local = (e) => { const r = cv.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    cv.addEventListener("pointerdown", (e) => {
      cv.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, local(e));
      $("tooltip").hidden = true;
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        pinch = { d: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1, k: M.k };
        drag = null;
        return;
      }
      const [x, y] = local(e);
      const box = e.shiftKey || M.boxMode;
      drag = { x, y, sx: e.clientX, sy: e.clientY, cx: M.cx, cy: M.cy, moved: false, box, type: e.pointerType };
      if (!box) cv.classList.add("dragging");
    });
    cv.addEventListener("pointermove", (e) => {
      if (pointers.has(e.pointerId)) pointers.set(e.pointerId, local(e));
      if (pinch && pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        const d = Math.hypot(a[0] - b[0], a[1] - b[1]) || 1;
        zoomAt((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (pinch.k * d / pinch.d) / M.k);
        return;
      }
      if (drag) {
        const dx = e.clientX - drag.sx, dy = e.clientY - drag.sy;
        if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
        if (drag.box) { M.boxDraw = [drag.x, drag.y, drag.x + dx, drag.y + dy]; scheduleDraw(); }
        else { M.cx = drag.cx - dx / M.k; M.cy = drag.cy + dy / M.k; scheduleDraw(); }
        return;
      }
      if (e.pointerType === "mouse") hoverMap(e);
    });
    const end = (e) => {
      pointers.delete(e.pointerId);
      cv.classList.remove("dragging");
      if (pinch) { if (pointers.size < 2) { pinch = null; drag = null; syncUrlSoon(); } return; }
      if (!drag) return;
      const d = drag;
      drag = null;
      if (e.type === "pointercancel") { M.boxDraw = null; scheduleDraw(); return; }
      if (d.box && d.moved) { const b = M.boxDraw; M.boxDraw = null; selectBox(b); return; }
      M.boxDraw = null;
      if (!d.moved) clickMap(e); else syncUrlSoon();
    };
    cv.addEventListener("pointerup", end);
    cv.addEventListener("pointercancel", end);
    cv.addEventListener("mouseleave", () => { $("tooltip").hidden = true; if (M.hover >= 0) { M.hover = -1; scheduleDraw(); } });
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = cv.getBoundingClientRect();
      zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * 0.0015));
      syncUrlSoon();
    }, { passive: false });
    $("zoom-in").addEventListener("click", () => { zoomAt(M.w / 2, M.h / 2, 1.5); syncUrlSoon(); });
    $("zoom-out").addEventListener("click", () => { zoomAt(M.w / 2, M.h / 2, 1 / 1.5); syncUrlSoon(); });
    $("zoom-reset").addEventListener("click", () => { fitMap(); drawMap(); syncUrlSoon(); });
    $("box-select").addEventListener("click", () => {
      M.boxMode = !M.boxMode;
      $("box-select").setAttribute("aria-pressed", String(M.boxMode));
      cv.classList.toggle("boxing", M.boxMode);
      announce(M.boxMode ? "Region selection on: drag a box on the map" : "Region selection off");
    });
  }

  /** Select the conversations inside a screen box (x0, y0, x1, y1) of the map. */
  function selectBox(b) {
    const [x0, x1] = [Math.min(b[0], b[2]), Math.max(b[0], b[2])], [y0, y1] = [Math.min(b[1], b[3]), Math.max(b[1], b[3])];
    const R = new Uint8Array(S.n);
    let k = 0;
    for (let i = 0; i < S.n; i++) {
      const x = toScreenX(S.X[i]), y = toScreenY(S.Y[i]);
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1) { R[i] = 1; k++; }
    }
    if (!k) { clearRegion(); return; }
    S.region = R;
    S.listShown = 0;
    if (M.boxMode) $("box-select").click();
    recompute(); renderAll();
    announce("Map selection: " + fmt.format(S.nRegion) + " conversations");
  }
  function clearRegion() { if (!S.region) return; S.region = null; S.nRegion = 0; S.listShown = 0; recompute(); renderAll(); announce("Map selection cleared"); }

  function resizeMap() {
    const cv = $("map"), r = cv.parentElement.getBoundingClientRect();
    M.dpr = window.devicePixelRatio || 1;
    M.w = Math.max(10, r.width); M.h = Math.max(10, r.height);
    cv.width = Math.round(M.w * M.dpr); cv.height = Math.round(M.h * M.dpr);
  }

  /** The middle ~98% of the points (1st to 99th percentile of x and y), so outliers do not shrink the view. */
  function robustBounds() {
    if (S.n < 50) return M.bounds;
    const q = (arr) => {
      const step = Math.max(1, Math.floor(S.n / 20000)), sample = [];
      for (let i = 0; i < S.n; i += step) sample.push(arr[i]);
      sample.sort((a, b) => a - b);
      return [sample[Math.floor(sample.length * 0.01)], sample[Math.min(sample.length - 1, Math.floor(sample.length * 0.99))]];
    };
    const [x0, x1] = q(S.X), [y0, y1] = q(S.Y);
    const px = (x1 - x0) * 0.03, py = (y1 - y0) * 0.03;
    return { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py };
  }

  function fitMap() {
    const b = M.fit || (M.fit = robustBounds());
    // keep the points clear of the legend at the bottom of the map
    const legend = $("legend"), lh = legend ? legend.offsetHeight + 12 : 0;
    M.k = 0.94 * Math.min(M.w / Math.max(1e-9, b.x1 - b.x0), Math.max(40, M.h - lh) / Math.max(1e-9, b.y1 - b.y0));
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

  /** A click (or tap) on a point opens that conversation and selects its topic: the top-level
   *  topic when zoomed out, the base topic when zoomed in. A click on empty map clears the selection. */
  function clickMap(e) {
    const r = $("map").getBoundingClientRect();
    const i = nearest(e.clientX - r.left, e.clientY - r.top, e.pointerType === "touch" ? 16 : 8);
    if (i < 0) { if (S.convId) closeConversation(false); if (S.selected >= 0) selectCluster(-1); return; }
    const level = M.k > M.k0 * 2.5 || S.levels.length < 2 ? S.base : S.levels[S.levels.length - 1];
    let c = S.assign[level][i];
    if (S.selected >= 0 && c === S.selected && level !== S.base) c = S.assign[S.base][i];
    restoring = true; // one history entry for the topic and the conversation together
    try { if (c >= 0 && c !== S.selected) selectCluster(c, "map-open"); } finally { restoring = false; }
    openConversation(S.B.ids[i], "map");
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
    const R = S.region;
    const hi = (i) => S.mask[i] && (!selA || selA[i] === sel) && (!sm || sm[i]) && (!R || R[i]);
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
    renderLegend(); // before the names: the legend is one of the obstacles they avoid
    drawLabels(ctx, zoom);
    if (M.boxDraw) {
      const [x0, y0, x1, y1] = M.boxDraw;
      ctx.strokeStyle = cssVar("--accent"); ctx.lineWidth = 1.5; ctx.setLineDash([5, 4]);
      ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      ctx.setLineDash([]);
    }
  }

  // Names: the top level always, the next levels as the view zooms in (base topics named when
  // zoomed far enough); each name sits on its topic's densest region and is moved to a free
  // spot nearby (below, above, left, right) rather than dropped when it would overlap another.
  function drawLabels(ctx, zoom) {
    // the map's own overlays (colour select, zoom buttons, legend) are obstacles too
    const cr = $("map").getBoundingClientRect();
    const boxes = [...document.querySelectorAll("#map-view .map-colour, #map-view .map-controls, #legend")].map((el) => {
      const r = el.getBoundingClientRect();
      return { x: r.left - cr.left, y: r.top - cr.top, w: r.width, h: r.height };
    }).filter((b) => b.w > 0 && b.h > 0);
    const fits = (b) => b.x >= 2 && b.y >= 2 && b.x + b.w <= M.w - 50 && b.y + b.h <= M.h - 2 &&
      !boxes.some((o) => b.x < o.x + o.w && b.x + b.w > o.x && b.y < o.y + o.h && b.y + b.h > o.y);
    const placed = [];
    const put = (c, size, weight, force) => {
      const cl = S.clusters[c];
      if (!S.counts[c]) return false;
      const ax = toScreenX(cl._x), ay = toScreenY(cl._y);
      if (ax < -20 || ay < -20 || ax > M.w + 20 || ay > M.h + 20) return false;
      ctx.font = weight + " " + size + "px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
      const text = clip(cl.name, 38);
      const w = ctx.measureText(text).width, hh = size + 6;
      for (const [ox, oy] of labelOffsets(w, hh, force ? 0 : 4)) {
        const x = Math.min(M.w - w / 2 - 56, Math.max(w / 2 + 6, ax + ox)), y = Math.min(M.h - size, Math.max(size, ay + oy));
        const b = { x: x - w / 2 - 4, y: y - hh / 2, w: w + 8, h: hh };
        if (!fits(b) && !(force && ox === 0 && oy === 0)) continue;
        boxes.push(b);
        placed.push({ c, text, x, y, size, weight, box: b });
        return true;
      }
      return false;
    };
    if (S.selected >= 0) put(S.selected, 14, 700, true);
    const byCount = (list) => list.slice().sort((a, b) => S.counts[b] - S.counts[a]);
    const focus = S.colorBy === "topic" && S.selected >= 0 ? S.children.get(S.selected) : null;
    if (focus) for (const c of byCount(focus).slice(0, Math.round(6 * Math.sqrt(zoom)))) put(c, 12.5, 600); // more as you zoom
    for (const c of byCount(S.roots)) if (c !== S.selected) put(c, 13, 650);
    // deeper levels appear as the view zooms in: level L-2 from 2x, L-3 from 4x, ... base last
    for (let k = S.levels.length - 2; k >= 0; k--) {
      const need = 2 ** (S.levels.length - 1 - k);
      if (zoom < need * 0.95) break;
      const lvl = S.levels[k];
      for (const c of byCount(S.levelList[lvl] || [])) if (c !== S.selected) put(c, k === 0 ? 11 : 11.5, k === 0 ? 450 : 500);
    }
    ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.lineJoin = "round";
    const halo = cssVar("--halo"), label = cssVar("--label"), accent = cssVar("--accent");
    for (const l of placed) {
      ctx.font = l.weight + " " + l.size + "px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
      ctx.lineWidth = 4; ctx.strokeStyle = halo; ctx.strokeText(l.text, l.x, l.y);
      ctx.fillStyle = S.selected === l.c ? accent : label; ctx.fillText(l.text, l.x, l.y);
    }
    M.labels = placed.map((l) => ({ id: S.clusters[l.c].id, x: l.x, y: l.y, level: S.clusters[l.c].level, box: l.box }));
  }

  /** Where to try a name, nearest first: on the anchor, then rings of spots around it (below,
   *  above, right, left, diagonals) up to `rings` label heights away. */
  function labelOffsets(w, hh, rings) {
    const out = [[0, 0]];
    for (let r = 1; r <= rings; r++) {
      out.push([0, r * hh], [0, -r * hh], [r * (w / 2 + 8), 0], [-r * (w / 2 + 8), 0],
        [r * (w / 4 + 4), r * hh], [-r * (w / 4 + 4), -r * hh], [r * (w / 4 + 4), -r * hh], [-r * (w / 4 + 4), r * hh]);
    }
    return out;
  }

  /** Each topic's label anchor: the mean of its points in its densest cell (3x3 smoothed) of a
   *  32x32 grid over the map, so a scattered topic is named where most of it is, not at its mean. */
  function labelAnchors() {
    const G = 32, b = M.bounds, nC = S.clusters.length;
    const w = Math.max(1e-9, b.x1 - b.x0), hh = Math.max(1e-9, b.y1 - b.y0);
    const cellOf = new Int32Array(S.n);
    for (let i = 0; i < S.n; i++) cellOf[i] = Math.min(G - 1, Math.floor((S.Y[i] - b.y0) / hh * G)) * G + Math.min(G - 1, Math.floor((S.X[i] - b.x0) / w * G));
    S.levelList = {};
    S.clusters.forEach((cl, c) => { (S.levelList[cl.level] = S.levelList[cl.level] || []).push(c); });
    const counts = new Map(); // cluster -> Map(cell -> n)
    for (const l of S.levels) {
      const a = S.assign[l], L = S.clusterLevel;
      for (let i = 0; i < S.n; i++) {
        const c = a[i];
        if (c < 0 || L[c] !== l) continue;
        let m = counts.get(c); if (!m) { m = new Map(); counts.set(c, m); }
        m.set(cellOf[i], (m.get(cellOf[i]) || 0) + 1);
      }
    }
    const best = new Int32Array(nC).fill(-1);
    for (const [c, m] of counts) {
      let top = -1, score = -1;
      for (const [cell] of m) {
        const gx = cell % G, gy = (cell - gx) / G;
        let s2 = 0;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
          const x = gx + dx, y = gy + dy;
          if (x >= 0 && y >= 0 && x < G && y < G) s2 += (m.get(y * G + x) || 0) * (dx || dy ? 0.5 : 1);
        }
        if (s2 > score) { score = s2; top = cell; }
      }
      best[c] = top;
    }
    const sx = new Float64Array(nC), sy = new Float64Array(nC), sn = new Float64Array(nC);
    for (const l of S.levels) {
      const a = S.assign[l], L = S.clusterLevel;
      for (let i = 0; i < S.n; i++) {
        const c = a[i];
        if (c < 0 || L[c] !== l || best[c] < 0) continue;
        const bc = best[c], gx = bc % G, gy = (bc - gx) / G, cx = cellOf[i] % G, cy = (cellOf[i] - cx) / G;
        if (Math.abs(cx - gx) <= 1 && Math.abs(cy - gy) <= 1) { sx[c] += S.X[i]; sy[c] += S.Y[i]; sn[c]++; }
      }
    }
    S.clusters.forEach((cl, i) => { cl._x = sn[i] ? sx[i] / sn[i] : cl.x || 0; cl._y = sn[i] ? sy[i] / sn[i] : cl.y || 0; });
  }

  // ---- colouring: by top-level topic, by the selected topic's subtopics, or by a facet
  function setColorBy(key) {
    S.colorBy = key;
    $("color-by").value = key;
    recolor();
    drawMap();
    syncUrl(true);
  }
  function recolor() {
    const P = new Uint8Array(S.n).fill(255);
    if (S.colorBy === "top") { S.pointColor = S.topColor; return; }
    if (S.colorBy === "topic") {
      // follows the selection: its subtopics' colours (as in the tree, legend and Trends), a
      // selected leaf its own colour, nothing selected the top-level colours
      const sel = S.selected;
      if (sel < 0) { S.pointColor = S.topColor; return; }
      if (!S.children.get(sel).length) {
        const a = S.assign[S.clusters[sel].level], s = S.slot[sel] < 0 ? 255 : S.slot[sel];
        for (let i = 0; i < S.n; i++) if (a[i] === sel) P[i] = s;
        S.pointColor = P;
        return;
      }
      const kids = S.children.get(sel), levels = [...new Set(kids.map((k) => S.clusters[k].level))];
      const mine = new Set(kids);
      for (let i = 0; i < S.n; i++) for (const l of levels) { const c = S.assign[l][i]; if (mine.has(c)) { P[i] = S.slot[c] < 0 ? 255 : S.slot[c]; break; } }
    } else {
      const f = S.facets.find((x) => x.key === S.colorBy);
      if (!f) { S.pointColor = S.topColor; return; }
      for (let i = 0; i < S.n; i++) { const c = f.codes[i]; if (c >= 0 && f.values[c] !== OTHER) P[i] = c % PALETTE.length; }
    }
    S.pointColor = P;
  }

  function renderLegend() {
    const box = $("legend");
    const key = S.colorBy + ":" + (S.colorBy === "topic" ? S.selected : "") + ":" + S.filters.length;
    if (box.dataset.built === key) return;
    box.dataset.built = key;
    box.replaceChildren();
    const item = (color, name, title, onclick, pressed) => h("button", { class: "legend-item", type: "button", title, onclick, "aria-pressed": pressed == null ? null : String(pressed) },
      h("span", { class: "swatch", style: { background: color } }), h("span", { text: clip(name, 30) }));
    if (S.colorBy === "top" || (S.colorBy === "topic" && (S.selected < 0 || !S.children.get(S.selected).length))) {
      const roots = S.roots.slice().sort((a, b) => S.clusters[b].size - S.clusters[a].size).slice(0, 12);
      for (const c of roots) box.append(item(S.color[c], S.clusters[c].name, "Select " + S.clusters[c].name, () => selectCluster(c, "legend")));
    } else if (S.colorBy === "topic") {
      for (const c of sortedKids(S.children.get(S.selected)).slice(0, 12)) box.append(item(S.color[c], S.clusters[c].name, "Select " + S.clusters[c].name, () => selectCluster(c, "legend")));
    } else {
      const f = S.facets.find((x) => x.key === S.colorBy);
      if (!f) return;
      f.values.forEach((v, i) => {
        if (i >= PALETTE.length || v === OTHER) return;
        const on = S.filters.some((x) => x.key === f.key && x.value === i);
        box.append(item(PALETTE[i % PALETTE.length], v, (on ? "Filtered by " : "Filter by ") + f.label + " = " + v, () => (on ? removeFilter(S.filters.findIndex((x) => x.key === f.key && x.value === i)) : addFilter(f.key, i)), on));
      });
    }
  }
