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
    searchTokens: [], searchSeq: 0,
    searchMode: "keyword", searchScore: null, // "similar": Float32Array of each match's similarity (similar.js)
    listSort: "central", listShown: 0,   // the conversation list: order and how many are shown
    region: null, nRegion: 0,            // Uint8Array of points selected on the map (box), or null
    colorBy: "topic",                    // "topic" (follows the selection) | "top" (top level) | facet key
    hiddenSeries: new Set(), trendMode: "count",
    cmpPair: null,                       // the compare view's two topics [id A, id B] (compare.js), or null
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
    startViews();
    recompute();
    renderAll();
    fitMap();
    await restoreFromUrl();
    drawMap();
    runReady();
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
    // colour: each root gets a palette slot by size; the children of every topic get distinct
    // slots among themselves by size (the first child keeps its parent's colour), so the
    // subtopics of a selected topic are told apart on the map, in the tree and in Trends.
    S.color = new Array(S.clusters.length).fill(NOISE);
    const slot = new Int16Array(S.clusters.length).fill(-1);
    S.slot = slot;
    const bySize = (list) => list.slice().sort((a, b) => S.clusters[b].size - S.clusters[a].size);
    const paint = (list, first) => {
      bySize(list).forEach((c, k) => {
        const s = S.clusters[c].is_noise ? -1 : (first + k) % PALETTE.length;
        slot[c] = s; S.color[c] = s < 0 ? NOISE : PALETTE[s];
        paint(S.children.get(c), s < 0 ? 0 : s);
      });
    };
    paint(S.roots, 0);
    S.pointColor = new Uint8Array(S.n).fill(255);
    S.topColor = S.pointColor;
    const topA = S.assign[S.top];
    if (topA) for (let i = 0; i < S.n; i++) { const c = topA[i]; if (c >= 0 && slot[c] >= 0) S.pointColor[i] = slot[c]; }
    S.facets = B.facets.map((f) => ({ ...f, codes: f.kind === "category" ? Int32Array.from(f.codes) : f.codes }));
    S.mask = new Uint8Array(S.n);
    S.counts = new Float64Array(S.clusters.length);
    S.searchCounts = new Float64Array(S.clusters.length);
    buildGrid();
    labelAnchors();
  }

