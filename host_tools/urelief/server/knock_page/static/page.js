// The silent caller's page: shares the phone's position, a silent chat (no sound, no
// vibration) and, when the caller taps "Show the police", camera video over WebRTC (signalled
// through the server). Caller-visible text is set with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
const base = location.pathname.replace(/\/+$/, "");  // /k/<token>
const st = { watch: null, pc: null, stream: null, offerId: null, ice: [], live: null,
             lastFix: null, ended: false, acted: false, sent: 0 };
window.knockPage = st;  // for the browser test

async function call(path, body) {
  const r = await fetch(base + path, { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  if (r.status === 404) { end(); throw new Error("gone"); }
  if (!r.ok) throw new Error(String(r.status));
  return r.json();
}

// -- hide: one tap, the page is blank (position sharing goes on; the camera stops) -------------
$("hide").addEventListener("click", () => {
  stopCamera(true);
  $("page").hidden = true;
  $("blank").hidden = false;
  document.title = "\u200b";
});

// -- the caller acted: say who is on the other side ------------------------------------------------
function acted() {
  if (st.acted) return;
  st.acted = true;
  $("who").textContent = "Police 112";
  $("who").classList.add("police");
}

// -- position ------------------------------------------------------------------------------------
function clock(t) { return new Date(t).toLocaleTimeString([], { hour12: false }); }

function startGeo() {
  if (!("geolocation" in navigator)) { geoText("Location is not available on this phone.", true); return; }
  st.watch = navigator.geolocation.watchPosition(onFix, (e) => {
    geoText(e.code === 1 ? "Location is off. Allow it so help can find you."
                         : "Looking for your location…", e.code === 1);
  }, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
}

function geoText(text, off) { $("geo").textContent = text; $("geo").classList.toggle("off", !!off); }

async function onFix(pos) {
  if (st.ended) return;
  const c = pos.coords;
  st.lastFix = { lat: c.latitude, lon: c.longitude, accuracy_m: c.accuracy, time_ms: pos.timestamp };
  if (c.heading != null && !Number.isNaN(c.heading)) st.lastFix.heading = c.heading;
  if (c.speed != null && !Number.isNaN(c.speed)) st.lastFix.speed_m_s = c.speed;
  geoText(`Sharing your location with the police (±${Math.round(c.accuracy)} m, ${clock(pos.timestamp)}).`);
  try { await call("/position", st.lastFix); st.sent += 1; } catch (e) { /* next fix retries */ }
}

// -- chat ----------------------------------------------------------------------------------------
function line(msg) {
  if (document.querySelector(`#chat li[data-id="${Number(msg.id)}"]`)) return;
  const li = document.createElement("li");
  li.dataset.id = String(Number(msg.id));
  li.className = msg.from === "caller" ? "me" : "them";
  li.textContent = msg.text;
  $("chat").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

async function say(text) {
  text = String(text || "").trim();
  if (!text || st.ended) return;
  acted();
  try { line(await call("/chat", { text })); } catch (e) { /* shown as not sent: stays in box */ }
}

$("say").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("text").value;
  $("text").value = "";
  await say(text);
});

function quick(replies) {
  const box = $("quick");
  box.textContent = "";
  for (const r of replies) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "reply";
    b.textContent = r;
    b.addEventListener("click", () => say(r));
    box.appendChild(b);
  }
}

// -- video: only after "Show the police" -----------------------------------------------------------
$("show").addEventListener("click", () => { acted(); startCamera().catch(() => {
  $("cam").hidden = false; $("cam").firstChild.textContent = "The camera could not start. ";
}); });
$("stop").addEventListener("click", () => stopCamera(true));

async function startCamera() {
  if (!st.stream) {
    st.stream = await navigator.mediaDevices.getUserMedia({ audio: false,
      video: { facingMode: "environment", width: { ideal: 640 }, height: { ideal: 480 } } });
  }
  $("show").hidden = true;
  $("cam").hidden = false;
  await offer();
}

async function offer() {
  if (st.pc) st.pc.close();
  const pc = st.pc = new RTCPeerConnection({ iceServers: st.ice });
  const id = st.offerId = crypto.getRandomValues(new Uint32Array(4)).join("").slice(0, 32);
  for (const t of st.stream.getTracks()) pc.addTrack(t, st.stream);
  pc.onicecandidate = (ev) => {
    if (ev.candidate && st.pc === pc) call("/signal", { type: "candidate", offer_id: id,
                                                       candidate: ev.candidate.toJSON() }).catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await call("/signal", { type: "offer", offer_id: id, sdp: pc.localDescription.sdp });
}

function stopCamera(tell) {
  if (st.pc) { st.pc.close(); st.pc = null; }
  if (st.stream) { for (const t of st.stream.getTracks()) t.stop(); st.stream = null; }
  $("cam").hidden = true;
  $("show").hidden = st.ended;
  if (tell && !st.ended) call("/signal", { type: "stopped" }).catch(() => {});
}

// -- live: the desk's lines, its answer and candidates, the end --------------------------------
function listen() {
  const es = st.live = new EventSource(base + "/live");
  es.addEventListener("chat", (ev) => line(JSON.parse(ev.data)));
  es.addEventListener("answer", async (ev) => {
    const m = JSON.parse(ev.data);
    if (st.pc && m.offer_id === st.offerId) await st.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
  });
  es.addEventListener("candidate", async (ev) => {
    const m = JSON.parse(ev.data);
    if (st.pc && m.offer_id === st.offerId) await st.pc.addIceCandidate(m.candidate).catch(() => {});
  });
  es.addEventListener("restart", () => { if (st.stream) offer().catch(() => {}); });
  es.addEventListener("closed", end);
}

function end() {
  if (st.ended) return;
  st.ended = true;
  if (st.watch != null) navigator.geolocation.clearWatch(st.watch);
  if (st.live) st.live.close();
  stopCamera(false);
  for (const id of ["quick", "say", "show", "geo", "intro"]) $(id).hidden = true;
  $("ended").hidden = false;
}

// -- start (also when the link is opened again) -------------------------------------------------
(async () => {
  try {
    const s = await call("/hello");
    st.ice = s.ice_servers || [];
    quick(s.quick_replies || []);
    for (const m of s.chat || []) line(m);
    if ((s.chat || []).some((m) => m.from === "caller")) acted();
  } catch (e) { return; }
  listen();
  startGeo();
  setInterval(() => { if (!st.ended) call("/ping").catch(() => {}); }, 15000);
})();
