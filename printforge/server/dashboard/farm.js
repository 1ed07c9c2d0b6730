// The farm controls of the dashboard (issue 15): uploads, the queue (drag, arrows, hold,
// retry, priority), the printer panel (material, spool, the admin console), the layer view and
// the elapsed and finish times. It shares app.js's globals (state, rpc, render, esc, toast).
"use strict";

async function upload(file) {
  const r = await fetch(`/api/uploads?filename=${encodeURIComponent(file.name)}`, {
    method: "POST", body: file, headers: { Authorization: `Bearer ${state.token}` },
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || `upload refused (${r.status})`);
  return body;
}

async function loadSpools() {
  try {
    state.spools = (await rpc("spool.list")).spools;
    renderPanel();
  } catch (err) { /* spools are optional: the panel says none */ }
}

// Queue controls: each answers the job as it is now, or refuses with the server's reason.
async function jobCall(method, params) {
  try {
    const job = await rpc(method, params);
    state.jobs.set(job.job_id, { ...(state.jobs.get(job.job_id) || {}), ...job });
    if (method === "job.retry") { state.selected = job.job_id; scheduleRefresh(job.job_id, 0); }
    render();
  } catch (err) { toast(err.message); }
}

// The queue as the scheduler will take it: priority, then rank (`queue_key`).
function queueOrder() {
  const cmp = (a, b) => (a[0] - b[0]) || (a[1] - b[1]);
  return [...state.jobs.values()].filter((j) => j.state === "queued" && j.queue_key)
    .sort((a, b) => cmp(a.queue_key, b.queue_key));
}

function moveBy(id, step) {
  const q = queueOrder();
  const i = q.findIndex((j) => j.job_id === id);
  const other = q[i + step];
  if (i < 0 || !other) return;
  jobCall("job.move", step < 0 ? { job_id: id, before: other.job_id } : { job_id: id, after: other.job_id });
}

async function printerSet(method, params) {
  try {
    const p = await rpc(method, params);
    state.printers.set(p.id, { ...(state.printers.get(p.id) || {}), ...p });
    await loadSpools();
    render();
  } catch (err) { toast(`${params.printer}: ${err.message}`); }
}

async function sendConsole(name, line) {
  const log = state.consoleLogs.get(name) || [];
  state.consoleLogs.set(name, log);
  try {
    await rpc("printer.gcode", { printer: name, line });
    log.push({ line, ok: true, text: "ok" });
  } catch (err) {
    log.push({ line, ok: false, text: `refused: ${err.message}` });
  }
  while (log.length > 200) log.shift();
  renderConsoleLog();
}

// Elapsed time of a printer's job, and when it finishes if the ETA line cannot say: the
// server's `finish_at` (the file's time plan corrected by the pace) is shown there as "done at".
function timesOf(p, j) {
  const prog = p && p.progress;
  const elapsed = prog && prog.elapsed_s != null ? prog.elapsed_s : null;
  let remaining = prog && prog.eta_s != null ? prog.eta_s : null;
  if (remaining == null && j && j.eta_s != null && j.state === "printing") remaining = j.eta_s;
  const parts = [];
  if (elapsed != null) parts.push(`elapsed ${fmtDuration(elapsed)}`);
  if (!((prog && prog.finish_at) || (j && j.finish_at)) && remaining != null) {
    parts.push(`finishes about ${fmtClock(new Date(Date.now() + remaining * 1000).toISOString())}`);
  }
  return parts.join(" · ");
}

function queueControls(j, queued) {
  if (!canOperate()) return "";
  const b = (action, label, title) =>
    `<button class="btn" data-action="${action}" data-job="${esc(j.job_id)}" title="${title}" aria-label="${title}">${label}</button>`;
  if (queued) {
    return b("up", "▲", "move up") + b("down", "▼", "move down") + b("top", "⤒", "to the top")
      + (j.held ? b("release", "Release", "release") : b("hold", "Hold", "hold"));
  }
  return RETRYABLE.has(j.state) ? b("retry", "Retry", "retry") : "";
}

// The layer the view shows: the one picked with the arrows, else the one printing now.
function layerOf(j) {
  const picked = state.layerPick.get(j.job_id);
  if (picked) return picked;
  const p = j.printer && state.printers.get(j.printer);
  if (j.state === "printing" && p && p.job_id === j.job_id && p.progress && p.progress.layer) {
    return p.progress.layer;
  }
  return null; // the server's choice: the printing layer, else the top one
}

function stepLayer(id, action) {
  if (action === "layer-live") state.layerPick.delete(id);
  else {
    const shown = state.layers.get(id);
    if (!shown) return;
    const next = shown.layer + (action === "layer-next" ? 1 : -1);
    if (next < 1 || next > shown.layers) return;
    state.layerPick.set(id, next);
  }
  render();
}

// One request per layer change: the data is cached per job and layer.
async function drawLayerView(canvas, j, fresh) {
  const want = layerOf(j);
  const have = state.layers.get(j.job_id);
  if (have && (want == null ? have.auto : have.layer === want)) {
    if (fresh || !canvas.dataset.drawn) window.printforgeGraphs.drawLayer(canvas, have);
    return;
  }
  if (canvas.dataset.loading) return;
  canvas.dataset.loading = "1";
  try {
    const data = await rpc("job.layer", want == null ? { job_id: j.job_id } : { job_id: j.job_id, layer: want });
    state.layers.set(j.job_id, { ...data, auto: want == null });
    state.detailHtml = null; // draw it even if the caption reads the same
    render();
  } catch (err) { canvas.dataset.error = err.message; } finally { delete canvas.dataset.loading; }
}

// The printer panel: material, spool and (admins) the console. Drawn when it opens or changes,
// not on every status, so a choice being made or a line being typed survives the live updates.
function renderPanel() {
  const name = state.panelPrinter;
  const p = name && state.printers.get(name);
  $("#printer-panel-card").classList.toggle("hidden", !p);
  if (!p) return;
  // Material and spool are set by whoever tends the printer: the printer capability (admins).
  const tends = Boolean(state.info && (state.info.capabilities || []).includes("printer"));
  const dis = tends ? "" : 'disabled title="needs a key with the printer capability"';
  const materials = (state.info ? state.info.materials : []).map((m) =>
    `<option${m.toLowerCase() === String(p.material || "").toLowerCase() ? " selected" : ""}>${esc(m)}</option>`).join("");
  const spools = state.spools.filter((sp) => !sp.archived).map((sp) =>
    `<option value="${esc(sp.id)}"${p.spool && p.spool.id === sp.id ? " selected" : ""}>${esc(sp.name || `spool ${sp.id}`)} · ${esc(sp.material)} · ${Math.round(sp.remaining_weight)} g${sp.printer && sp.printer !== name ? ` (on ${esc(sp.printer)})` : ""}</option>`).join("");
  const consoleBox = isAdmin()
    ? `<form id="console-form" class="console" data-printer="${esc(name)}">
        <pre id="console-log" data-testid="console-log"></pre>
        <div class="answer"><input id="console-line" maxlength="200" autocomplete="off" placeholder="G28, M104 S200, G1 X10 Y10 …">
        <button class="btn" type="submit">Send</button></div>
        <p class="muted">Each line passes the G-code gate on the server, judged by the lines before it.</p></form>`
    : '<p class="muted">The console is for admin keys.</p>';
  $("#printer-panel").innerHTML = `
    <div class="row"><label>Material<select id="panel-material" ${dis}>${materials}</select></label>
      <button class="btn" ${dis} data-action="set-material" data-printer="${esc(name)}">Set material</button></div>
    <div class="row"><label>Spool<select id="panel-spool" ${dis}><option value="">none</option>${spools}</select></label>
      <button class="btn" ${dis} data-action="load-spool" data-printer="${esc(name)}">Load spool</button></div>
    <h3>Console</h3>${consoleBox}`;
  renderPanelHead();
  renderConsoleLog();
}

function renderPanelHead() {
  const p = state.panelPrinter && state.printers.get(state.panelPrinter);
  if (p) $("#panel-printer").textContent = `${p.id} · ${p.state} · ${p.material || ""}`;
}

function renderConsoleLog() {
  const el = $("#console-log");
  if (!el) return;
  const log = state.consoleLogs.get(state.panelPrinter) || [];
  el.innerHTML = log.map((l) => `<span class="${l.ok ? "ok" : "refused"}">&gt; ${esc(l.line)}\n  ${esc(l.text)}</span>`).join("\n");
  el.scrollTop = el.scrollHeight;
}

// Drag a queued row onto another: before it in its upper half, after it in its lower half.
document.addEventListener("dragstart", (e) => {
  const row = e.target.closest && e.target.closest("tr[draggable=true]");
  if (!row) return;
  state.dragging = row.dataset.job;
  e.dataTransfer.setData("text/plain", row.dataset.job);
  e.dataTransfer.effectAllowed = "move";
});
document.addEventListener("dragover", (e) => {
  if (state.dragging && e.target.closest && e.target.closest("tr[draggable=true]")) e.preventDefault();
});
document.addEventListener("drop", (e) => {
  const row = e.target.closest && e.target.closest("tr[draggable=true]");
  const id = state.dragging;
  state.dragging = null;
  if (!row || !id || row.dataset.job === id) { render(); return; }
  e.preventDefault();
  const box = row.getBoundingClientRect();
  const where = e.clientY < box.top + box.height / 2 ? "before" : "after";
  jobCall("job.move", { job_id: id, [where]: row.dataset.job });
});
document.addEventListener("dragend", () => { if (state.dragging) { state.dragging = null; render(); } });

document.addEventListener("submit", (e) => {
  if (e.target.id !== "console-form") return;
  e.preventDefault();
  const input = $("#console-line");
  const line = input.value.trim();
  if (!line) return;
  input.value = "";
  sendConsole(e.target.dataset.printer, line);
});
