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
  // The export stores conversations as gzip+base64 chunks after the app script; a chunk is
  // inflated (natively, DecompressionStream) the first time one of its conversations opens.
  const chunkCache = new Map();
  let idIndex = null;
  const domReady = () => new Promise((ok) => {
    if (document.readyState !== "loading") ok(); else document.addEventListener("DOMContentLoaded", ok, { once: true });
  });
  async function inflateChunk(k) {
    await domReady();
    const el = document.getElementById("kiku-chunk-" + k);
    if (!el) return [];
    const text = atob(el.textContent.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  async function embeddedConversation(id) {
    if (!idIndex) { idIndex = new Map(); embedded.bundle.ids.forEach((v, i) => idIndex.set(v, i)); }
    const i = idIndex.get(id);
    if (i === undefined) return null;
    const k = Math.floor(i / embedded.chunk_size);
    if (!chunkCache.has(k)) chunkCache.set(k, inflateChunk(k));
    const list = await chunkCache.get(k);
    return list[i - k * embedded.chunk_size] || null;
  }
  const source = {
    canExport: mode === "api",
    bundle: () => (embedded ? Promise.resolve(embedded.bundle) : getJSON("api/bundle")),
    conversation: (id) => (embedded ? embeddedConversation(id) : getJSON("api/conversations/" + encodeURIComponent(id))),
    clipNote: () => (embedded ? { message: embedded.max_message_chars, conversation: embedded.max_conversation_chars } : null),
  };

