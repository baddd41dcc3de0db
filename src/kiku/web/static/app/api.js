  // ---------------------------------------------------------------- data access layer
  const mode = (document.querySelector('meta[name="kiku-mode"]') || {}).content || "api";
  let embedded = null;
  if (mode === "embedded") {
    const el = document.getElementById("kiku-data");
    embedded = JSON.parse(el.textContent);
  }
  async function getJSON(path) {
    const res = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!res.ok) throw new Error(path + ": HTTP " + res.status);
    return res.json();
  }
  // The export stores the bundle and the conversations as gzip+base64 blocks; the bundle is
  // inflated (natively, DecompressionStream) at start, a conversation chunk the first time
  // one of its conversations opens (or when a search scans the texts).
  const chunkCache = new Map();
  let idIndex = null;
  const domReady = () => new Promise((ok) => {
    if (document.readyState !== "loading") ok(); else document.addEventListener("DOMContentLoaded", ok, { once: true });
  });
  async function inflateBlock(id) {
    const el = document.getElementById(id);
    if (!el) return null;
    const text = atob(el.textContent.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  async function inflateChunk(k) {
    await domReady();
    return (await inflateBlock("kiku-chunk-" + k)) || [];
  }
  function chunk(k) {
    if (!chunkCache.has(k)) chunkCache.set(k, inflateChunk(k));
    return chunkCache.get(k);
  }
  async function embeddedConversation(id) {
    if (!idIndex) { idIndex = new Map(); S.B.ids.forEach((v, i) => idIndex.set(v, i)); }
    const i = idIndex.get(id);
    if (i === undefined) return null;
    const k = Math.floor(i / embedded.chunk_size);
    const list = await chunk(k);
    const stored = list[i - k * embedded.chunk_size];
    if (!stored) return null;
    // the export leaves out what the bundle has (export.slim_conversation): put it back
    const conv = { ...stored, id, facets: { ...(stored.facets || {}) } };
    if (conv.facets.request == null && S.B.text.request[i]) conv.facets.request = S.B.text.request[i];
    if (!conv.topics) {
      conv.topics = [];
      for (const l of S.levels) { const c = S.assign[l][i]; if (c >= 0 && S.clusterLevel[c] === l) conv.topics.push({ level: l, cluster_id: S.clusters[c].id, name: S.clusters[c].name }); }
      // a topic may cover higher levels too (collapsed chains): list each once, top first
      conv.topics.sort((a, b) => b.level - a.level);
    }
    return conv;
  }

  /** The words of a query, as the server splits them (data.search_tokens): lowercased, each once. */
  function searchTokens(q) {
    const out = [];
    for (const t of String(q).toLowerCase().match(/[\p{L}\p{N}]+/gu) || []) if (!out.includes(t)) out.push(t);
    const longer = out.filter((t) => !(t.length === 1 && /^[a-z]$/.test(t)));
    return (longer.length ? longer : out).slice(0, 12);
  }
  /** The searchable text of one embedded conversation: every message, the request, the summary. */
  function convTexts(conv) {
    const out = (conv.messages || []).map((m) => [String(m.role || ""), String(m.content || "")]);
    const f = conv.facets || {};
    if (f.summary) out.push(["summary", String(f.summary)]);
    if (f.request) out.push(["request", String(f.request)]);
    return out;
  }
  /** The text around the first match of a token (mirrors data.snippet_of). */
  function snippetOf(texts, tokens, width) {
    width = width || 180;
    for (const [label, text] of texts) {
      const lower = text.toLowerCase();
      const hits = tokens.map((t) => lower.indexOf(t)).filter((i) => i >= 0);
      if (!hits.length) continue;
      const at = Math.min(...hits);
      let lo = Math.max(0, at - Math.floor(width / 3));
      const hi = Math.min(text.length, lo + width);
      lo = Math.max(0, Math.min(lo, hi - width));
      return { role: label, snippet: (lo > 0 ? "…" : "") + text.slice(lo, hi).split(/\s+/).join(" ").trim() + (hi < text.length ? "…" : "") };
    }
    return { role: texts.length ? texts[0][0] : "", snippet: texts.length ? texts[0][1].slice(0, width) : "" };
  }
  // In the export, search scans the embedded conversations themselves (as kept in the file),
  // one chunk at a time; each chunk's lowercased text is kept after the first search.
  const lowerCache = new Map();
  async function embeddedSearch(q) {
    const tokens = searchTokens(q);
    const rows = [];
    if (!tokens.length) return { tokens, rows, total: 0 };
    await domReady();
    for (let k = 0; k < embedded.chunks; k++) {
      if (!lowerCache.has(k)) {
        const list = await chunk(k), base0 = k * embedded.chunk_size;
        lowerCache.set(k, list.map((c, j) => (convTexts(c).map((t) => t[1]).join("\n") + "\n" + (S.B.text.request[base0 + j] || "")).toLowerCase()));
        chunkCache.delete(k); // the parsed objects are re-inflated on demand; keep only the text
      }
      const texts = lowerCache.get(k), base = k * embedded.chunk_size;
      for (let j = 0; j < texts.length; j++) if (tokens.every((t) => texts[j].includes(t))) rows.push(base + j);
    }
    return { tokens, rows, total: rows.length };
  }
  async function embeddedSnippets(q, rows) {
    const tokens = searchTokens(q), out = [];
    for (const r of rows) {
      const conv = await embeddedConversation(S.B.ids[r]);
      if (conv) out.push({ row: r, id: conv.id, ...snippetOf(convTexts(conv), tokens) });
    }
    return { items: out };
  }
  const source = {
    canExport: mode === "api",
    bundle: async () => {
      if (!embedded) return getJSON("api/bundle");
      return embedded.bundle || (await inflateBlock("kiku-bundle"));
    },
    conversation: (id) => (embedded ? embeddedConversation(id) : getJSON("api/conversations/" + encodeURIComponent(id))),
    /** Every conversation containing all words of q: {tokens, rows (bundle indices), total}. */
    search: (q) => (embedded ? embeddedSearch(q) : getJSON("api/search/rows?q=" + encodeURIComponent(q))),
    /** Snippets around the match for some rows: {items: [{row, id, role, snippet}]}. */
    snippets: (q, rows) => (embedded ? embeddedSnippets(q, rows)
      : getJSON("api/search/snippets?q=" + encodeURIComponent(q) + "&rows=" + rows.join(","))),
    /** What a view's route module put in the export (export.extension_data), inflated; null when
     *  served (ask the view's own API) or when the export has no such block. */
    extra: async (name) => (embedded ? inflateBlock("kiku-extra-" + name) : null),
    clipNote: () => (embedded ? { message: embedded.max_message_chars, reply: embedded.max_reply_chars, conversation: embedded.max_conversation_chars } : null),
  };
