// The farm dashboard: one websocket (JSON-RPC 2.0) for calls and live notifications.
"use strict";

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const ACTIVE = new Set(["researching", "designing", "slicing", "printing"]);
const STAGE_LABEL = { research: "Research", cad: "CAD", slicer: "Slice", printer: "Print" };

// A sliced job whose printer stage has not begun is still "slicing" in the state machine; say
// what it is really doing, or a queue behind a busy printer looks stuck.
function stageNote(j) {
  if (TERMINAL.has(j.state)) return "";
  const byName = Object.fromEntries((j.stages || []).map((s) => [s.name, s.state]));
  if (byName.slicer === "completed" && byName.printer === "pending") return "waiting for a printer";
  return j.live ? STAGE_LABEL[j.live.stage] || "" : "";
}

const state = {
  token: null, ws: null, nextId: 1, pending: new Map(), info: null, online: false,
  printers: new Map(), jobs: new Map(), health: null, selected: null, filter: "all",
  refreshTimers: new Map(), renderQueued: false, backoff: 500, stlCache: new Map(),
  answerDrafts: new Map(), temps: new Map(), layers: new Map(), layerPick: new Map(),
  panelPrinter: null, uploadNames: new Map(), spools: [], consoleLogs: new Map(), dragging: null,
};
const TEMP_WINDOW_MS = 10 * 60 * 1000; // the graphs show the last ten minutes
const RETRYABLE = new Set(["failed", "cancelled", "interrupted"]);
const canOperate = () => Boolean(state.info && state.info.role !== "viewer");
const isAdmin = () => Boolean(state.info && state.info.role === "admin");

// One sample per status: the server sends a printer's status at most every 0.25 s.
function recordTemps(p) {
  const t = p.temperatures;
  if (!t || (!t.hotend && !t.bed)) return;
  const list = state.temps.get(p.id) || [];
  const now = Date.now();
  const last = list[list.length - 1];
  if (last && now - last.t < 1000 && list.length > 1) list.pop(); // one point a second
  list.push({ t: now, hotend: t.hotend, bed: t.bed });
  while (list.length && now - list[0].t > TEMP_WINDOW_MS) list.shift();
  state.temps.set(p.id, list);
}

// token -------------------------------------------------------------------------------------------
function readToken() {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    localStorage.setItem("printforge.token", fromUrl);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return localStorage.getItem("printforge.token");
}

function showLogin(message) {
  $("#main").classList.add("hidden");
  $("#login").classList.remove("hidden");
  $("#login-error").textContent = message || "";
}

$("#login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("#login-key").value.trim();
  localStorage.setItem("printforge.token", state.token);
  $("#login").classList.add("hidden");
  connect();
});

// websocket ---------------------------------------------------------------------------------------
function rpc(method, params) {
  return new Promise((resolve, reject) => {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      reject(new Error("not connected"));
      return;
    }
    const id = state.nextId++;
    state.pending.set(id, { resolve, reject });
    state.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params: params || {} }));
  });
}

function setOnline(online) {
  state.online = online;
  const el = $("#conn");
  el.classList.toggle("online", online);
  el.querySelector(".label").textContent = online ? "live" : "reconnecting…";
}

async function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  let opened = false;
  ws.onopen = async () => {
    opened = true;
    state.backoff = 500;
    setOnline(true);
    $("#main").classList.remove("hidden");
    await loadAll();
  };
  ws.onmessage = (msg) => onMessage(JSON.parse(msg.data));
  ws.onclose = async () => {
    setOnline(false);
    for (const p of state.pending.values()) p.reject(new Error("connection closed"));
    state.pending.clear();
    if (!opened) {
      // The handshake is refused with 401 for a bad key; the browser cannot see the status.
      const r = await fetch("/api/auth/whoami", { headers: { Authorization: `Bearer ${state.token}` } })
        .catch(() => null);
      if (r && r.status === 401) {
        localStorage.removeItem("printforge.token");
        showLogin("That key was not accepted.");
        return;
      }
    }
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 10000);
  };
}

function onMessage(msg) {
  if (msg.id !== undefined && msg.id !== null && state.pending.has(msg.id)) {
    const p = state.pending.get(msg.id);
    state.pending.delete(msg.id);
    if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { rpc: msg.error }));
    else p.resolve(msg.result);
    return;
  }
  if (msg.method === "job.event") onJobEvent(msg.params);
  else if (msg.method === "printer.status") {
    const prev = state.printers.get(msg.params.id) || {};
    state.printers.set(msg.params.id, { ...prev, ...msg.params });
    recordTemps(msg.params);
    render();
  }
}

async function loadAll() {
  try {
    const [info, printers, jobs] = await Promise.all([
      rpc("server.info"), rpc("printer.list"), rpc("job.list", { limit: 200 }),
    ]);
    state.info = info;
    fillForm(info);
    state.printers = new Map(printers.printers.map((p) => [p.id, p]));
    printers.printers.forEach(recordTemps);
    loadSpools();
    state.jobs = new Map(jobs.jobs.map((j) => [j.job_id, j]));
    render();
    refreshHealth();
  } catch (err) {
    toast(`Could not load the farm: ${err.message}`);
  }
}

async function refreshHealth() {
  if (!state.online) return;
  try {
    state.health = await rpc("health.get");
    renderHealth();
  } catch (err) { /* shown as offline by the connection badge */ }
}
setInterval(refreshHealth, 5000);

function onJobEvent(ev) {
  let job = state.jobs.get(ev.job_id);
  if (!job) {
    job = { job_id: ev.job_id, state: ev.state, request: "…", stages: [], artifacts: {} };
    state.jobs.set(ev.job_id, job);
    scheduleRefresh(ev.job_id, 0);
  }
  job.state = ev.state;
  if (ev.stage) {
    job.live = { stage: ev.stage, progress: ev.progress, message: ev.message };
  }
  if (ev.kind === "snapshot" && ev.data && ev.data.snapshot) {
    // A picture per layer change: the detail shows the newest, near live (issue 17).
    job.vision = { ...(job.vision || {}), last_layer: ev.data.layer, last_score: ev.data.score,
      last_snapshot: `/api/jobs/${ev.job_id}/pictures/${ev.data.snapshot}` };
  }
  if (ev.kind === "diagnosis") scheduleRefresh(ev.job_id, 0);
  if (ev.kind === "state" || ev.kind === "stage.completed" || ev.kind === "stage.failed"
      || ev.kind === "stage.started") {
    scheduleRefresh(ev.job_id, 150);
  }
  render();
}

function scheduleRefresh(jobId, delay) {
  if (state.refreshTimers.has(jobId)) return;
  state.refreshTimers.set(jobId, setTimeout(async () => {
    state.refreshTimers.delete(jobId);
    try {
      const fresh = await rpc("job.get", { job_id: jobId });
      const old = state.jobs.get(jobId) || {};
      state.jobs.set(jobId, { ...fresh, live: TERMINAL.has(fresh.state) ? null : old.live });
      render();
    } catch (err) { /* the next event retries */ }
  }, delay));
}

// actions -----------------------------------------------------------------------------------------
function fillForm(info) {
  const printer = $("#req-printer"), material = $("#req-material");
  printer.innerHTML = '<option value="">any</option>' +
    info.printers.map((p) => `<option>${esc(p)}</option>`).join("");
  material.innerHTML = '<option value="">printer\'s</option>' +
    info.materials.map((m) => `<option>${esc(m)}</option>`).join("");
  const canOperate = info.role !== "viewer";
  $("#submit-btn").disabled = !canOperate;
  if (!canOperate) $("#submit-error").textContent = "This key is read-only (viewer).";
}

$("#submit-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = $("#req-file").files[0];
  const params = {
    copies: Number($("#req-copies").value || 1),
    priority: Number($("#req-priority").value || 0),
  };
  if ($("#req-printer").value) params.printer = $("#req-printer").value;
  if ($("#req-material").value) params.material = $("#req-material").value;
  $("#submit-error").textContent = "";
  $("#submit-btn").disabled = true;
  try {
    // A file goes up first; the job names the upload, never a path on the server.
    if (file) params.upload = (await upload(file)).upload;
    else params.request = $("#req-text").value.trim();
    const res = await rpc("job.submit", params);
    for (const id of res.job_ids) {
      if (!state.jobs.has(id)) {
        state.jobs.set(id, { job_id: id, state: "queued", request: params.request, stages: [],
          artifacts: {}, created_at: new Date().toISOString() });
        // The server names an upload by its sha256; this page still knows the file's name.
        if (file) state.uploadNames.set(id, file.name);
      }
      scheduleRefresh(id, 0);
    }
    state.selected = res.job_id;
    $("#req-text").value = "";
    $("#req-file").value = "";
    toast(`Job ${res.job_id} queued`);
    render();
  } catch (err) {
    $("#submit-error").textContent = err.message;
  } finally {
    $("#submit-btn").disabled = false;
  }
});

async function printerAction(name, action) {
  try {
    await rpc(`printer.${action}`, { printer: name });
  } catch (err) { toast(`${name}: ${err.message}`); }
}

async function answerJob(id) {
  const box = document.querySelector(`#answer-text[data-job="${CSS.escape(id)}"]`);
  const text = box ? box.value.trim() : "";
  if (!text) { toast("Type an answer first"); return; }
  try {
    const job = await rpc("job.answer", { job_id: id, text });
    state.answerDrafts.delete(id);
    state.jobs.set(id, job);
    render();
  } catch (err) { toast(err.message); }
}

async function cancelJob(id) {
  try {
    const job = await rpc("job.cancel", { job_id: id });
    state.jobs.set(id, job);
    render();
  } catch (err) { toast(err.message); }
}

document.addEventListener("click", (e) => {
  const t = e.target.closest("[data-action]");
  if (t) {
    e.stopPropagation();
    const { action, printer, job } = t.dataset;
    if (action === "cancel-job") cancelJob(job);
    else if (action === "answer-job") answerJob(job);
    else if (action === "hold" || action === "release") jobCall(`job.${action}`, { job_id: job });
    else if (action === "retry") jobCall("job.retry", { job_id: job });
    else if (action === "top") jobCall("job.move", { job_id: job, top: true });
    else if (action === "up") moveBy(job, -1);
    else if (action === "down") moveBy(job, 1);
    else if (action === "set-priority") {
      jobCall("job.update", { job_id: job, priority: Number($("#detail-priority").value || 0) });
    } else if (action === "layer-prev" || action === "layer-next" || action === "layer-live") {
      stepLayer(job, action);
    } else if (action === "manage") { state.panelPrinter = printer; renderPanel(); }
    else if (action === "set-material") {
      printerSet("printer.set_material", { printer, material: $("#panel-material").value });
    } else if (action === "load-spool") {
      const v = $("#panel-spool").value;
      printerSet("printer.load_spool", { printer, spool_id: v === "" ? null : Number(v) });
    } else printerAction(printer, action);
    return;
  }
  const row = e.target.closest("tr[data-job]");
  if (row) { state.selected = row.dataset.job; render(); }
  const chip = e.target.closest("[data-filter]");
  if (chip) {
    state.filter = chip.dataset.filter;
    document.querySelectorAll("[data-filter]").forEach((c) => c.classList.toggle("active", c === chip));
    render();
  }
});

// rendering ---------------------------------------------------------------------------------------
function render() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    renderStats(); renderPrinters(); renderJobs(); renderDetail(); renderPanelHead();
  });
}

function fmtDuration(s) {
  if (s === null || s === undefined) return "—";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
const badge = (s) => `<span class="badge s-${esc(s)}" data-state="${esc(s)}">${esc(s)}</span>`;
const bar = (f, done) => `<div class="bar${done ? " done" : ""}"><i style="width:${Math.round((f || 0) * 100)}%"></i></div>`;

function renderStats() {
  const jobs = [...state.jobs.values()];
  const printers = [...state.printers.values()];
  const count = (arr, pred) => arr.filter(pred).length;
  $("#topstats").innerHTML = [
    ["printers", printers.length],
    ["printing", count(printers, (p) => p.state === "printing" || p.state === "heating")],
    ["queued", count(jobs, (j) => j.state === "queued")],
    ["active jobs", count(jobs, (j) => ACTIVE.has(j.state))],
    ["completed", count(jobs, (j) => j.state === "completed")],
    ["failed", count(jobs, (j) => j.state === "failed")],
  ].map(([k, v]) => `<span>${k} <b>${v}</b></span>`).join("");
}

function temp(status, heater) {
  const t = (status.temperatures || {})[heater];
  if (!t) return "";
  const hot = t.target > 0 ? " hot" : "";
  return `<span class="${hot}">${heater} <b>${t.actual.toFixed(0)}°</b>` +
    `<span class="muted"> / ${t.target.toFixed(0)}°</span></span>`;
}

function renderPrinters() {
  const list = [...state.printers.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("#printer-count").textContent = `${list.length} attached`;
  const operate = state.info && state.info.role !== "viewer";
  const dis = operate ? "" : "disabled";
  // The printer capability (admins have it) moves any printer; an operator without it may
  // pause, resume or cancel only its own print (the server says so if not), never clear a bed.
  const tends = state.info && (state.info.capabilities || []).includes("printer");
  const disClear = tends ? "" : 'disabled title="needs a key with the printer capability"';
  $("#printers").innerHTML = list.map((p) => {
    const prog = p.progress;
    const frac = prog ? (prog.fraction ?? (prog.lines_total ? prog.lines_acked / prog.lines_total : 0)) : 0;
    const busy = ["printing", "heating", "paused"].includes(p.state);
    const controls = [];
    if (p.state === "printing" || p.state === "heating") controls.push(`<button class="btn" ${dis} data-action="pause" data-printer="${esc(p.id)}">Pause</button>`);
    if (p.state === "paused") controls.push(`<button class="btn" ${dis} data-action="resume" data-printer="${esc(p.id)}">Resume</button>`);
    if (busy) controls.push(`<button class="btn danger" ${dis} data-action="cancel" data-printer="${esc(p.id)}">Cancel</button>`);
    if (p.state === "finished") controls.push(`<button class="btn" ${disClear} data-action="confirm_bed_clear" data-printer="${esc(p.id)}">Bed is clear</button>`);
    controls.push(`<button class="btn" data-action="manage" data-printer="${esc(p.id)}">Material · console</button>`);
    const times = busy ? timesOf(p, p.job_id && state.jobs.get(p.job_id)) : "";
    const spool = p.spool ? ` · spool ${esc(p.spool.name || p.spool.id)} ${Math.round(p.spool.remaining_weight)} g` : "";
    // A simulation says so (issue 15): a job "completed" there printed nothing.
    const sim = p.simulated ? ` <span class="badge simulated" data-testid="simulated-${esc(p.id)}" title="a simulation, not hardware">simulated</span>` : "";
    return `<div class="printer" data-testid="printer-${esc(p.id)}" data-state="${esc(p.state)}" data-simulated="${p.simulated ? "true" : "false"}">
      <div class="name"><span>${esc(p.id)}</span>${badge(p.state)}${sim}</div>
      <div class="sub">${esc(p.driver)} · ${esc(p.profile || "")} · <span data-testid="material-${esc(p.id)}">${esc(p.material || "")}</span>${spool}</div>
      <div class="temps">${temp(p, "hotend")}${temp(p, "bed")}</div>
      ${window.printforgeGraphs.tempGraph(state.temps.get(p.id), esc(p.id))}
      ${busy || p.state === "finished" ? `${bar(frac, p.state === "finished")}
        <div class="sub">${p.job_id ? `job <span class="mono">${esc(p.job_id)}</span> · ` : ""}
        ${Math.round(frac * 100)}%${prog && prog.eta_s != null ? ` · ETA ${fmtDuration(prog.eta_s)}` : ""}${prog && prog.finish_at ? ` · done at <span data-testid="finish-${esc(p.id)}">${fmtClock(prog.finish_at)}</span>` : ""}</div>
        ${times ? `<div class="sub" data-testid="times-${esc(p.id)}">${esc(times)}</div>` : ""}`
        : `<div class="sub">${esc(p.message || "ready")}</div>`}
      <div class="controls">${controls.join("")}</div>
    </div>`;
  }).join("") || '<p class="muted">No printers attached.</p>';
}

function jobProgress(j) {
  if (j.state === "completed") return 1;
  if (j.state === "printing") {
    const p = j.printer && state.printers.get(j.printer);
    if (p && p.job_id === j.job_id && p.progress) return p.progress.fraction ?? j.progress ?? 0;
    if (j.live && j.live.stage === "printer") return j.live.progress ?? 0;
    return j.progress ?? 0;
  }
  return j.live && j.live.progress != null ? j.live.progress : 0;
}

function jobEta(j) {
  if (j.state === "printing") {
    const p = j.printer && state.printers.get(j.printer);
    if (p && p.job_id === j.job_id && p.progress && p.progress.eta_s != null) return p.progress.eta_s;
  }
  return TERMINAL.has(j.state) ? null : j.eta_s;
}

// When the running print should end: the printer's live figure (the file's time plan
// corrected by the observed pace), else the job view's.
function jobFinish(j) {
  if (j.state !== "printing") return null;
  const p = j.printer && state.printers.get(j.printer);
  if (p && p.job_id === j.job_id && p.progress && p.progress.finish_at) return p.progress.finish_at;
  return j.finish_at || null;
}

function fmtClock(iso) {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "—";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function visible(j) {
  switch (state.filter) {
    case "active": return ACTIVE.has(j.state);
    case "queued": return j.state === "queued";
    case "done": return TERMINAL.has(j.state) || j.state === "interrupted";
    default: return true;
  }
}

function renderJobs() {
  // The queue first, in the order it will print; then everything else, newest first.
  const queue = queueOrder();
  const inQueue = new Set(queue.map((j) => j.job_id));
  const rest = [...state.jobs.values()].filter((j) => !inQueue.has(j.job_id))
    .sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
  const jobs = [...queue, ...rest].filter(visible);
  if (state.dragging) return; // a redraw mid-drag would drop the row being dragged
  $("#jobs-empty").classList.toggle("hidden", jobs.length > 0);
  const rows = jobs.map((j) => {
    const stage = [j.held ? "held" : "", j.waiting || stageNote(j)].filter(Boolean).join(" · ");
    const queued = inQueue.has(j.job_id);
    return `<tr data-job="${esc(j.job_id)}" data-state="${esc(j.state)}" data-held="${j.held ? "true" : "false"}"
      class="${j.job_id === state.selected ? "selected" : ""}"${queued && canOperate() ? ' draggable="true"' : ""}>
      <td class="mono">${esc(j.job_id)}</td>
      <td class="req" title="${esc(j.request)}">${esc(state.uploadNames.get(j.job_id) || j.request)}</td>
      <td>${badge(j.state)}</td>
      <td>${bar(jobProgress(j), j.state === "completed")}<span class="muted" style="font-size:11px">${esc(stage)}</span></td>
      <td>${esc(j.printer || j.requested_printer || "—")}</td>
      <td>${fmtDuration(jobEta(j))}</td>
      <td class="muted">${fmtTime(j.created_at)}</td>
      <td class="qctl">${queueControls(j, queued)}</td>
    </tr>`;
  }).join("");
  // Only when something changed: a row rebuilt under the pointer breaks a drag or a click.
  if (rows !== state.jobsHtml) { $("#jobs").innerHTML = rows; state.jobsHtml = rows; }
}

function withToken(url) {
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(state.token)}`;
}

document.addEventListener("input", (e) => {
  if (e.target.id === "answer-text") state.answerDrafts.set(e.target.dataset.job, e.target.value);
});

function renderDetail() {
  const focused = document.activeElement && document.activeElement.closest("#detail") ? document.activeElement.id : null;
  const answerFocus = focused === "answer-text";
  const priorityDraft = focused === "detail-priority" ? $("#detail-priority").value : null;
  const j = state.selected && state.jobs.get(state.selected);
  $("#detail-id").textContent = j ? j.job_id : "";
  if (!j) { $("#detail").innerHTML = '<p class="muted">Select a job.</p>'; state.detailHtml = null; return; }
  const stages = (j.stages || []).map((s) => {
    const live = j.live && j.live.stage === s.name && s.state === "running" ? j.live.progress : null;
    return `<div class="stage ${esc(s.state)}" data-stage="${esc(s.name)}"><div class="t">${STAGE_LABEL[s.name] || s.name}</div>
      <div>${esc(s.state)}${s.duration_s != null ? ` · ${s.duration_s.toFixed(1)} s` : ""}${live != null ? ` · ${Math.round(live * 100)}%` : ""}</div></div>`;
  }).join("");
  const a = j.artifacts || {};
  // A picture opens full size in a new tab: the layers are a wide strip of several layers
  // side by side, which no thumbnail can show legibly.
  const full = (url, alt) =>
    `<a href="${esc(withToken(url))}" target="_blank" rel="noopener" title="open full size"><img alt="${alt}" src="${esc(withToken(url))}"></a>`;
  const model = a.preview
    ? full(a.preview, "model preview")
    : a.stl ? `<canvas width="360" height="360" data-stl="${esc(a.stl)}"></canvas>` : '<span class="muted">no model yet</span>';
  const layers = a.layers ? full(a.layers, "layer preview") : '<span class="muted">not sliced yet</span>';
  // The G-code's own paths, layer by layer: the printing one follows the printer live.
  const shown = state.layers.get(j.job_id);
  const nav = (action, label) => `<button class="btn" data-action="${action}" data-job="${esc(j.job_id)}">${label}</button>`;
  const layerView = j.gcode
    ? `<div class="preview" data-testid="layer-view" data-layer="${shown ? shown.layer : ""}" data-layers="${shown ? shown.layers : ""}">
        <canvas id="layer-canvas" width="360" height="360"></canvas>
        <span class="cap">${shown ? `layer ${shown.layer}/${shown.layers} · z ${Number(shown.z).toFixed(2)} mm${shown.current != null && shown.current === shown.layer ? " · printing" : ""}` : "layer …"}</span>
        <span class="nav">${nav("layer-prev", "◀")}${nav("layer-live", "live")}${nav("layer-next", "▶")}</span></div>`
    : "";
  const p = j.printer && state.printers.get(j.printer);
  const times = j.state === "printing" ? timesOf(p && p.job_id === j.job_id ? p : null, j) : "";
  const queueTools = canOperate() && j.state === "queued"
    ? `<div class="qtools" data-testid="queue-tools"><label>priority <input id="detail-priority" type="number" min="-100" max="100"
        value="${esc(priorityDraft ?? j.priority ?? 0)}"></label>
        <button class="btn" data-action="set-priority" data-job="${esc(j.job_id)}">Set priority</button>
        ${queueControls(j, true)}</div>`
    : canOperate() && RETRYABLE.has(j.state) ? `<div class="qtools">${queueControls(j, false)}</div>` : "";
  const v = j.vision || null;
  const camera = v && v.last_snapshot
    ? `<div class="preview" data-testid="camera-snapshot">${full(v.last_snapshot, "camera")}<span class="cap">camera · layer ${esc(v.last_layer)}${v.last_score != null ? ` · score ${Number(v.last_score).toFixed(2)}` : ""}</span></div>`
    : "";
  const d = v && v.diagnosis;
  const diagnosis = d
    ? `<div class="question" data-testid="job-diagnosis"><p><b>Failure detected</b> at layer ${esc(d.layer)}: ${esc(d.kind)} (score ${Number(d.score).toFixed(2)}, threshold ${Number(d.threshold).toFixed(2)})${d.paused ? ", print paused" : ""}.
        ${d.recovery ? `Recovery: ${esc(d.recovery.reason)}.` : ""}</p>
        ${d.url ? full(d.url, "the frame beside the twin") : ""}</div>`
    : "";
  const g = j.gcode, m = j.mesh;
  const canCancel = !TERMINAL.has(j.state) && canOperate();
  // Research asked instead of building something else: show the question and take the answer.
  const question = j.state === "needs_input" && j.question
    ? `<div class="question" data-testid="job-question"><p>${esc(j.question)}</p>
        ${canCancel ? `<div class="answer"><input id="answer-text" data-job="${esc(j.job_id)}" maxlength="2000"
          value="${esc(state.answerDrafts.get(j.job_id) || "")}"
          placeholder="Your answer, e.g. the shaft is 6 mm with a D flat">
        <button class="btn" data-action="answer-job" data-job="${esc(j.job_id)}">Answer</button></div>` : ""}</div>`
    : "";
  const html = `
    <div style="display:flex;justify-content:space-between;align-items:center;gap:8px">
      <div class="title"><b>${esc(state.uploadNames.get(j.job_id) || j.request)}</b></div>${badge(j.state)}</div>
    <div class="stages">${stages}</div>
    ${queueTools}
    ${question}
    ${diagnosis}
    <div class="previews">
      ${camera}
      ${layerView}
      <div class="preview" data-testid="model-preview">${model}<span class="cap">model</span></div>
      <div class="preview wide" data-testid="layer-preview">${layers}<span class="cap">layers · click for full size</span></div>
    </div>
    <dl class="kv">
      <dt>printer</dt><dd>${esc(j.printer || j.requested_printer || "any")}</dd>
      <dt>material</dt><dd>${esc(j.material || "printer's")}</dd>
      <dt>priority</dt><dd>${esc(j.priority ?? 0)}</dd>
      <dt>ETA</dt><dd>${fmtDuration(jobEta(j))}${jobFinish(j) ? ` · done at ${fmtClock(jobFinish(j))}` : ""}</dd>
      ${times ? `<dt>time</dt><dd data-testid="job-times">${esc(times)}</dd>` : ""}
      ${j.waiting ? `<dt>waiting</dt><dd data-testid="job-waiting">${esc(j.waiting)}</dd>` : ""}
      ${j.held ? "<dt>held</dt><dd>not dispatched until released</dd>" : ""}
      ${m ? `<dt>part</dt><dd>${m.size_mm.map((v) => v.toFixed(1)).join(" × ")} mm · ${m.triangles} triangles</dd>` : ""}
      ${g ? `<dt>G-code</dt><dd>${g.layers} layers · ${fmtDuration(g.estimated_time_s)} · ${g.filament_g.toFixed(1)} g · ${esc(g.engine)}</dd>` : ""}
      ${j.error ? `<dt>error</dt><dd class="error">${esc(j.error.message)}</dd>` : ""}
    </dl>
    <div class="links">${Object.entries(a).map(([k, url]) => `<a href="${esc(withToken(url))}" target="_blank">${esc(k)}</a>`).join("")}
      ${canCancel ? `<button class="btn danger" data-action="cancel-job" data-job="${esc(j.job_id)}">Cancel job</button>` : ""}</div>`;
  // Redrawn only when it changed (the canvases keep their pictures otherwise); then keep the
  // answer being typed, and its focus.
  const fresh = html !== state.detailHtml;
  if (fresh) { $("#detail").innerHTML = html; state.detailHtml = html; }
  const box = $("#answer-text");
  if (box && answerFocus) {
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }
  const canvas = $("#detail canvas[data-stl]");
  if (canvas && fresh) drawModel(canvas, canvas.dataset.stl);
  const lc = $("#layer-canvas");
  if (lc) drawLayerView(lc, j, fresh);
  if (priorityDraft !== null) $("#detail-priority").focus();
}

async function drawModel(canvas, url) {
  let tris = state.stlCache.get(url);
  if (!tris) {
    try {
      const r = await fetch(url, { headers: { Authorization: `Bearer ${state.token}` } });
      if (!r.ok) return;
      tris = window.printforgeStl.parseStl(await r.arrayBuffer());
      state.stlCache.set(url, tris);
    } catch (err) { return; }
  }
  window.printforgeStl.drawStl(canvas, tris);
}

function renderHealth() {
  const h = state.health;
  if (!h) return;
  const overall = $("#health-overall");
  overall.className = `badge s-${h.status}`;
  overall.textContent = h.status;
  const rows = h.components.map((c) => `<li><span><span class="comp">${esc(c.component)}</span>${esc(c.name)}</span>
    <span>${c.last_error && c.state !== "healthy" ? `<span class="err" title="${esc(c.last_error)}">${esc(c.last_error)}</span> ` : ""}${badge(c.state)}</span></li>`);
  rows.push(`<li><span><span class="comp">store</span>jobs database</span>${badge(h.store.ok ? "healthy" : "unhealthy")}</li>`);
  if (h.server) rows.push(`<li><span><span class="comp">server</span>websocket clients</span><b>${h.server.websocket_clients}</b></li>`);
  $("#health").innerHTML = rows.join("");
}

let toastTimer = null;
function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.classList.remove("hidden");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.add("hidden"), 3500);
}

state.token = readToken();
if (state.token) connect(); else showLogin();
