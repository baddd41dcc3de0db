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
    const label = f.label + (f.group === "metadata" ? " (metadata)" : "");
    // one value for every conversation of the run: nothing to compare, fold it to one line
    if (isUninformative(f)) {
      return h("div", { class: "facet-block facet-same", "data-facet": f.key },
        h("div", { class: "facet-name" }, label + ": ", h("span", { class: "muted", text: "always " + f.values[order[0]] + " (tells nothing here)" })));
    }
    const shown = order.slice(0, f.ordered ? 12 : 8);
    const max = Math.max(...shown.map((i) => counts[i]));
    const box = h("div", { class: "facet-block", "data-facet": f.key },
      h("div", { class: "facet-name", text: label }));
    const dist = h("div", { class: "dist" });
    for (const i of shown) {
      const share = members.length ? pct(counts[i] / members.length) : "";
      dist.append(h("button", { class: "dist-row", type: "button", "data-key": "dist:" + f.key + ":" + i,
        title: "Filter by " + f.label + " = " + f.values[i], "aria-label": f.label + " " + f.values[i] + ": " + share + " of these " + fmt.format(members.length) + "; filter by it",
        onclick: () => addFilter(f.key, i) },
        h("span", { class: "dist-label", text: f.values[i] }),
        h("span", { class: "dist-bar" }, h("span", { style: { width: (100 * counts[i] / max).toFixed(1) + "%" } })),
        h("span", { class: "dist-val", text: share })));
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

  // ---- the conversation list: every conversation of the topic / selection / search, paged
  const PAGE = 25;
  const SORTS = { central: "Most central", newest: "Newest", oldest: "Oldest", longest: "Longest" };
  function sortedMembers(members, c) {
    let list = members.slice();
    if (S.listSort === "central") {
      // closest to the topic's densest region first: representative, not arbitrary
      const ax = c >= 0 ? S.clusters[c]._x : null, ay = c >= 0 ? S.clusters[c]._y : null;
      if (ax !== null) list.sort((a, b) => ((S.X[a] - ax) ** 2 + (S.Y[a] - ay) ** 2) - ((S.X[b] - ax) ** 2 + (S.Y[b] - ay) ** 2));
    } else if ((S.listSort === "newest" || S.listSort === "oldest") && S.T) {
      const sign = S.listSort === "newest" ? -1 : 1;
      list.sort((a, b) => { const ta = S.T[a], tb = S.T[b]; if (ta !== ta) return 1; if (tb !== tb) return -1; return sign * (ta - tb); });
    } else if (S.listSort === "longest") {
      const f = S.facets.find((x) => x.key === "messages" || x.key === "turns");
      if (f) list.sort((a, b) => f.codes[b] - f.codes[a]);
    }
    return list;
  }

  function conversationList(members, c, title) {
    const box = h("section", { class: "conv-list", id: "conv-list", "aria-label": title });
    const list = sortedMembers(members, c);
    const shown = Math.min(list.length, Math.max(PAGE, S.listShown || PAGE));
    const sortSel = h("select", { id: "list-sort", "aria-label": "Order of the conversations" });
    for (const [k, v] of Object.entries(SORTS)) {
      if ((k === "newest" || k === "oldest") && !S.T) continue;
      sortSel.append(h("option", { value: k, text: v }));
    }
    sortSel.value = S.listSort;
    sortSel.addEventListener("change", () => { S.listSort = sortSel.value; S.listShown = 0; renderDetails("list-sort"); });
    box.append(h("div", { class: "list-head" }, h("h3", { text: title }), sortSel),
      h("div", { class: "muted list-count", id: "list-count", text: list.length ? "Showing " + fmt.format(shown) + " of " + fmt.format(list.length) : "" }));
    const cards = h("div", { class: "examples", id: "examples" });
    for (const i of list.slice(0, shown)) cards.append(exampleCard(i));
    if (!list.length) cards.append(h("div", { class: "empty-state", text: S.query ? "Nothing here matches “" + $("search").value.trim() + "”." : "No conversations match the current filters." }));
    box.append(cards);
    if (shown < list.length) {
      box.append(h("button", { class: "btn more-btn", type: "button", id: "list-more", "data-key": "list-more",
        text: "Show " + fmt.format(Math.min(PAGE, list.length - shown)) + " more (" + fmt.format(list.length - shown) + " left)",
        onclick: () => {
          S.listShown = shown + PAGE;
          const added = list.slice(shown, shown + PAGE);
          renderDetails("list-more");
          const first = $("examples").querySelector('[data-conversation="' + CSS.escape(S.B.ids[added[0]]) + '"]');
          if (first && !$("list-more")) first.focus();
          announce("Showing " + fmt.format(Math.min(list.length, shown + PAGE)) + " of " + fmt.format(list.length));
        } }));
    }
    if (S.query) fillSnippets(cards);
    return box;
  }

  /** Ask for the snippets of the cards on screen (served: the server; export: the embedded text). */
  async function fillSnippets(cards) {
    const q = $("search").value.trim(), seq = S.searchSeq;
    const need = [...cards.querySelectorAll(".example:not([data-snippet])")].map((el) => Number(el.dataset.row));
    for (let k = 0; k < need.length; k += 100) {
      let res;
      try { res = await source.snippets(q, need.slice(k, k + 100)); } catch (err) { return; }
      if (seq !== S.searchSeq) return;
      for (const it of res.items) {
        const el = cards.querySelector('.example[data-row="' + it.row + '"]');
        if (!el) continue;
        el.dataset.snippet = "1";
        const sn = h("div", { class: "ex-snippet" }, h("span", { class: "ex-role", text: it.role }));
        el.querySelector(".ex-meta").before(highlightedAll(sn, it.snippet, S.searchTokens));
      }
    }
  }

  function exampleCard(i) {
    const req = S.B.text.request[i] || "(no request)";
    const sum = S.B.text.summary ? S.B.text.summary[i] : null;
    const topic = S.assign[S.base] ? S.assign[S.base][i] : -1;
    const when = S.T && S.T[i] === S.T[i] ? new Date(S.T[i]).toISOString().slice(0, 10) : "";
    return h("button", { class: "example", type: "button", "data-conversation": S.B.ids[i], "data-row": String(i), "data-key": "conv:" + S.B.ids[i],
      onclick: () => openConversation(S.B.ids[i], "card") },
      highlightedAll(h("div", { class: "ex-text" }), clip(req, 400), S.searchTokens),
      sum ? highlightedAll(h("div", { class: "ex-sum" }), clip(sum, 300), S.searchTokens) : null,
      h("div", { class: "ex-meta", text: [topic >= 0 ? S.clusters[topic].name : "", when].filter(Boolean).join(" · ") }));
  }

  function crumbs(c) {
    const box = h("nav", { class: "crumbs", "aria-label": "Topic path" });
    box.append(h("button", { type: "button", text: "All topics", "data-key": "crumb:all", onclick: () => selectCluster(-1) }));
    for (const a of ancestors(c)) {
      box.append(h("span", { class: "sep", text: "›", "aria-hidden": "true" }));
      box.append(h("button", { type: "button", text: S.clusters[a].name, "data-key": "crumb:" + S.clusters[a].id, onclick: () => selectCluster(a) }));
    }
    return box;
  }

  function stat(v, k) { return h("div", { class: "stat" }, h("div", { class: "v", text: v }), h("div", { class: "k", text: k })); }

  /** Re-render the details panel; keyboard focus stays on the same control when it still exists. */
  function renderDetails(focusKey) {
    if (S.convId) return; // the conversation viewer stays until closed
    const box = $("details");
    const active = document.activeElement;
    const keep = focusKey || (active && box.contains(active) ? active.dataset.key || active.id : null);
    const scroll = box.scrollTop;
    box.replaceChildren();
    const c = S.selected;
    const members = membersOf(c);
    const filtered = S.nActive < S.n;
    if (S.region) {
      box.append(h("div", { class: "region-note", id: "region-note" },
        h("span", { text: "Map selection: " + fmt.format(S.nRegion) + " conversation" + (S.nRegion === 1 ? "" : "s") + (c >= 0 ? " (" + fmt.format(members.length) + " in this topic)" : "") }),
        h("button", { class: "btn small", type: "button", "data-key": "region-clear", text: "Clear selection", onclick: () => clearRegion() })));
    }
    if (c >= 0) {
      const cl = S.clusters[c];
      const parent = cl.parent != null ? S.byId.get(cl.parent) : undefined;
      box.append(crumbs(c),
        h("h2", { class: "details-title", id: "topic-title", tabindex: "-1", text: cl.name }),
        cl.description ? h("p", { class: "desc", text: cl.description }) : null,
        h("div", { class: "stats" },
          stat(fmt.format(S.counts[c]), filtered ? "matching the filters (" + fmt.format(cl.size) + " in all)" : "conversations"),
          stat(pct(S.counts[c] / (S.nActive || 1)), filtered ? "of the " + fmt.format(S.nActive) + " matching" : "of all"),
          parent !== undefined ? stat(pct(S.counts[c] / (S.counts[parent] || 1)), "of its parent" + (filtered ? " (matching)" : "")) : stat("level " + cl.level, "top level")));
      if (cl.keyphrases && cl.keyphrases.length) {
        box.append(h("h3", { text: "Keyphrases" }), h("div", { class: "tags" }, ...cl.keyphrases.map((k) => h("span", { class: "tag", text: k }))));
      }
      if (cl.representative_request) box.append(h("h3", { text: "Representative request" }), h("p", { class: "desc", text: cl.representative_request }));
      const kids = sortedKids(S.children.get(c));
      if (kids.length) box.append(h("h3", { text: "Subtopics (" + kids.length + ") · share of this topic" }), childList(kids, Math.max(1, S.counts[c])));
    } else {
      box.append(h("h2", { class: "details-title", id: "topic-title", tabindex: "-1", text: "All conversations" }),
        h("p", { class: "desc", text: "Select a topic in the tree or on the map to see its details." }),
        h("div", { class: "stats" },
          stat(fmt.format(S.nActive), filtered ? "matching the filters" : "conversations"),
          stat(fmt.format(S.roots.length), "top topics"),
          stat(fmt.format(S.clusters.filter((x) => x.level === S.base).length), "base topics")));
      box.append(h("h3", { text: "Top-level topics · " + (filtered ? "share of the matching" : "share of all") }), childList(sortedKids(S.roots), Math.max(1, S.nActive)));
    }
    if (S.facets.length) {
      box.append(h("h3", { text: "Facets · share of these " + fmt.format(members.length) }));
      const grid = h("div", { class: "facet-grid" });
      for (const f of S.facets) { const d = distribution(f, members); if (d) grid.append(d); }
      box.append(grid);
    }
    if (S.query) {
      const hits = members.filter((i) => S.searchMask[i]);
      box.prepend(h("div", { class: "search-results", id: "search-results" },
        conversationList(hits, c, "Search: " + fmt.format(hits.length) + " match" + (hits.length === 1 ? "" : "es") + (c >= 0 ? " in this topic" : ""))));
    } else {
      box.append(conversationList(members, c, (c >= 0 ? "Conversations" : S.region ? "Selected conversations" : "All conversations") + " (" + fmt.format(members.length) + ")"));
    }
    // the same topic: stay where the user was; another topic: start at its top
    const same = S._detailsOf === c;
    S._detailsOf = c;
    box.scrollTop = same ? scroll : 0;
    if (keep) {
      const el = box.querySelector('[data-key="' + CSS.escape(keep) + '"]') || $(keep);
      if (el && box.contains(el)) el.focus({ preventScroll: same });
      else $("topic-title").focus({ preventScroll: true }); // the control is gone (another topic): focus its title
    }
  }

  function childList(kids, denom) {
    const box = h("div", { class: "child-list" });
    for (const k of kids) {
      const text = fmt.format(S.counts[k]) + " · " + pct(S.counts[k] / denom);
      box.append(h("button", { class: "child-row", type: "button", "data-cluster": S.clusters[k].id, "data-key": "child:" + S.clusters[k].id,
        "aria-label": S.clusters[k].name + ": " + text, onclick: () => selectCluster(k) },
        h("span", { class: "swatch", style: { background: S.color[k] } }),
        h("span", { class: "name", text: S.clusters[k].name, title: S.clusters[k].name }),
        h("span", { class: "n", text })));
    }
    return box;
  }
