  // ---------------------------------------------------------------- conversation viewer
  /** Back to the topic: the list where it was; focus on the card the conversation was opened from. */
  function closeConversation(restoreFocus) {
    const id = S.convId, fromCard = S.convFrom === "card";
    S.convId = null;
    renderDetails();
    $("details").scrollTop = S.listScroll || 0;
    drawMap();
    syncUrl(true);
    if (restoreFocus !== false) {
      const card = fromCard && id && $("details").querySelector('.example[data-conversation="' + CSS.escape(id) + '"]');
      (card || $("topic-title")).focus({ preventScroll: true });
    }
  }

  async function openConversation(id, from) {
    const box = $("details");
    if (!S.convId) S.listScroll = box.scrollTop; // where the list was, for the way back
    S.convId = id;
    S.convFrom = from || "";
    syncUrl(true);
    box.replaceChildren(h("div", { class: "empty-state", text: "Loading conversation…" }));
    let conv;
    try { conv = await source.conversation(id); } catch (err) { conv = null; }
    if (S.convId !== id) return;
    box.replaceChildren();
    box.scrollTop = 0;
    box.append(h("button", { class: "btn small back", type: "button", id: "back-btn", text: "← Back to " + (S.selected >= 0 ? "topic" : "overview"),
      title: "Back (Esc)", onclick: () => closeConversation() }));
    if (!conv) { box.append(h("div", { class: "empty-state", text: "This conversation could not be loaded." })); return; }
    const topics = (conv.topics || []).slice().sort((a, b) => b.level - a.level);
    const cr = h("div", { class: "crumbs" });
    topics.forEach((t, k) => {
      if (k) cr.append(h("span", { class: "sep", text: "›" }));
      const idx = S.byId.get(t.cluster_id);
      cr.append(h("button", { type: "button", text: t.name || t.cluster_id, onclick: () => selectCluster(idx === undefined ? -1 : idx) }));
    });
    const f = conv.facets || {};
    box.append(cr, h("h2", { class: "details-title", id: "conversation-title", tabindex: "-1", text: clip(f.request || conv.id, 160) }),
      h("div", { class: "muted", text: [conv.id, conv.created_at ? new Date(conv.created_at).toLocaleString() : null].filter(Boolean).join(" · ") }));
    if (f.summary) box.append(h("h3", { text: "Summary" }), h("div", { class: "summary", text: f.summary }));
    if (f.task) box.append(h("div", { class: "kv" }, h("span", { class: "k", text: "Task" }), h("span", { class: "v", text: f.task })));
    const kv = h("div", { class: "kv", id: "conversation-facets" });
    for (const [k, v] of Object.entries(f)) {
      if (["request", "summary", "task"].includes(k) || v === null || v === undefined || (Array.isArray(v) && !v.length)) continue;
      kv.append(h("span", { class: "k", text: k.startsWith("facet_") ? k.slice(6) : k.replace(/_/g, " ") }), h("span", { class: "v", text: Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v) }));
    }
    box.append(h("h3", { text: "Facets" }), kv);
    const msgs = h("div", { class: "messages", id: "messages" });
    for (const m of conv.messages || []) {
      const role = String(m.role || "");
      msgs.append(h("div", { class: "msg " + (role === "user" || role === "human" ? "user" : "assistant") },
        h("div", { class: "msg-head" }, h("span", { text: role }), h("span", { text: m.created_at ? new Date(m.created_at).toLocaleString() : "" })),
        highlightedAll(h("div", { class: "msg-body", tabindex: "0" }), m.content, S.searchTokens)));
    }
    box.append(h("h3", { text: "Messages (" + (conv.messages || []).length + ")" }), msgs);
    if (conv.clipped) {
      const c = source.clipNote() || {};
      box.append(h("p", { class: "note", id: "clipped-note", text: "This export keeps at most " + fmt.format(c.message || 0) + " characters per user message, " + fmt.format(c.reply || c.message || 0) + " per reply and " + fmt.format(c.conversation || 0) + " per conversation; this conversation was shortened. The full text is in the run folder (kiku ui)." }));
    }
    const meta = conv.metadata || {};
    const mk = Object.keys(meta);
    if (mk.length || conv.source) {
      const mkv = h("div", { class: "kv", id: "conversation-metadata" });
      for (const k of mk) { const v = meta[k]; mkv.append(h("span", { class: "k", text: k }), h("span", { class: "v", text: typeof v === "object" && v !== null ? JSON.stringify(v) : String(v) })); }
      if (conv.source) mkv.append(h("span", { class: "k", text: "source" }), h("span", { class: "v", text: conv.source + (conv.source_line ? ":" + conv.source_line : "") }));
      box.append(h("h3", { text: "Metadata" }), mkv);
    }
    drawMap();
    if (from !== "restore") { $("conversation-title").focus({ preventScroll: true }); announce("Conversation opened: " + clip(f.request || conv.id, 80)); }
    // on a phone the panel is below the map: bring the conversation into view
    if (from === "map" && window.matchMedia && window.matchMedia("(max-width: 700px)").matches) box.scrollIntoView({ block: "start" });
  }

