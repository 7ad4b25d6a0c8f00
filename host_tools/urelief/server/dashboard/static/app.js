// U-Relief dispatcher dashboard: login, live incident list (SSE), Leaflet map with track and
// accuracy circles, subscriber card, actions, audible + visual alarm on a new incident.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { me: null, incidents: [], selected: null, detail: null, known: new Set(),
                first: true, map: null, layers: null, audio: null, alarmCount: 0 };
window.urelief = state;  // for the browser test and curious operators

async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts,
    headers: { "Content-Type": "application/json", ...(opts.headers || {}) } });
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (r.status === 401 && !path.startsWith("/api/auth/login")) { showLogin(); throw new Error("not logged in"); }
  if (!r.ok) throw new Error((body && (typeof body.detail === "string" ? body.detail
                                        : JSON.stringify(body.detail))) || r.statusText);
  return body;
}

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" }[c]));
}
const time = (iso) => iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "–";
const label = (s) => s.replace("_", " ");

// -- login ----------------------------------------------------------------------------------
function showLogin() { $("app").hidden = true; $("login").hidden = false; }

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  unlockAudio();
  $("login-error").textContent = "";
  try {
    await api("/api/auth/login", { method: "POST",
      body: JSON.stringify({ username: $("username").value, password: $("password").value }) });
    await start();
  } catch (e) { $("login-error").textContent = e.message; }
});

$("logout").addEventListener("click", async () => {
  try { await api("/api/auth/logout", { method: "POST" }); } catch (e) { /* already out */ }
  location.reload();
});

// -- alarm: WebAudio beeps + flashing banner --------------------------------------------------
function unlockAudio() {
  if (!state.audio) {
    try { state.audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { }
  }
  if (state.audio && state.audio.state === "suspended") state.audio.resume();
}
document.addEventListener("click", unlockAudio);

function beep(freq, start, dur) {
  const ctx = state.audio;
  if (!ctx) return;
  const osc = ctx.createOscillator(), gain = ctx.createGain();
  osc.type = "square"; osc.frequency.value = freq;
  gain.gain.setValueAtTime(0.15, ctx.currentTime + start);
  gain.gain.setValueAtTime(0, ctx.currentTime + start + dur);
  osc.connect(gain).connect(ctx.destination);
  osc.start(ctx.currentTime + start); osc.stop(ctx.currentTime + start + dur + 0.05);
}

function alarm(inc) {
  state.alarmCount += 1;
  const el = $("alarm");
  el.hidden = false;
  el.classList.toggle("drill", !!inc.is_drill);
  el.textContent = inc.is_drill ? `DRILL #${inc.id}` : `NEW SOS #${inc.id} ${inc.child || ""}`;
  el.onclick = () => { el.hidden = true; select(inc.id); };
  if (inc.is_drill) { beep(440, 0, 0.3); return; }  // drills: one low tone, no siren
  for (let i = 0; i < 6; i++) beep(i % 2 ? 660 : 880, i * 0.25, 0.2);
}

// -- live list --------------------------------------------------------------------------------
async function refresh() {
  const page = await api("/api/incidents?state=open&limit=200");
  state.incidents = page.items;
  for (const inc of page.items) {
    if (!state.known.has(inc.id)) {
      state.known.add(inc.id);
      if (!state.first) alarm(inc);
    }
  }
  state.first = false;
  renderList();
  if (state.selected) await loadDetail(state.selected);
  drawMap();  // after the detail: the selected incident's track includes this update
}

function renderList() {
  const ul = $("incidents");
  ul.innerHTML = "";
  $("count").textContent = state.incidents.length ? `(${state.incidents.length})` : "";
  $("empty").hidden = state.incidents.length > 0;
  for (const inc of state.incidents) {
    const li = document.createElement("li");
    li.dataset.id = inc.id;
    li.className = [inc.status, inc.is_drill ? "drill" : "", inc.id === state.selected ? "selected" : ""].join(" ");
    li.innerHTML = `<div>${inc.is_drill ? '<span class="badge drill">DRILL</span>' : ""}` +
      `<span class="badge ${inc.status}">${esc(label(inc.status))}</span>` +
      (inc.duress ? '<span class="badge duress">DURESS</span>' : "") +
      `<strong>#${inc.id}</strong> ${esc(inc.child || inc.caller_msisdn || "unknown")}</div>` +
      `<div class="muted">${esc(inc.source)} · opened ${time(inc.opened_at)} · ` +
      `${inc.last_accuracy_m != null ? "±" + Math.round(inc.last_accuracy_m) + " m" : "no fix"}</div>`;
    li.addEventListener("click", () => select(inc.id));
    ul.appendChild(li);
  }
}

let pending = null;
function connectLive() {
  const es = new EventSource("/api/live");
  es.addEventListener("hello", () => { $("live-state").textContent = "live"; $("live-state").classList.add("on"); });
  es.addEventListener("incident", () => {
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch(console.error), 80);
  });
  es.addEventListener("resync", () => refresh().catch(console.error));
  es.onerror = () => { $("live-state").textContent = "reconnecting…"; $("live-state").classList.remove("on"); };
}

// -- map --------------------------------------------------------------------------------------
async function initMap() {
  const cfg = await (await fetch("/dashboard/config.json")).json();
  state.map = L.map("map", { zoomControl: true }).setView([37.5665, 126.978], 12);
  if (cfg.tile_url) {
    L.tileLayer(cfg.tile_url, { attribution: cfg.tile_attribution, maxZoom: 19 }).addTo(state.map);
  } else {
    $("map").classList.add("notiles");
    $("offline").hidden = false;
  }
  state.layers = L.layerGroup().addTo(state.map);
}

function drawMap() {
  if (!state.map) return;
  state.layers.clearLayers();
  const pts = [];
  for (const inc of state.incidents) {
    if (inc.last_lat == null) continue;
    const color = inc.is_drill ? "#6a1b9a" : inc.status === "open" ? "#c62828" : "#1565c0";
    const ll = [inc.last_lat, inc.last_lon];
    pts.push(ll);
    if (inc.last_accuracy_m) {
      L.circle(ll, { radius: inc.last_accuracy_m, color, weight: 1, fillOpacity: 0.12 }).addTo(state.layers);
    }
    L.circleMarker(ll, { radius: 8, color: "#fff", weight: 2, fillColor: color, fillOpacity: 1,
                         className: `incident-marker incident-${inc.id}` })
      .bindTooltip(`#${inc.id} ${inc.child || ""}${inc.is_drill ? " (drill)" : ""}`)
      .on("click", () => select(inc.id)).addTo(state.layers);
  }
  const d = state.detail;
  if (d) {
    const track = d.events.filter((e) => e.kind === "position" && e.payload.lat != null)
      .map((e) => e.payload);
    if (track.length > 1) {
      L.polyline(track.map((t) => [t.lat, t.lon]), { color: "#1f2933", weight: 3, dashArray: "4 4",
                                                     className: "incident-track" }).addTo(state.layers);
    }
    for (const t of track) {
      if (t.accuracy_m) L.circle([t.lat, t.lon], { radius: t.accuracy_m, color: "#52606d", weight: 1,
                                                   fillOpacity: 0.05 }).addTo(state.layers);
      L.circleMarker([t.lat, t.lon], { radius: 3, color: "#1f2933" }).addTo(state.layers);
    }
  }
  const focus = d && d.last_lat != null ? [[d.last_lat, d.last_lon]] : pts;
  if (focus.length === 1) state.map.setView(focus[0], Math.max(state.map.getZoom(), 17));
  else if (focus.length > 1) state.map.fitBounds(focus, { padding: [40, 40], maxZoom: 16 });
}

// -- detail -----------------------------------------------------------------------------------
async function select(id) {
  state.selected = id;
  renderList();
  await loadDetail(id);
  drawMap();
}

async function loadDetail(id) {
  let d;
  try { d = await api(`/api/incidents/${id}`); } catch (e) { return; }
  state.detail = d;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail").classList.toggle("drill", d.is_drill);
  $("d-title").innerHTML = `${d.is_drill ? '<span class="drillbanner">DRILL — not a real alert</span><br>' : ""}` +
    `#${d.id} ${esc(d.child || d.caller_msisdn || "unknown caller")}`;
  $("d-status").innerHTML = `<span class="badge ${d.status}">${esc(label(d.status))}</span>` +
    (d.duress ? '<span class="badge duress">DURESS CANCEL SEEN</span>' : "") +
    ` ${esc(d.source)} · trigger ${esc(d.trigger)} · opened ${time(d.opened_at)}`;
  const open = ["open", "acknowledged", "dispatched"].includes(d.status);
  const can = {
    acknowledge: d.status === "open", dispatch: open && d.status !== "dispatched" && !d.is_drill,
    question: open && d.device_id != null, stand_down: open && d.device_id != null,
    resolve: open, false_alarm: open };
  const mayAct = ["dispatcher", "admin"].includes(state.me.role);
  for (const b of $("actions").querySelectorAll("button")) b.disabled = !mayAct || !can[b.dataset.action];
  renderCard(d);
  $("d-pos").textContent = d.last_lat != null
    ? `${d.last_lat.toFixed(5)}, ${d.last_lon.toFixed(5)} ±${Math.round(d.last_accuracy_m ?? 0)} m at ${time(d.last_fix_at)}`
    : "no position yet";
  $("d-notes").innerHTML = d.notifications.map((n) =>
    `<li>${esc(n.to)}: <strong class="sms-${n.status}">${esc(n.status)}</strong>${n.error ? " — " + esc(n.error) : ""}</li>`).join("") ||
    '<li class="muted">none</li>';
  $("d-events").innerHTML = d.events.map((e) => `<li>${time(e.at)} <strong>${esc(e.kind)}</strong> ` +
    `${esc(describe(e))}</li>`).join("");
}

function describe(e) {
  const pl = e.payload || {};
  if (e.kind === "position") return pl.lat != null ? `±${Math.round(pl.accuracy_m ?? 0)} m${pl.trusted === false ? " (untrusted)" : ""}` : "";
  if (e.kind === "cell" && pl.cell) return `no fix — serving cell ${pl.cell.mcc}-${pl.cell.mnc} TAC ${pl.cell.tac} CI ${pl.cell.cell_id} (${pl.cell.rat}${pl.cell.signal_dbm != null ? ", " + pl.cell.signal_dbm + " dBm" : ""})`;
  if (e.kind === "status") return `${pl.action ? pl.action + " → " : ""}${pl.status || ""}${pl.note ? " — " + pl.note : ""}`;
  if (e.kind === "question") return `#${pl.question_id} “${pl.text}” (${label(pl.kind)})`;
  if (e.kind === "answer") return `#${pl.question_id}: ${pl.presses === 0 ? "no answer" : pl.presses + " press(es)"}`;
  if (e.kind === "notification") return `${pl.guardian || ""} ${pl.to || ""}`;
  return pl.note || "";
}

function renderCard(d) {
  const s = d.subscriber;
  if (!s) { $("card").innerHTML = d.caller_msisdn ? `<div class="child">Phone ${esc(d.caller_msisdn)}</div><div>AML caller (not a subscriber)</div>` : "<div>Unknown device owner</div>"; return; }
  const dev = d.device || {};
  $("card").innerHTML = `<div class="child">${esc(s.full_name)}</div>` +
    `<div>${esc(s.school.name)} · class ${esc(s.class_name)} · born ${esc(s.birth_year ?? "?")}</div>` +
    (s.responder_notes ? `<div class="notes">${esc(s.responder_notes)}</div>` : "") +
    `<div><strong>Guardians</strong><ul>${s.guardians.map((g) =>
      `<li>${esc(g.name)} (${esc(g.relation)}) <a href="tel:${esc(g.phone)}">${esc(g.phone)}</a></li>`).join("")}</ul></div>` +
    `<div class="muted">device ${dev.id ?? "?"} · battery ${dev.battery_pct ?? "?"}% · seen ${time(dev.last_seen_at)}</div>`;
}

$("actions").addEventListener("click", async (ev) => {
  const action = ev.target.dataset?.action;
  if (!action || !state.selected) return;
  if (action === "question") { $("question-form").hidden = !$("question-form").hidden; $("q-text").focus(); return; }
  await act(action, {});
});

$("question-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await act("question", { text: $("q-text").value, kind: $("q-kind").value });
  $("question-form").hidden = true;
  $("q-text").value = "";
});

async function act(action, body) {
  try {
    await api(`/api/incidents/${state.selected}/${action}`, { method: "POST", body: JSON.stringify(body) });
    $("alarm").hidden = true;
    await refresh();
    if (!state.incidents.some((i) => i.id === state.selected)) await loadDetail(state.selected);
  } catch (e) { alert(`${label(action)}: ${e.message}`); }
}

// -- start ------------------------------------------------------------------------------------
async function start() {
  state.me = await api("/api/auth/me");
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = `${state.me.username} (${state.me.role})`;
  if (!state.map) await initMap();
  state.map.invalidateSize();
  await refresh();
  connectLive();
}

fetch("/api/auth/me", { credentials: "same-origin" }).then((r) => r.ok ? start() : showLogin())
  .catch(showLogin);
