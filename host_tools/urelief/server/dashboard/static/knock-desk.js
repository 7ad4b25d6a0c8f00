// Silent caller, the dispatcher's side: "Silent caller" in the header texts a phone a one-time
// link (or reaches an AML incident's caller); the incident's panel shows the chat, the caller's
// camera (WebRTC answerer) and when each channel was last heard from. The map, track and
// accuracy come from the dashboard (the page's fixes are the incident's positions).
// Everything the caller typed is set with textContent.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ks = { id: null, es: null, pc: null, offerId: null, ice: [], heard: {}, frames: 0,
               lastFrame: null, view: null };
  window.knockDesk = ks;  // for the browser test

  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  };
  const time = (iso) => iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "never";

  async function api(path, body) {
    const r = await fetch(path, { method: body === undefined ? "GET" : "POST",
      credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body) });
    const out = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    if (!r.ok) throw new Error((out && typeof out.detail === "string" && out.detail) || r.statusText);
    return out;
  }

  // -- header: open a silent-caller incident for a number ---------------------------------------
  const open = el("button", { id: "knock-open", type: "button" }, "Silent caller");
  const form = el("form", { id: "knock-form", class: "knock-form", hidden: "" });
  const number = el("input", { id: "knock-number", type: "tel", placeholder: "+8210…",
                               maxlength: "20", required: "", "aria-label": "Caller's number" });
  const go = el("button", { id: "knock-send", type: "submit" }, "Text link");
  const msg = el("span", { id: "knock-msg", class: "knock-msg", role: "status" });
  form.append(number, go);
  const header = document.querySelector("#app header");
  header.insertBefore(form, header.querySelector(".spacer"));
  header.insertBefore(msg, header.querySelector(".spacer"));
  header.insertBefore(open, form);
  open.addEventListener("click", () => { form.hidden = !form.hidden; if (!form.hidden) number.focus(); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await sendLink({ msisdn: number.value.trim() }, msg);
  });

  async function sendLink(body, out) {
    out.textContent = "sending…";
    try {
      const r = await api("/api/knock", body);
      out.textContent = r.sms.ok ? `link texted to ${r.incident.caller_msisdn}`
                                 : `SMS failed: ${r.sms.error || "gateway"}`;
      form.hidden = r.sms.ok ? true : form.hidden;
      selectIncident(r.incident.id);
      return r;
    } catch (e) { out.textContent = e.message; return null; }
  }

  function selectIncident(id) {  // the dashboard selects on a click in its list
    const tryClick = (n) => {
      const li = document.querySelector(`#incidents li[data-id="${Number(id)}"]`);
      if (li) li.click(); else if (n > 0) setTimeout(() => tryClick(n - 1), 150);
    };
    tryClick(40);
  }

  // -- the incident's panel -------------------------------------------------------------------
  const panel = el("section", { id: "knock", class: "knock", hidden: "" });
  panel.append(
    el("h3", {}, "Silent caller"),
    el("p", { id: "knock-links", class: "muted" }),
    el("button", { id: "knock-link", type: "button" }, "Text the caller a link"),
    el("dl", { id: "knock-heard", class: "knock-heard" }),
    el("p", { id: "knock-video-state", class: "muted" }, "video: off (the caller starts it)"),
  );
  const video = el("video", { id: "knock-video", autoplay: "", playsinline: "", hidden: "" });
  video.muted = true;
  const chat = el("ol", { id: "knock-chat", class: "knock-chat" });
  const say = el("form", { id: "knock-say", class: "knock-say" });
  const text = el("input", { id: "knock-text", maxlength: "500", placeholder: "Message to the caller",
                             autocomplete: "off", required: "" });
  say.append(text, el("button", { id: "knock-reply", type: "submit" }, "Send"));
  panel.append(video, chat, say);
  const card = $("card");
  card.parentNode.insertBefore(panel, card.nextSibling);

  $("knock-link").addEventListener("click", () => sendLink({ incident_id: ks.id }, $("knock-links")));
  say.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = text.value.trim();
    if (!t || ks.id == null) return;
    try { addLine(await api(`/api/incidents/${ks.id}/knock/chat`, { text: t })); text.value = ""; }
    catch (e) { alert(`message: ${e.message}`); }
  });

  function addLine(m) {
    if (chat.querySelector(`li[data-id="${Number(m.id)}"]`)) return;
    const li = el("li", { "data-id": String(Number(m.id)), class: m.from === "caller" ? "caller" : "desk" });
    li.append(el("span", { class: "knock-at" }, time(m.at) + " "),
              el("strong", {}, m.from === "caller" ? "caller: " : "desk: "), el("span", {}, m.text));
    chat.appendChild(li);
    if (m.from === "caller") heard("message", m.at);
  }

  function heard(what, iso) {
    ks.heard[what] = iso || new Date().toISOString();
    renderHeard();
  }

  function renderHeard() {
    const dl = $("knock-heard");
    dl.textContent = "";
    const rows = [["page", "page open"], ["position", "position"], ["message", "message"],
                  ["video", "video frame"]];
    for (const [k, name] of rows) {
      dl.append(el("dt", {}, name), el("dd", { "data-heard": k }, time(ks.heard[k])));
    }
  }

  // Follow the dashboard's selection: it rewrites #d-title each time it loads an incident.
  new MutationObserver(() => follow(window.urelief && window.urelief.detail))
    .observe($("d-title"), { childList: true, characterData: true, subtree: true });

  function follow(d) {
    const isCaller = d && (d.source === "silent_caller" || d.caller_msisdn);
    if (!isCaller) { if (ks.id != null) leave(); panel.hidden = true; return; }
    panel.hidden = false;
    const open = ["open", "acknowledged", "dispatched"].includes(d.status);
    $("knock-link").hidden = !open;
    say.hidden = !open;
    if (d.id !== ks.id) { leave(); enter(d.id); }
    else if (!open) stopVideo("video: ended (incident closed)");
  }

  function leave() {
    if (ks.es) ks.es.close();
    stopVideo("video: off (the caller starts it)");
    ks.es = null; ks.id = null; ks.heard = {};
    chat.textContent = "";
  }

  async function enter(id) {
    ks.id = id;
    let v;
    try { v = await api(`/api/incidents/${id}/knock`); } catch (e) { return; }
    if (ks.id !== id) return;
    ks.ice = v.ice_servers || [];
    show(v);
    for (const m of v.chat) addLine(m);
    listen(id);
    if (v.video && !v.video.answered) await answer(v.video.offer_id, v.video.sdp, v.video.candidates);
    else if (v.video) api(`/api/incidents/${id}/knock/signal`, { type: "restart" }).catch(() => {});
  }

  function show(v) {
    for (const [k, iso] of Object.entries(v.heard)) if (iso) ks.heard[k] = iso;
    renderHeard();
    const links = v.links.map((l) => `${l.to} ${time(l.created_at)}` +
      (l.opened_at ? `, opened ${time(l.opened_at)}` : `, unopened (expires ${time(l.expires_at)})`));
    $("knock-links").textContent = links.length ? `link: ${links.join("; ")}` : "no link texted yet";
  }

  let relinking = null;
  function relink(id) {  // the page was opened or pinged: its link line and times
    clearTimeout(relinking);
    relinking = setTimeout(async () => {
      try { const v = await api(`/api/incidents/${id}/knock`); if (ks.id === id) show(v); } catch (e) { }
    }, 200);
  }

  function listen(id) {
    const es = ks.es = new EventSource(`/api/incidents/${id}/knock/live`);
    const on = (kind, fn) => es.addEventListener(kind, (ev) => { if (ks.id === id) fn(JSON.parse(ev.data)); });
    on("chat", addLine);
    on("position", (f) => heard("position", f.at));
    on("seen", () => { heard("page"); relink(id); });
    on("offer", (m) => answer(m.offer_id, m.sdp, []));
    on("candidate", (m) => {
      if (ks.pc && m.offer_id === ks.offerId) ks.pc.addIceCandidate(m.candidate).catch(() => {});
    });
    on("video_stopped", () => stopVideo("video: stopped by the caller"));
    on("closed", () => { stopVideo("video: ended (incident closed)"); es.close(); });
  }

  async function answer(offerId, sdp, candidates) {
    stopVideo("video: connecting…");
    const id = ks.id;
    const pc = ks.pc = new RTCPeerConnection({ iceServers: ks.ice });
    ks.offerId = offerId;
    pc.ontrack = (ev) => {
      video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      video.hidden = false;
      $("knock-video-state").textContent = "video: live";
      watchFrames(pc);
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate && ks.pc === pc) api(`/api/incidents/${id}/knock/signal`, { type: "candidate",
        offer_id: offerId, candidate: ev.candidate.toJSON() }).catch(() => {});
    };
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    try {
      await api(`/api/incidents/${id}/knock/signal`, { type: "answer", offer_id: offerId,
                                                       sdp: pc.localDescription.sdp });
    } catch (e) { stopVideo(`video: ${e.message}`); return; }
    for (const c of candidates || []) await pc.addIceCandidate(c).catch(() => {});
  }

  function watchFrames(pc) {
    const tick = () => {
      if (ks.pc !== pc) return;
      ks.frames += 1;
      const now = Date.now();
      if (!ks.lastFrame || now - ks.lastFrame > 1000) { ks.lastFrame = now; heard("video"); }
      video.requestVideoFrameCallback(tick);
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(tick);
  }

  function stopVideo(state) {
    if (ks.pc) { ks.pc.close(); ks.pc = null; }
    ks.offerId = null;
    video.srcObject = null;
    video.hidden = true;
    $("knock-video-state").textContent = state;
  }
})();
