  // ---------------------------------------------------------------- tiny DOM helpers
  const $ = (id) => document.getElementById(id);
  /** Create an element; text goes in via textContent only. */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
        else if (k === "style") Object.assign(el.style, v);
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const fmt = new Intl.NumberFormat();
  const pct = (x) => (x >= 0.1 ? (x * 100).toFixed(0) : x >= 0.01 ? (x * 100).toFixed(1) : (x * 100).toFixed(2)) + "%";
  function clip(s, n) { s = s == null ? "" : String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  /** Append `text` to `parent`, wrapping case-insensitive matches of `q` in <mark> (text nodes only). */
  function highlighted(parent, text, q) {
    text = text == null ? "" : String(text);
    if (!q) { parent.append(document.createTextNode(text)); return parent; }
    const lower = text.toLowerCase();
    let i = 0;
    for (;;) {
      const j = lower.indexOf(q, i);
      if (j < 0) break;
      if (j > i) parent.append(document.createTextNode(text.slice(i, j)));
      parent.append(h("mark", { text: text.slice(j, j + q.length) }));
      i = j + q.length;
    }
    if (i < text.length) parent.append(document.createTextNode(text.slice(i)));
    return parent;
  }

  /** Like `highlighted`, for several words at once (the words of a search). */
  function highlightedAll(parent, text, tokens) {
    text = text == null ? "" : String(text);
    const words = (tokens || []).filter(Boolean);
    if (!words.length) { parent.append(document.createTextNode(text)); return parent; }
    const lower = text.toLowerCase();
    let i = 0;
    while (i < text.length) {
      let best = -1, len = 0;
      for (const w of words) { const j = lower.indexOf(w, i); if (j >= 0 && (best < 0 || j < best || (j === best && w.length > len))) { best = j; len = w.length; } }
      if (best < 0) break;
      if (best > i) parent.append(document.createTextNode(text.slice(i, best)));
      parent.append(h("mark", { text: text.slice(best, best + len) }));
      i = best + len;
    }
    if (i < text.length) parent.append(document.createTextNode(text.slice(i)));
    return parent;
  }

  const PALETTE = ["#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2", "#EECA3B", "#72B7B2", "#FF9DA6",
    "#9D755D", "#439894", "#D67195", "#88D27A", "#6F6FD8", "#F2A65A", "#2A9D8F", "#C8553D", "#8AB17D",
    "#B5838D", "#5E81AC", "#E9C46A"];
  const NOISE = "#9aa3b2";
  const OTHER = "(other)"; // the folded rest of a facet's values (data.OTHER)

