  // ---------------------------------------------------------------- tree
  function sortedKids(list) {
    const arr = list.slice();
    if (S.sortBy === "size") arr.sort((a, b) => S.counts[b] - S.counts[a] || S.clusters[b].size - S.clusters[a].size);
    else arr.sort((a, b) => S.clusters[a].name.localeCompare(S.clusters[b].name));
    return arr;
  }

  function treeMatches() {
    if (!S.treeQuery) return null;
    const show = new Set();
    S.clusters.forEach((c, i) => {
      if (!c.name.toLowerCase().includes(S.treeQuery)) return;
      let k = i;
      while (k !== undefined && !show.has(k)) {
        show.add(k);
        const p = S.clusters[k].parent;
        k = p == null ? undefined : S.byId.get(p);
      }
    });
    return show;
  }

  /** The share the tree and the details show: of the conversations that pass the filters. */
  function shareLabel() { return S.nActive < S.n ? "of the " + fmt.format(S.nActive) + " matching the filters" : "of all " + fmt.format(S.n); }

  // The tree is an ARIA tree with one tab stop: arrows walk the visible rows (Right opens or
  // enters, Left closes or goes to the parent), Home/End jump, Enter/Space select. Focus
  // stays on the same topic across re-renders.
  function renderTree() {
    const box = $("tree");
    const scroll = box.scrollTop;
    const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.dataset.cluster : null;
    box.replaceChildren();
    const show = treeMatches();
    const total = S.nActive || 1;
    const maxCount = Math.max(1, ...S.roots.map((r) => S.counts[r]));
    const share = shareLabel();
    const build = (list, depth) => {
      const frag = document.createDocumentFragment();
      for (const c of sortedKids(list)) {
        if (show && !show.has(c)) continue;
        const kids = S.children.get(c);
        const open = show ? kids.some((k) => show.has(k)) : S.expanded.has(c);
        const cl = S.clusters[c];
        const count = S.counts[c];
        const item = h("div", { class: "tree-item", role: "none" });
        const node = h("div", {
          class: "node" + (S.selected === c ? " selected" : "") + (count === 0 ? " empty" : ""),
          role: "treeitem", "aria-expanded": kids.length ? String(open) : null, "aria-selected": String(S.selected === c),
          "aria-level": String(depth + 1), tabindex: "-1",
          "data-cluster": cl.id, "data-level": String(cl.level), title: cl.name + " · " + fmt.format(count) + " conversations, " + pct(count / total) + " " + share,
          onclick: () => selectCluster(c, "tree"),
        },
          h("button", { class: "caret" + (kids.length ? "" : " leaf") + (open ? " open" : ""), type: "button", tabindex: "-1",
            "aria-hidden": "true", text: "▶",
            onclick: (e) => { e.stopPropagation(); toggle(c); } }),
          h("span", { class: "swatch", style: { background: S.color[c] } }),
          h("div", { class: "node-main" },
            highlighted(h("div", { class: "node-name" }), cl.name, S.treeQuery),
            h("div", { class: "node-bar" }, h("div", { style: { width: (100 * count / maxCount).toFixed(1) + "%" } }))),
          h("div", { class: "node-meta" }, h("b", { text: fmt.format(count) }), " · " + pct(count / total),
            S.searchMask && S.searchCounts[c] ? h("span", { class: "badge", title: "search matches", text: fmt.format(S.searchCounts[c]) }) : null),
        );
        item.append(node);
        if (open && kids.length) { const sub = h("div", { class: "children", role: "group" }); sub.append(build(kids, depth + 1)); item.append(sub); }
        frag.append(item);
      }
      return frag;
    };
    box.append(build(S.roots, 0));
    if (!box.childElementCount) box.append(h("div", { class: "empty-state", text: S.treeQuery ? "No topic matches “" + S.treeQuery + "”." : "This run has no topics." }));
    const rows = [...box.querySelectorAll(".node")];
    const stop = rows.find((r) => r.dataset.cluster === focused) || rows.find((r) => r.classList.contains("selected")) || rows[0];
    if (stop) stop.tabIndex = 0;
    if (focused && stop) stop.focus({ preventScroll: true });
    box.scrollTop = scroll;
    $("tree-share").textContent = "Shares " + share;
  }

  function treeKey(e) {
    const row = e.target.closest && e.target.closest(".node");
    if (!row) return;
    const rows = [...$("tree").querySelectorAll(".node")];
    const k = rows.indexOf(row), c = S.byId.get(row.dataset.cluster);
    const go = (r) => { if (!r) return; rows.forEach((x) => { x.tabIndex = -1; }); r.tabIndex = 0; r.focus(); };
    const kids = S.children.get(c) || [];
    if (e.key === "ArrowDown") go(rows[k + 1]);
    else if (e.key === "ArrowUp") go(rows[k - 1]);
    else if (e.key === "Home") go(rows[0]);
    else if (e.key === "End") go(rows[rows.length - 1]);
    else if (e.key === "ArrowRight") {
      if (kids.length && !S.expanded.has(c)) toggle(c);
      else if (kids.length) go(rows[k + 1]);
    } else if (e.key === "ArrowLeft") {
      if (kids.length && S.expanded.has(c)) toggle(c);
      else { const p = S.clusters[c].parent; if (p != null) go(rows.find((r) => r.dataset.cluster === p)); }
    } else if (e.key === "Enter" || e.key === " ") selectCluster(c, "tree");
    else return;
    e.preventDefault();
  }

  function toggle(c) { if (S.expanded.has(c)) S.expanded.delete(c); else S.expanded.add(c); renderTree(); }

  function ancestors(c) {
    const out = [];
    let p = S.clusters[c].parent;
    while (p != null && S.byId.has(p)) { const k = S.byId.get(p); out.unshift(k); p = S.clusters[k].parent; }
    return out;
  }

  function selectCluster(c, from) {
    S.selected = c; S.convId = null; S.listShown = 0;
    if (c >= 0) for (const a of ancestors(c)) S.expanded.add(a);
    if (S.colorBy === "topic") recolor();
    renderTree(); renderDetails(); drawMap();
    if (S.tab === "trends") drawTrends();
    updateViews();
    if (c >= 0) {
      const row = $("tree").querySelector('.node.selected');
      if (row && from !== "tree") row.scrollIntoView({ block: "nearest" });
    }
    if (from !== "restore") syncUrl(true);
    if (from !== "map-open" && from !== "restore") announce(c >= 0 ? S.clusters[c].name + ": " + fmt.format(S.counts[c]) + " conversations" : "All topics");
  }

