  // ---------------------------------------------------------------- search by similar meaning
  // The search box has two modes (the toggle next to it; `search=similar` in the URL):
  // keyword (every word of the query, filters.js runSearch) and similar meaning: the server
  // embeds the query with the run's own model and ranks the conversations by cosine similarity
  // with their stored embeddings (kiku.similar, /api/similar/rows): at most 200, above the run's
  // chance-level similarity. The matches feed the same mask as keyword matches (list, counts,
  // tree badges, map rings, Trends); the list is ordered by similarity and each card shows it.
  // The export has no model and no embeddings: the toggle is there but disabled, with a tooltip.
  source.similar = (q) => getJSON("api/similar/rows?q=" + encodeURIComponent(q));
  const SIMILAR_OFF_EXPORT = "Similar-meaning search needs the served explorer (kiku ui RUN); this file has keyword search";
  const SIMILAR_OFF_RUN = "This run has no stored embeddings; similar-meaning search needs a run made by kiku run";

  /** Whether this page can search by meaning: served, and the run has embeddings. */
  function similarAvailable() { return !embedded && !!(S.B && S.B.run && S.B.run.similar); }

  /** The per-conversation similarity of a search answer (NaN where not matched), or null for
   *  keyword answers; the list's order follows (most similar first, back to central after). */
  function similarScores(res) {
    if (!res.scores) { if (S.listSort === "similar") S.listSort = "central"; return null; }
    const out = new Float32Array(S.n).fill(NaN);
    res.rows.forEach((r, k) => { if (r >= 0 && r < S.n) out[r] = res.scores[k]; });
    S.listSort = "similar";
    return out;
  }

  /** The similarity shown on a card ("similarity 0.74"), "" outside a similar-meaning search. */
  function similarityText(i) {
    return S.searchScore && S.searchScore[i] === S.searchScore[i] ? "similarity " + S.searchScore[i].toFixed(2) : "";
  }

  function setupSearchMode() {
    const on = similarAvailable();
    const btn = $("mode-similar");
    if (!on) {
      // focusable and labelled, so the reason reaches keyboard and screen-reader users too
      btn.setAttribute("aria-disabled", "true");
      btn.title = embedded ? SIMILAR_OFF_EXPORT : SIMILAR_OFF_RUN;
      $("search-mode").title = btn.title;
    } else btn.title = "Find conversations that mean the same, even with other words";
    $("mode-keyword").title = "Find conversations that contain every word";
    $("mode-keyword").addEventListener("click", () => setSearchMode("keyword"));
    btn.addEventListener("click", () => {
      if (!similarAvailable()) { announce(btn.title); return; }
      setSearchMode("similar");
    });
    renderSearchMode();
  }

  function renderSearchMode() {
    $("mode-keyword").setAttribute("aria-pressed", String(S.searchMode !== "similar"));
    $("mode-similar").setAttribute("aria-pressed", String(S.searchMode === "similar"));
    if (S.searchMode === "similar") $("search").placeholder = "Describe what you look for, in any words…";
    else if (S._keywordPlaceholder) $("search").placeholder = S._keywordPlaceholder;
  }

  /** Switch the search box to "keyword" or "similar"; the current query runs again in the new
   *  mode (quiet: only set the state, as when the URL is restored). */
  function setSearchMode(mode, quiet) {
    if (mode === "similar" && !similarAvailable()) mode = "keyword";
    if (S._keywordPlaceholder === undefined) S._keywordPlaceholder = $("search").placeholder;
    const changed = mode !== S.searchMode;
    S.searchMode = mode;
    renderSearchMode();
    if (quiet || !changed) return;
    const q = $("search").value;
    if (q.trim()) runSearch(q).then(() => syncUrl(true));
    else { syncUrl(true); announce(mode === "similar" ? "Search by similar meaning" : "Search by keyword"); }
  }
