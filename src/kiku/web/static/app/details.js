  // ---------------------------------------------------------------- details
  function facetCounts(f, members) {
    const counts = new Float64Array(f.values.length);
    if (f.kind === "category") { for (const i of members) { const c = f.codes[i]; if (c >= 0) counts[c]++; } }
    else for (const i of members) for (const c of f.codes[i]) counts[c]++;
    return counts;
  }

  function distribution(f, members) {
    const counts = facetCounts(f, members);
    let order = f.values.map((_, i) => i).filter((i) => counts[i] > 0);
    if (!f.ordered) order.sort((a, b) => counts[b] - counts[a]);
    const withValue = f.kind === "category" ? members.reduce((s, i) => s + (f.codes[i] >= 0 ? 1 : 0), 0) : members.reduce((s, i) => s + (f.codes[i].length ? 1 : 0), 0);
    if (!order.length) return null;
    const shown = order.slice(0, f.ordered ? 12 : 8);
    const max = Math.max(...shown.map((i) => counts[i]));
    const box = h("div", { class: "facet-block", "data-facet": f.key },
      h("div", { class: "facet-name", text: f.label + (f.group === "metadata" ? " (metadata)" : "") }));
    const dist = h("div", { class: "dist" });
    for (const i of shown) {
      dist.append(h("div", { class: "dist-row", title: "Filter by " + f.label + " = " + f.values[i], onclick: () => addFilter(f.key, i) },
        h("span", { class: "dist-label", text: f.values[i] }),
        h("span", { class: "dist-bar" }, h("div", { style: { width: (100 * counts[i] / max).toFixed(1) + "%" } })),
        h("span", { class: "dist-val", text: members.length ? pct(counts[i] / members.length) : "" })));
    }
    box.append(dist);
    const rest = order.length - shown.length;
    const missing = members.length - withValue;
    const notes = [];
    if (rest > 0) notes.push(rest + " more value" + (rest > 1 ? "s" : ""));
    if (missing > 0) notes.push(fmt.format(missing) + " without a value");
    if (notes.length) box.append(h("div", { class: "more", text: notes.join(" · ") }));
    return box;
  }

  function exampleCards(members, c) {
    // closest to the topic's centre first: representative, not arbitrary
    let list = members;
    if (c >= 0) {
      const cx = S.clusters[c]._x, cy = S.clusters[c]._y;
      list = members.slice().sort((a, b) => ((S.X[a] - cx) ** 2 + (S.Y[a] - cy) ** 2) - ((S.X[b] - cx) ** 2 + (S.Y[b] - cy) ** 2));
    }
    const box = h("div", { class: "examples" });
    for (const i of list.slice(0, 8)) box.append(exampleCard(i));
    if (!list.length) box.append(h("div", { class: "empty-state", text: "No conversations match the current filters." }));
    return box;
  }

  function exampleCard(i) {
    const req = S.B.text.request[i] || "(no request)";
    const sum = S.B.text.summary ? S.B.text.summary[i] : null;
    const topic = S.assign[S.base] ? S.assign[S.base][i] : -1;
    const when = S.T && S.T[i] === S.T[i] ? new Date(S.T[i]).toISOString().slice(0, 10) : "";
    return h("button", { class: "example", type: "button", "data-conversation": S.B.ids[i], onclick: () => openConversation(S.B.ids[i]) },
      highlighted(h("div", { class: "ex-text" }), clip(req, 400), S.query),
      sum ? highlighted(h("div", { class: "ex-sum" }), clip(sum, 300), S.query) : null,
      h("div", { class: "ex-meta", text: [topic >= 0 ? S.clusters[topic].name : "", when].filter(Boolean).join(" · ") }));
  }

  function crumbs(c) {
    const box = h("div", { class: "crumbs" });
    box.append(h("button", { type: "button", text: "All topics", onclick: () => selectCluster(-1) }));
    for (const a of ancestors(c)) {
      box.append(h("span", { class: "sep", text: "›" }));
      box.append(h("button", { type: "button", text: S.clusters[a].name, onclick: () => selectCluster(a) }));
    }
    return box;
  }

  function stat(v, k) { return h("div", { class: "stat" }, h("div", { class: "v", text: v }), h("div", { class: "k", text: k })); }

  function renderDetails() {
    if (S.convId) return; // the conversation viewer stays until closed
    const box = $("details");
    box.replaceChildren();
    box.scrollTop = 0;
    const c = S.selected;
    const members = membersOf(c);
    if (S.query) {
      box.append(searchResults());
    }
    if (c >= 0) {
      const cl = S.clusters[c];
      const parent = cl.parent != null ? S.byId.get(cl.parent) : undefined;
      box.append(crumbs(c),
        h("h2", { class: "details-title", id: "topic-title", text: cl.name }),
        cl.description ? h("p", { class: "desc", text: cl.description }) : null,
        h("div", { class: "stats" },
          stat(fmt.format(S.counts[c]), S.nActive < S.n ? "matching (" + fmt.format(cl.size) + " total)" : "conversations"),
          stat(pct(cl.size / (S.n || 1)), "of all"),
          stat(parent !== undefined ? pct(cl.size / (S.clusters[parent].size || 1)) : "level " + cl.level, parent !== undefined ? "of parent" : "top level")));
      if (cl.keyphrases && cl.keyphrases.length) {
        box.append(h("h3", { text: "Keyphrases" }), h("div", { class: "tags" }, ...cl.keyphrases.map((k) => h("span", { class: "tag", text: k }))));
      }
      if (cl.representative_request) box.append(h("h3", { text: "Representative request" }), h("p", { class: "desc", text: cl.representative_request }));
      const kids = sortedKids(S.children.get(c));
      if (kids.length) box.append(h("h3", { text: "Subtopics (" + kids.length + ")" }), childList(kids, Math.max(1, S.counts[c])));
    } else {
      box.append(h("h2", { class: "details-title", id: "topic-title", text: "All conversations" }),
        h("p", { class: "desc", text: "Select a topic in the tree or on the map to see its details." }),
        h("div", { class: "stats" },
          stat(fmt.format(S.nActive), S.nActive < S.n ? "matching" : "conversations"),
          stat(fmt.format(S.roots.length), "top topics"),
          stat(fmt.format(S.clusters.filter((x) => x.level === S.base).length), "base topics")));
      box.append(h("h3", { text: "Top-level topics" }), childList(sortedKids(S.roots), Math.max(1, S.nActive)));
    }
    if (S.facets.length) {
      box.append(h("h3", { text: "Facets" }));
      const grid = h("div", { class: "facet-grid" });
      for (const f of S.facets) { const d = distribution(f, members); if (d) grid.append(d); }
      box.append(grid);
    }
    box.append(h("h3", { text: "Example conversations" }), exampleCards(members, c));
  }

  function childList(kids, denom) {
    const box = h("div", { class: "child-list" });
    for (const k of kids) {
      box.append(h("div", { class: "child-row", "data-cluster": S.clusters[k].id, onclick: () => selectCluster(k) },
        h("span", { class: "swatch", style: { background: S.color[k] } }),
        h("span", { class: "name", text: S.clusters[k].name, title: S.clusters[k].name }),
        h("span", { class: "n", text: fmt.format(S.counts[k]) + " · " + pct(S.counts[k] / denom) })));
    }
    return box;
  }

  function searchResults() {
    const hits = [];
    for (let i = 0; i < S.n && hits.length < 50; i++) if (S.mask[i] && S.searchMask[i] && (S.selected < 0 || S.assign[S.clusters[S.selected].level][i] === S.selected)) hits.push(i);
    const box = h("div", { class: "search-results", id: "search-results" },
      h("h3", { text: "Search: " + fmt.format(S.nSearch) + " match" + (S.nSearch === 1 ? "" : "es") + (S.selected >= 0 ? " (showing this topic)" : "") }));
    const list = h("div", { class: "examples" });
    hits.slice(0, 12).forEach((i) => list.append(exampleCard(i)));
    if (!hits.length) list.append(h("div", { class: "empty-state", text: "Nothing matches “" + S.query + "”." }));
    box.append(list);
    return box;
  }

