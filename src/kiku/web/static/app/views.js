  // ---------------------------------------------------------------- views and the URL
  // A view is a tab of the centre panel. The map and Trends are built in; a new view (compare,
  // curate, ...) plugs in from its own module, loaded after this one and before main.js:
  //
  //   registerView({ id: "compare", label: "Compare",
  //                  mount(box) { ... },     // once, with its empty <div> in the centre panel
  //                  show() { ... },         // each time its tab is opened
  //                  update() { ... } });    // after any change of topic, filters or search
  //
  // It reads the shared state `S` (selection, mask of filtered conversations, search) and may
  // call selectCluster / openConversation / addFilter like the built-in views do. Its tab and
  // its state (`tab=<id>`) are in the URL like every other view's.
  //
  // Behaviour that is not a tab (keyboard curation, curate.js) runs from `whenReady(fn)`: once,
  // after the run is loaded and the URL's state applied (before body[data-ready] is set).
  const VIEWS = new Map();
  const READY = [];
  function whenReady(fn) { if (document.body.dataset.ready === "1") fn(); else READY.push(fn); }
  function runReady() { for (const fn of READY.splice(0)) fn(); }
  function registerView(view) { VIEWS.set(view.id, view); if (S.B) mountView(view); }
  function mountView(view) {
    if (view._box) return;
    const tab = h("button", { id: "tab-" + view.id, class: "tab", role: "tab", type: "button", "data-tab": view.id,
      "aria-selected": "false", "aria-controls": view.id + "-view", text: view.label, onclick: () => setTab(view.id) });
    $("tablist").append(tab);
    view._box = h("div", { id: view.id + "-view", class: "view-wrap", role: "tabpanel", hidden: true });
    $("trends-view").after(view._box);
    if (view.mount) view.mount(view._box);
  }
  function startViews() { for (const v of VIEWS.values()) mountView(v); }
  function updateViews() { const v = VIEWS.get(S.tab); if (v && v.update) v.update(); }

  // The whole view state lives in the URL's fragment (works for the served page and for the
  // export opened from a file): topic, conversation, filters, dates, search, colouring, tab,
  // map view. A change of topic, conversation, filter or tab is a history entry (back and
  // forward walk them); typing a search or panning replaces the current one.
  let restoring = false;
  function stateToHash() {
    const p = new URLSearchParams();
    if (S.selected >= 0) p.set("topic", S.clusters[S.selected].id);
    if (S.convId) p.set("conv", S.convId);
    for (const f of S.filters) { const facet = S.facets.find((x) => x.key === f.key); if (facet) p.append("f", f.key + ":" + facet.values[f.value]); }
    const day = (t) => new Date(t).toISOString().slice(0, 10);
    if (S.dateFrom !== null) p.set("from", day(S.dateFrom));
    if (S.dateTo !== null) p.set("to", day(S.dateTo - 86400000));
    if (S.query) p.set("q", $("search").value.trim());
    if (S.searchMode === "similar") p.set("search", "similar");
    if (S.colorBy !== "topic") p.set("color", S.colorBy);
    if (S.tab !== "map") p.set("tab", S.tab);
    if (S.tab === "compare" && S.cmpPair) { p.set("ca", S.cmpPair[0]); p.set("cb", S.cmpPair[1]); }
    if (S.trendMode !== "count") p.set("trend", S.trendMode);
    if (M.k0 && Math.abs(M.k / M.k0 - 1) > 1e-3) p.set("view", [M.cx.toFixed(4), M.cy.toFixed(4), (M.k / M.k0).toFixed(3)].join(","));
    return p.toString();
  }
  function syncUrl(push) {
    if (restoring || !S.B) return;
    const hash = stateToHash();
    if (hash === location.hash.slice(1)) return;
    const url = location.pathname + location.search + (hash ? "#" + hash : "");
    try { if (push) history.pushState(null, "", url); else history.replaceState(null, "", url); }
    catch (e) { location.hash = hash; /* some file:// pages refuse the history API */ }
  }
  const syncUrlSoon = debounce(() => syncUrl(false), 250);

  async function restoreFromUrl() {
    const p = new URLSearchParams(location.hash.slice(1));
    restoring = true;
    try {
      S.filters = [];
      for (const raw of p.getAll("f")) {
        const at = raw.indexOf(":"), key = raw.slice(0, at), value = raw.slice(at + 1);
        const facet = S.facets.find((x) => x.key === key);
        const v = facet ? facet.values.indexOf(value) : -1;
        if (v >= 0 && !S.filters.some((x) => x.key === key && x.value === v)) S.filters.push({ key, value: v });
      }
      const from = p.get("from"), to = p.get("to");
      S.dateFrom = from ? Date.parse(from + "T00:00:00Z") : null;
      S.dateTo = to ? Date.parse(to + "T00:00:00Z") + 86400000 : null;
      if (S.dateFrom !== null && isNaN(S.dateFrom)) S.dateFrom = null;
      if (S.dateTo !== null && isNaN(S.dateTo)) S.dateTo = null;
      $("date-from").value = from && S.dateFrom !== null ? from : "";
      $("date-to").value = to && S.dateTo !== null ? to : "";
      const color = p.get("color") || "topic";
      S.colorBy = color === "topic" || color === "top" || S.facets.some((f) => f.key === color) ? color : "topic";
      $("color-by").value = S.colorBy;
      S.trendMode = p.get("trend") === "share" ? "share" : "count";
      const q = p.get("q") || "";
      $("search").value = q;
      const searchMode = p.get("search") === "similar" && similarAvailable() ? "similar" : "keyword";
      const modeChanged = searchMode !== S.searchMode;
      setSearchMode(searchMode, true);
      if (q.trim().toLowerCase() !== S.query || (q && !S.searchMask) || (q && modeChanged)) await runSearch(q, true);
      const topic = p.get("topic");
      S.selected = topic && S.byId.has(topic) ? S.byId.get(topic) : -1;
      if (S.selected >= 0) for (const a of ancestors(S.selected)) S.expanded.add(a);
      recolor();
      S.listShown = 0;
      const view = p.get("view");
      if (view) {
        const [x, y, k] = view.split(",").map(Number);
        if ([x, y, k].every(Number.isFinite) && k > 0) { M.cx = x; M.cy = y; M.k = M.k0 * Math.min(200, Math.max(0.3, k)); }
      } else fitMap();
      const tab = p.get("tab") || "map";
      const ca = p.get("ca"), cb = p.get("cb");
      S.cmpPair = ca && cb && S.byId.has(ca) && S.byId.has(cb) ? [ca, cb] : null;
      recompute();
      renderAll();
      setTab(tab === "trends" || tab === "map" || VIEWS.has(tab) ? tab : "map");
      const conv = p.get("conv");
      if (conv && S.B.ids.includes(conv)) await openConversation(conv, "restore");
      else if (S.convId) closeConversation();
    } finally {
      restoring = false;
    }
  }
  window.addEventListener("popstate", () => { if (S.B) restoreFromUrl(); });
  window.addEventListener("hashchange", () => { if (S.B && location.hash.slice(1) !== stateToHash()) restoreFromUrl(); });

  // A polite live region that announces only what just changed (never the whole panel).
  function announce(text) {
    const el = $("announce");
    if (!el) return;
    el.textContent = "";
    setTimeout(() => { el.textContent = text; }, 30);
  }
