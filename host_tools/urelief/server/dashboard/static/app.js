// U-Relief dispatcher dashboard: login, live incident list (SSE), Leaflet map with track and
// accuracy circles, subscriber card, actions, an audible + visual alarm that repeats until
// someone acknowledges.
//
// Every string from the server is put on the page as text (el()/put() build DOM nodes; no
// innerHTML anywhere), and the page's CSP forbids inline script: a hostile roster name is
// only ever a name.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { me: null, incidents: [], selected: null, detail: null, map: null, layers: null,
                audio: null, alarmCount: 0, alarmTimer: null, tilesFailed: false };
window.urelief = state;  // for the browser test and curious operators

// A DOM node: el("li", {class: "x", onclick: fn}, "text", child, …). Strings become text.
function el(tag, attrs = {}, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") n.className = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) if (k != null && k !== false) n.append(k instanceof Node ? k : String(k));
  return n;
}
const put = (id, ...kids) => $(id).replaceChildren(...kids.flat().filter((k) => k != null && k !== false));

async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts,
    headers: { "Content-Type": "application/json", ...(opts.headers || {}) } });
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (r.status === 401 && !path.startsWith("/api/auth/login")) { showLogin(); throw new Error("not logged in"); }
  if (!r.ok) throw new Error((body && (typeof body.detail === "string" ? body.detail
                                        : JSON.stringify(body.detail))) || r.statusText);
  return body;
}

const time = (iso) => iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "–";
const label = (s) => String(s ?? "").replaceAll("_", " ");
const OPEN = ["open", "acknowledged", "dispatched"];

// How old a time is, in words: "40 s", "2 min", "3 h", "2 d".
function span(seconds) {
  const s = Math.max(0, seconds);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
const FRESH_S = 10 * 60;  // a fix older than this is "last known"
function fixAge(iso) {
  if (!iso) return null;
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  return s < FRESH_S ? `${span(s)} old` : `last known ${span(s)} ago`;
}
// "±12 m, 2 min old, trusted" for an incident (or its detail).
function fixText(inc) {
  if (inc.last_lat == null) return null;
  const f = inc.summary?.fix || {};
  const acc = inc.last_accuracy_m != null ? `±${Math.round(inc.last_accuracy_m)} m` : "accuracy unknown";
  const trust = f.trusted === true ? "trusted" : f.trusted === false ? "untrusted" : null;
  return [acc, fixAge(inc.last_fix_at) || "age unknown", trust].filter(Boolean).join(", ");
}
function cellText(c) {
  if (!c) return null;
  const where = c.located ? ` (placed by the cell file, ±${c.located.range_m} m)` : "";
  return `serving cell ${c.mcc}-${c.mnc} TAC ${c.tac} CI ${c.cell_id} ${c.rat ?? ""}${where}`;
}

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

// -- alarm: repeats until acknowledged; one entry per alarming incident -----------------------
// An incident alarms while it is open (nobody acknowledged it) or when the child pressed SOS
// again after it was acknowledged (a repeat SOS), until a dispatcher clicks that entry. The
// count of SOS seen is kept in localStorage, so a reload neither forgets nor repeats an alarm.
const SEEN_KEY = "urelief.sosSeen";
const seen = JSON.parse(localStorage.getItem(SEEN_KEY) || "{}");
const saveSeen = () => localStorage.setItem(SEEN_KEY, JSON.stringify(seen));

function unlockAudio() {
  if (!state.audio) {
    try { state.audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { }
  }
  if (state.audio && state.audio.state === "suspended") state.audio.resume();
  localStorage.setItem("urelief.sound", "on");
  updateSoundPrompt();
}
document.addEventListener("click", unlockAudio);
$("sound").addEventListener("click", unlockAudio);

const soundOn = () => state.audio && state.audio.state === "running";
function updateSoundPrompt() {  // a reloaded page may not play sound until a click: ask once
  $("sound").hidden = soundOn() || alarming().length === 0;
}

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

function sosCount(inc) { return inc.summary?.sos_count ?? 1; }
function alarming() {
  return state.incidents.filter((i) => i.status === "open" || sosCount(i) > (seen[i.id] ?? 0));
}

function ring() {  // one round of the alarm; repeated every ALARM_EVERY_MS while any alarms
  const list = alarming();
  updateSoundPrompt();
  if (!list.length) return;
  state.alarmCount += 1;
  if (list.every((i) => i.is_drill)) { beep(440, 0, 0.3); return; }  // drills: one low tone
  for (let i = 0; i < 6; i++) beep(i % 2 ? 660 : 880, i * 0.25, 0.2);
}
const ALARM_EVERY_MS = 4000;

function renderAlarm() {
  const list = alarming();
  $("alarm").hidden = list.length === 0;
  put("alarm", list.map((inc) => {
    const repeat = inc.status !== "open";
    const text = `${inc.is_drill ? "DRILL" : repeat ? "REPEAT SOS" : "NEW SOS"} #${inc.id} ` +
      `${inc.child || inc.caller_msisdn || ""}`;
    return el("button", { type: "button", class: `alarm ${inc.is_drill ? "drill" : ""}`,
      "data-id": inc.id, onclick: (ev) => { ev.stopPropagation(); silence(inc); select(inc.id); } }, text);
  }));
  if (list.length && !state.alarmTimer) {
    ring();
    state.alarmTimer = setInterval(ring, ALARM_EVERY_MS);
  } else if (!list.length && state.alarmTimer) {
    clearInterval(state.alarmTimer); state.alarmTimer = null;
  }
  updateSoundPrompt();
}

function silence(inc) {  // a repeat SOS is silenced by the click; a new one by acknowledging
  seen[inc.id] = sosCount(inc); saveSeen();
  renderAlarm();
}

// -- live list --------------------------------------------------------------------------------
async function refresh() {
  const page = await api("/api/incidents?state=open&limit=200");
  state.incidents = page.items;
  for (const inc of page.items) {  // acknowledged elsewhere (or before a reload): seen
    if (inc.status !== "open" && seen[inc.id] == null) seen[inc.id] = sosCount(inc);
  }
  saveSeen();
  renderList();
  renderAlarm();
  if (state.selected) await loadDetail(state.selected);
  drawMap();  // after the detail: the selected incident's track includes this update
}

function badges(inc) {
  const s = inc.summary || {};
  return [
    inc.is_drill && el("span", { class: "badge drill" }, "DRILL"),
    el("span", { class: `badge ${inc.status}` }, label(inc.status)),
    inc.duress && el("span", { class: "badge duress" }, "DURESS"),
    sosCount(inc) > 1 && el("span", { class: "badge repeat" }, `SOS ×${sosCount(inc)}`),
    s.cancels > 0 && el("span", { class: "badge cancel" }, "CANCELLED BY CHILD"),
    s.undelivered > 0 && el("span", { class: "badge undelivered" }, "DOWNLINK UNDELIVERED"),
  ];
}

// Where the child is, or why the page may not say (no location consent in force).
function whereText(inc) {
  if (inc.location_withheld) return `position withheld: ${inc.location_withheld}`;
  return fixText(inc) || cellText(inc.summary?.cell) || "no position yet";
}
function posText(d) {
  return d.last_lat != null
    ? `${d.last_lat.toFixed(5)}, ${d.last_lon.toFixed(5)} ${fixText(d)} (fix at ${time(d.last_fix_at)})`
    : whereText(d);
}

function renderList() {
  $("count").textContent = state.incidents.length ? `(${state.incidents.length})` : "";
  $("empty").hidden = state.incidents.length > 0;
  put("incidents", state.incidents.map((inc) => el("li", {
    "data-id": inc.id, onclick: () => select(inc.id),
    class: [inc.status, inc.is_drill ? "drill" : "", inc.id === state.selected ? "selected" : ""].join(" "),
  }, el("div", {}, badges(inc), el("strong", {}, `#${inc.id}`), " ",
        el("span", { class: "who" }, inc.child || inc.caller_msisdn || "unknown")),
     el("div", { class: "muted" }, `${inc.source} · opened ${time(inc.opened_at)} · `,
        el("span", { class: "where" }, whereText(inc))))));
}

let pending = null;
function connectLive() {
  const es = new EventSource("/api/live");
  // `hello` starts every connection, a reconnect after a server restart too: what happened
  // while the stream was down is only in the list, so fetch it again.
  es.addEventListener("hello", () => {
    $("live-state").textContent = "live"; $("live-state").classList.add("on");
    refresh().catch(console.error);
  });
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
    const tiles = L.tileLayer(cfg.tile_url, { attribution: cfg.tile_attribution, maxZoom: 19 });
    tiles.on("tileerror", () => {
      state.tilesFailed = true;
      $("map").classList.add("notiles"); $("tiles-failed").hidden = false;
    });
    tiles.addTo(state.map);
  } else {
    $("map").classList.add("notiles");
    $("offline").hidden = false;
  }
  state.layers = L.layerGroup().addTo(state.map);
}

function tooltip(inc, extra) {  // an element, never a string: Leaflet would parse a string as HTML
  return el("span", { class: "tip" }, `#${inc.id} `, inc.child || inc.caller_msisdn || "",
            inc.is_drill ? " (drill)" : "", extra ? ` — ${extra}` : "");
}

function drawMap() {
  if (!state.map) return;
  state.layers.clearLayers();
  const pts = [];
  for (const inc of state.incidents) {
    const color = inc.is_drill ? "#6a1b9a" : inc.status === "open" ? "#c62828" : "#1565c0";
    const cell = inc.summary?.cell?.located;
    if (inc.last_lat == null && cell) {  // cell-only: the cell's area, dashed
      const ll = [cell.lat, cell.lon];
      pts.push(ll);
      L.circle(ll, { radius: cell.range_m || 1000, color, weight: 2, dashArray: "6 6", fillOpacity: 0.06,
                     className: `cell-area incident-${inc.id}` })
        .bindTooltip(tooltip(inc, "cell area, no GNSS fix")).on("click", () => select(inc.id))
        .addTo(state.layers);
      continue;
    }
    if (inc.last_lat == null) continue;
    const ll = [inc.last_lat, inc.last_lon];
    pts.push(ll);
    if (inc.last_accuracy_m) {
      L.circle(ll, { radius: inc.last_accuracy_m, color, weight: 1, fillOpacity: 0.12 }).addTo(state.layers);
    }
    L.circleMarker(ll, { radius: 8, color: "#fff", weight: 2, fillColor: color, fillOpacity: 1,
                         className: `incident-marker incident-${inc.id}` })
      .bindTooltip(tooltip(inc, fixText(inc)))
      .on("click", () => select(inc.id)).addTo(state.layers);
  }
  const d = state.detail;
  if (d) {
    const track = d.events.filter((e) => e.kind === "position" && e.payload.lat != null)
      .map((e) => e.payload)
      .sort((a, b) => String(a.fix_at || "").localeCompare(String(b.fix_at || "")));  // by fix time
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
  put("d-title", d.is_drill && el("span", { class: "drillbanner" }, "DRILL — not a real alert"),
      d.is_drill && el("br"), `#${d.id} `, d.child || d.caller_msisdn || "unknown caller");
  put("d-status", badges(d), d.duress && el("span", { class: "badge duress" }, "DURESS CANCEL SEEN"),
      ` ${d.source} · trigger ${d.trigger ?? "?"} · opened ${time(d.opened_at)}`);
  const open = OPEN.includes(d.status);
  const dev = open && d.device_id != null;
  const can = {
    acknowledge: d.status === "open", dispatch: open && d.status !== "dispatched" && !d.is_drill,
    question: dev && d.questions_offered !== false, locate: dev, tracking: dev, stand_down: dev, resolve: open, false_alarm: open,
    listen_in: dev && d.listen_in?.possible === true };
  const mayAct = ["dispatcher", "admin"].includes(state.me.role);
  for (const b of $("actions").querySelectorAll("button")) b.disabled = !mayAct || !can[b.dataset.action];
  // A silent call the terminal cannot make says why (no voice path, no consent, not acknowledged).
  $("listen-in").title = d.listen_in?.why || "The terminal calls the centre silently: you hear the room";
  renderCard(d);
  $("d-pos").textContent = posText(d);
  const s = d.summary || {};
  put("d-flags",
      sosCount(d) > 1 && el("span", { class: "badge repeat" }, `SOS pressed ${sosCount(d)} times`),
      s.cancels > 0 && el("span", { class: "badge cancel" }, `child cancelled (${s.cancels})`),
      d.questions_withheld && el("span", { class: "badge duress" }, `No questions: ${d.questions_withheld}`),
      s.call && el("span", { class: `badge call ${s.call.state}` }, `Silent call ${callText(s.call)}`),
      open && d.device_id != null && d.listen_in && !d.listen_in.possible &&
        el("span", { class: "muted", id: "listen-in-why" }, `Listen-in: ${d.listen_in.why}`),
      s.undelivered > 0 && el("span", { class: "badge undelivered" },
                              `${s.undelivered} downlink(s) not yet confirmed by the device: repeated until it does`));
  put("d-notes", d.notifications.length ? d.notifications.map((n) => el("li", {},
      `${n.to}${n.stage ? ` (${n.stage})` : ""}: `, el("strong", { class: `sms-${n.status}` }, n.status),
      n.attempts > 1 ? ` after ${n.attempts} attempts` : "",
      n.next_attempt_at ? `, retry at ${time(n.next_attempt_at)}` : "", n.error ? ` — ${n.error}` : ""))
    : el("li", { class: "muted" }, "none"));
  const questions = {};
  for (const e of d.events) if (e.kind === "question") questions[e.payload.question_id] = e.payload;
  put("d-events", d.events.map((e) => el("li", {
    class: e.kind === "downlink" && ["unreachable", "failed"].includes(e.payload?.channel) ? "undelivered" : null },
    `${time(e.at)} `, el("strong", {}, e.kind), " ", describe(e, questions))));
}

// An answer in words: yes / no for a yes-no question, "3 presses", or no answer.
function answerText(pl, q) {
  const n = pl.presses;
  if (n === 0) return "no answer";
  if (q && q.kind === "yes_no") return n === 1 ? "yes" : n === 2 ? "no" : `${n} presses (not yes or no)`;
  return n === 1 ? "1 press" : `${n} presses`;
}

// A silent call's state in words: "connected", "ended — centre hung up".
function callText(c) {
  return `${label(c.state)}${c.reason && c.reason !== "none" ? " — " + label(c.reason) : ""}`;
}

function describe(e, questions) {
  const pl = e.payload || {};
  if (pl.withheld) return `position withheld: ${pl.withheld}`;
  if (e.kind === "position") {
    if (pl.lat == null) return "";
    const age = pl.fix_at ? `fix at ${time(pl.fix_at)}` : "";
    return [`±${Math.round(pl.accuracy_m ?? 0)} m`, age, pl.trusted === false ? "untrusted" : "trusted"]
      .filter(Boolean).join(", ");
  }
  if (e.kind === "cell" && pl.cell) return `no fix — ${cellText(pl.cell)}${pl.cell.signal_dbm != null ? ", " + pl.cell.signal_dbm + " dBm" : ""}`;
  if (e.kind === "status") return `${pl.action ? pl.action + " → " : ""}${pl.status || ""}${pl.note ? " — " + pl.note : ""}`;
  if (e.kind === "question") return `#${pl.question_id} “${pl.text}” (${label(pl.kind)}, ${pl.choices} choices, ${pl.timeout_s} s)`;
  if (e.kind === "answer") return `#${pl.question_id}: ${answerText(pl, questions[pl.question_id])}`;
  if (e.kind === "sos") return "the child pressed SOS again";
  if (e.kind === "call") return `silent call ${callText(pl)}`;
  if (e.kind === "listen_in") return `asked: the terminal ${pl.mode === "answer" ? "answers the centre's call" : "calls the centre"}, up to ${pl.max_s} s`;
  if (e.kind === "cancel") return "the child cancelled the alert";
  if (e.kind === "duress") return "cancel under duress: keep responding";
  if (e.kind === "downlink") return `${label(pl.type)} (${label(pl.action)}) ${pl.channel === "unreachable" ? "NOT DELIVERED: device unreachable" : "sent by " + pl.channel}`;
  if (e.kind === "locate" || e.kind === "tracking") return `every ${pl.fast_interval_s || "same"} s until ${pl.fast_for_s || "same"} s after the alert`;
  if (e.kind === "notification") return `${pl.guardian || ""} ${pl.to || ""}`;
  return pl.note || "";
}

function renderCard(d) {
  const s = d.subscriber;
  if (!s) {
    put("card", d.caller_msisdn ? [el("div", { class: "child" }, `Phone ${d.caller_msisdn}`),
                                   el("div", {}, "AML caller (not a subscriber)")]
                                : el("div", {}, "Unknown device owner"));
    return;
  }
  const dev = d.device || {};
  put("card", el("div", { class: "child" }, s.full_name),
      el("div", {}, `${s.school?.name ?? ""} · class ${s.class_name ?? ""} · born ${s.birth_year ?? "?"}`),
      s.responder_notes && el("div", { class: "notes" }, s.responder_notes),
      el("div", {}, el("strong", {}, "Guardians"), el("ul", {}, (s.guardians || []).map((g) =>
        el("li", {}, `${g.name} (${g.relation ?? ""}) `, el("a", { href: `tel:${g.phone}` }, g.phone))))),
      el("div", { class: "muted" }, `device ${dev.id ?? "?"} · battery ${dev.battery_pct ?? "?"}% · seen ${time(dev.last_seen_at)}`));
}

$("actions").addEventListener("click", async (ev) => {
  const action = ev.target.dataset?.action;
  if (!action || !state.selected) return;
  if (action === "question") { $("question-form").hidden = !$("question-form").hidden; $("q-text").focus(); return; }
  if (action === "tracking") { $("tracking-form").hidden = !$("tracking-form").hidden; return; }
  await act(action, {});
});

$("question-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const kind = $("q-kind").value;
  const body = { text: $("q-text").value, kind, timeout_s: Number($("q-timeout").value) };
  if (kind === "press_n") body.choices = Number($("q-choices").value);
  await act("question", body);
  $("question-form").hidden = true;
  $("q-text").value = "";
});

$("tracking-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await act("tracking", { fast_interval_s: Number($("t-fast").value), fast_for_s: Number($("t-for").value),
                          slow_interval_s: Number($("t-slow").value) });
  $("tracking-form").hidden = true;
});

async function act(action, body) {
  try {
    await api(`/api/incidents/${state.selected}/${action}`, { method: "POST", body: JSON.stringify(body) });
    const inc = state.incidents.find((i) => i.id === state.selected);
    if (inc && ["acknowledge", "dispatch", "resolve", "false_alarm"].includes(action)) silence(inc);
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
  if (localStorage.getItem("urelief.sound") === "on") unlockAudio();  // may still need a click
  await refresh();
  connectLive();
  setInterval(() => { renderList(); if (state.detail) $("d-pos").textContent = posText(state.detail); },
              10_000);  // ages move on
}

fetch("/api/auth/me", { credentials: "same-origin" }).then((r) => r.ok ? start() : showLogin())
  .catch(showLogin);
