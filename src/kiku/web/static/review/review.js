let state = null;
const $ = (id) => document.getElementById(id);
async function call(method, url, body) {
  const response = await fetch(url, {method, headers: {"Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined});
  if (!response.ok) { $("msg").textContent = "error: " + response.status; return state; }
  return response.json();
}
function render(s) {
  state = s;
  $("progress").textContent = s.done + " / " + s.total + " reviewed (" + s.counts.accept + " accepted, " + s.counts.relabel + " relabelled, " + s.counts.reject + " rejected, " + s.counts.skip + " skipped)";
  $("fill").style.width = (s.total ? 100 * s.done / s.total : 100) + "%";
  $("gold").textContent = s.gold_path;
  $("undo").disabled = !s.can_undo;
  const labels = $("labels");
  if (!labels.childElementCount) {
    const select = $("relabel");
    select.appendChild(new Option("relabel as…", ""));
    s.labels.forEach((label, i) => {
      const button = document.createElement("button");
      button.textContent = (i < 9 ? (i + 1) + " " : "") + label;
      button.dataset.label = label;
      button.addEventListener("click", () => decide("relabel", label));
      labels.appendChild(button);
      select.appendChild(new Option(label, label));
    });
    select.addEventListener("change", () => { if (select.value) decide("relabel", select.value); select.value = ""; });
  }
  const item = s.item;
  for (const id of ["accept", "reject", "skip", "relabel"]) $(id).disabled = !item;
  if (!item) {
    $("text").innerHTML = "";
    const done = document.createElement("div"); done.className = "done"; done.textContent = "All items reviewed.";
    $("text").appendChild(done);
    $("context").textContent = ""; $("predicted").textContent = "–"; $("confidence").textContent = "";
    return;
  }
  $("text").textContent = item.text;
  $("context").textContent = item.context || "";
  $("context").style.display = item.context ? "" : "none";
  $("predicted").textContent = item.predicted_label || "(none)";
  $("confidence").textContent = item.confidence == null ? "" : "confidence " + Number(item.confidence).toFixed(2);
}
// decisions run one after another in key order, so fast typing never loses or reorders one
let chain = Promise.resolve();
function enqueue(task) { chain = chain.then(task).catch((error) => { $("msg").textContent = "error: " + error; }); }
function decide(decision, label) {
  enqueue(async () => {
    if (!state || !state.item) return;
    const id = state.item.id;
    render(await call("POST", "api/decision", {id, decision, label: label || null}));
    $("msg").textContent = "saved: " + decision + (label ? " → " + label : "");
  });
}
function undo() {
  enqueue(async () => { render(await call("POST", "api/undo")); $("msg").textContent = "undone"; });
}
$("accept").addEventListener("click", () => decide("accept"));
$("reject").addEventListener("click", () => decide("reject"));
$("skip").addEventListener("click", () => decide("skip"));
$("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "SELECT" || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "a") decide("accept");
  else if (key === "r") decide("reject");
  else if (key === "s") decide("skip");
  else if (key === "u") undo();
  else if (/^[1-9]$/.test(key) && state && Number(key) <= state.labels.length) decide("relabel", state.labels[Number(key) - 1]);
  else return;
  event.preventDefault();
});
call("GET", "api/state").then(render);
