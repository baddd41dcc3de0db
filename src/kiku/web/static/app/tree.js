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

  function renderTree() {
    const box = $("tree");
    const scroll = box.scrollTop;
    box.replaceChildren();
    const show = treeMatches();
    const total = S.n || 1;
    const maxCount = Math.max(1, ...S.roots.map((r) => S.counts[r]));
    const build = (list, depth) => {
      const frag = document.createDocumentFragment();
      for (const c of sortedKids(list)) {
        if (show && !show.has(c)) continue;
        const kids = S.children.get(c);
        const open = show ? kids.some((k) => show.has(k)) : S.expanded.has(c);
        const cl = S.clusters[c];
        const count = S.counts[c];
        const node = h("div", {
          class: "node" + (S.selected === c ? " selected" : "") + (count === 0 ? " empty" : ""),
          role: "treeitem", "aria-expanded": kids.length ? String(open) : null, "aria-selected": String(S.selected === c),
          "data-cluster": cl.id, "data-level": String(cl.level), title: cl.name,
          onclick: () => selectCluster(c, "tree"),
        },
          h("button", { class: "caret" + (kids.length ? "" : " leaf") + (open ? " open" : ""), type: "button",
            "aria-label": (open ? "Collapse " : "Expand ") + cl.name, text: "▶",
            onclick: (e) => { e.stopPropagation(); toggle(c); } }),
          h("span", { class: "swatch", style: { background: S.color[c] } }),
          h("div", { class: "node-main" },
            highlighted(h("div", { class: "node-name" }), cl.name, S.treeQuery),
            h("div", { class: "node-bar" }, h("div", { style: { width: (100 * count / maxCount).toFixed(1) + "%" } }))),
          h("div", { class: "node-meta" }, h("b", { text: fmt.format(count) }), " · " + pct(count / total),
            S.searchMask && S.searchCounts[c] ? h("span", { class: "badge", title: "search matches", text: fmt.format(S.searchCounts[c]) }) : null),
        );
        frag.append(node);
        if (open && kids.length) { const sub = h("div", { class: "children", role: "group" }); sub.append(build(kids, depth + 1)); frag.append(sub); }
      }
      return frag;
    };
    box.append(build(S.roots, 0));
    if (!box.childElementCount) box.append(h("div", { class: "empty-state", text: S.treeQuery ? "No topic matches “" + S.treeQuery + "”." : "This run has no topics." }));
    box.scrollTop = scroll;
  }

  function toggle(c) { if (S.expanded.has(c)) S.expanded.delete(c); else S.expanded.add(c); renderTree(); }

  function ancestors(c) {
    const out = [];
    let p = S.clusters[c].parent;
    while (p != null && S.byId.has(p)) { const k = S.byId.get(p); out.unshift(k); p = S.clusters[k].parent; }
    return out;
  }

  function selectCluster(c, from) {
    S.selected = c; S.convId = null;
    if (c >= 0) {
      for (const a of ancestors(c)) S.expanded.add(a);
      if (from !== "tree" && S.children.get(c).length === 0) { /* leaf: ancestors opened */ }
    }
    renderTree(); renderDetails(); drawMap();
    if (S.tab === "trends") drawTrends();
    if (c >= 0) {
      const row = $("tree").querySelector('.node.selected');
      if (row && from !== "tree") row.scrollIntoView({ block: "nearest" });
    }
  }

