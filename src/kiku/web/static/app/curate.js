  // ---------------------------------------------------------------- curation (kiku edit), keyboard first
  // With a topic selected: r rename · m merge (m on the topic to merge, then m on the one to keep) ·
  // s split · p move (p on the topic, then p on its new parent) · u undo · e edit log · Esc cancel.
  // Each action appends to the run's edits.jsonl through POST api/living/edits; the page then
  // reloads so every view shows the curated tree. Served runs only (the export is read-only).
  // Not a tab, so not a registerView: it starts from whenReady (views.js), once a served run is
  // loaded. After an edit the page reloads; the URL (views.js) brings the topic back.
  const CUR = { mark: null, markKind: null };

  if (source.canExport) whenReady(() => {
    document.body.append(h("div", { id: "curate-status", class: "curate-status" }));  // read out through announce()
    document.addEventListener("keydown", onCurateKey);
    const note = sessionStorage.getItem("kiku-curate-note");
    if (note) { sessionStorage.removeItem("kiku-curate-note"); curateSay(note); }
  });

  function curateSay(text) {
    const el = $("curate-status");
    if (el) { el.textContent = text; el.hidden = !text; }
    if (text) announce(text);  // the page's one live region (views.js)
  }

  function selectedTopic() { return S.selected >= 0 ? S.clusters[S.selected] : null; }

  function onCurateKey(ev) {
    const t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey || (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT"))) return;
    const c = selectedTopic();
    if (ev.key === "Escape" && CUR.mark) { CUR.mark = null; curateSay(""); return; }
    if (ev.key === "u") { ev.preventDefault(); postEdit({ action: "undo" }, c && c.id); return; }
    if (ev.key === "e") { ev.preventDefault(); showEditLog(); return; }
    if (!c) { if ("rmsp".includes(ev.key)) curateSay("Select a topic first (click it in the tree or on the map)."); return; }
    if (ev.key === "r") {
      ev.preventDefault();
      const name = window.prompt("New name for “" + c.name + "”", c.name);
      if (name && name.trim() && name.trim() !== c.name) postEdit({ action: "rename", target: c.id, name: name.trim() }, c.id);
    } else if (ev.key === "s") {
      ev.preventDefault();
      const parts = window.prompt("Split “" + c.name + "” into how many parts?", "2");
      if (parts) postEdit({ action: "split", target: c.id, parts: Number(parts) }, null);
    } else if (ev.key === "m" || ev.key === "p") {
      ev.preventDefault();
      const kind = ev.key === "m" ? "merge" : "move";
      if (!CUR.mark || CUR.markKind !== kind) {
        CUR.mark = c; CUR.markKind = kind;
        curateSay(kind === "merge" ? "Merge “" + c.name + "” into…: select the topic to keep and press m (Esc cancels)."
                                   : "Move “" + c.name + "” under…: select its new parent and press p (Esc cancels).");
        return;
      }
      const from = CUR.mark; CUR.mark = null;
      if (from.id === c.id) { curateSay(""); return; }
      if (kind === "merge") postEdit({ action: "merge", target: c.id, others: [from.id] }, c.id);
      else postEdit({ action: "move", target: from.id, to: c.id }, from.id);
    }
  }

  async function postEdit(body, selectAfter) {
    curateSay("Saving edit…");
    let res, answer;
    try {
      res = await fetch("api/living/edits", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body) });
      answer = await res.json();
    } catch (err) { curateSay("Edit failed: " + err.message); return; }
    if (!res.ok) { curateSay("Edit refused: " + (typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail))); return; }
    const e = answer.edit;
    sessionStorage.setItem("kiku-curate-note", "Edit #" + e.seq + " " + e.action + " saved to edits.jsonl (u undoes it).");
    const p = new URLSearchParams(location.hash.slice(1));  // the topic to show after the reload
    if (selectAfter) p.set("topic", selectAfter); else p.delete("topic");
    p.delete("conv");
    const hash = p.toString();
    try { history.replaceState(null, "", location.pathname + location.search + (hash ? "#" + hash : "")); }
    catch (err) { location.hash = hash; }
    location.reload();
  }

  async function showEditLog() {
    const res = await fetch("api/living/edits", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = await res.json();
    const old = $("curate-log");
    if (old) { old.remove(); return; }
    const list = h("ol", { class: "curate-list" });
    for (const e of body.edits) list.append(h("li", { class: "edit-" + e.state, text: e.line + " — " + (e.at || "") + (e.by ? " by " + e.by : "") }));
    if (!body.edits.length) list.append(h("li", { text: "No edits yet." }));
    const help = "r rename · m merge · s split · p move · u undo · e close this list";
    $("details").prepend(h("section", { id: "curate-log", class: "curate-log", "aria-label": "Edit log" },
      h("h3", { text: "Edit log" }), list, h("p", { class: "muted", text: help })));
  }
