// edgemo live dashboard. Plain JS, no build step, no external assets.
//
// Connects to the WebRTC sink (publish/webrtc) WHEP-style: creates the
// ordered data channels "trees" (one edgemo.tree/v1 JSON object per message)
// and "events" (track lifecycle and camera status), POSTs the offer to
// api/webrtc and applies the answer. Reconnects with backoff.
//
// Page URL options:
//   ?camera=cam1,cam2   only these cameras (server-side filter)
//   ?compact=1          emotion + timeline only (small kiosk screens)
//   ?stale=8&expire=30  seconds without a tree before a card dims / is removed
//   #token=SECRET       bearer token for signalling (kept in localStorage)
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const CAMERA_FILTER = params.get("camera") || "";
  const STALE_MS = 1000 * (Number(params.get("stale")) || 8);
  const EXPIRE_MS = 1000 * (Number(params.get("expire")) || 30);
  const ENDED_MS = 2500; // an ended track's card fades this long, then goes
  const HISTORY = 60; // windows kept per face for the timeline
  if (params.get("compact")) document.body.classList.add("compact");

  const hashToken = new URLSearchParams(location.hash.slice(1)).get("token");
  if (hashToken) {
    try { localStorage.setItem("edgemo.token", hashToken); } catch (_) { /* private mode */ }
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = () => {
    try { return hashToken || localStorage.getItem("edgemo.token") || ""; } catch (_) { return hashToken || ""; }
  };

  // Colours per label: emotion categories and the expression labels that map to them.
  const COLORS = {
    happiness: "#e9b10c", happy: "#e9b10c",
    sadness: "#3b82d6", sad: "#3b82d6",
    anger: "#e0434b", angry: "#e0434b",
    fear: "#8e55c9",
    disgust: "#2e9e66",
    surprise: "#f0761a",
    contempt: "#0f9a8f",
    neutral: "#8a8f99",
  };
  const color = (label) => COLORS[(label || "").toLowerCase()] || "#7a6fd0";
  const TREND = { rising: "▲ rising", steady: "▶ steady", falling: "▼ falling" };
  const pct = (x) => (x == null || isNaN(x) ? "–" : Math.round(100 * x) + "%");

  // --- DOM helpers (text only: tree strings are never parsed as HTML) ---------
  const h = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  };

  // The per camera strip (strip.js, loaded first).
  const { makeStrip, renderStrip, dur } = window.edgemoStrip({ h, pct, color, facesNow: (c) => facesNow(c) });

  const $status = document.getElementById("status");
  const $statusText = document.getElementById("status-text");
  const $stats = document.getElementById("stats");
  const $cameras = document.getElementById("cameras");
  const $empty = document.getElementById("empty");

  function setStatus(state, text) {
    $status.dataset.state = state;
    $statusText.textContent = text;
  }

  // --- state ---------------------------------------------------------------
  const cameras = new Map(); // camera -> {el, grid, count, badge}
  const faces = new Map(); // "camera/track" -> face
  let received = 0;
  const seen = new Set(); // "camera/track" of every tree received (tests)
  const recent = []; // arrival times, for the rate

  function cameraSection(name) {
    let c = cameras.get(name);
    if (c) return c;
    const el = h("section", "camera");
    el.dataset.camera = name;
    const title = h("h2");
    title.append(h("span", "name", name));
    const badge = h("span", "badge hidden");
    const count = h("span", "count");
    title.append(badge, count);
    const strip = makeStrip();
    const grid = h("div", "grid");
    el.append(title, strip.el, grid);
    // keep cameras in name order
    const after = [...cameras.keys()].sort().find((k) => k > name);
    $cameras.insertBefore(el, after ? cameras.get(after).el : null);
    c = { el, grid, count, badge, strip, name, facesNow: null, audience: null, scene: null };
    cameras.set(name, c);
    $empty.classList.add("hidden");
    return c;
  }

  function makeCard(camera, track) {
    const el = h("article", "card");
    el.dataset.camera = camera;
    el.dataset.track = String(track);
    const head = h("div", "head");
    const trackEl = h("span", "track", "Face " + track);
    const attrs = h("span", "attrs");
    const age = h("span", "age");
    const presence = h("span", "presence");
    head.append(trackEl, attrs, presence, age);

    const emo = h("div", "emotion");
    const label = h("div", "emotion-label", "…");
    const conf = h("div", "conf");
    const fine = h("div", "fine");
    const trend = h("div", "trend");
    const rationale = h("p", "rationale");
    emo.append(label, conf, fine, trend, rationale);

    const timeline = h("canvas", "timeline");
    timeline.setAttribute("aria-label", "emotion timeline, oldest left");

    const details = h("div", "details cols");
    const exprBox = h("div", "expr");
    const exprHead = h("div", "expr-head");
    const exprTitle = h("h3", null, "Expression");
    const exprLabel = h("span", "label");
    const va = h("span", "va");
    exprHead.append(exprLabel, va);
    const scores = h("div", "bars scores");
    exprBox.append(exprTitle, exprHead, scores);
    const cueBox = h("div", "cuebox");
    const cues = h("div", "bars cues");
    cueBox.append(h("h3", null, "Cues"), cues);
    details.append(exprBox, cueBox);
    const attrBox = h("div", "details attrbox");
    const attrList = h("div", "attrlist");
    attrBox.append(h("h3", null, "Attributes"), attrList);

    const foot = h("footer");
    el.append(head, emo, timeline, details, attrBox, foot);
    return { el, trackEl, attrs, age, presence, label, conf, fine, trend, rationale, timeline, exprBox, exprLabel, va, scores,
      cueBox, cues, attrList, foot, attrBox };
  }

  function onTree(text) {
    let t;
    try { t = JSON.parse(text); } catch (e) { console.warn("not JSON", e); return; }
    if (!t || t.camera == null || t.track_id == null) return;
    received++;
    const now = performance.now();
    recent.push(now);
    const key = t.camera + "/" + t.track_id;
    seen.add(key);
    let f = faces.get(key);
    if (!f) {
      const cam = cameraSection(t.camera);
      f = { camera: t.camera, track: t.track_id, history: [], ui: makeCard(t.camera, t.track_id) };
      faces.set(key, f);
      // keep cards in track order
      const next = [...cam.grid.children].find((c) => Number(c.dataset.track) > t.track_id);
      cam.grid.insertBefore(f.ui.el, next || null);
      updateCounts(t.camera);
    }
    f.ended = false;
    f.lost = false;
    f.last = now;
    if (f.tree?.id !== t.id) {
      const emo = t.emotion || {};
      const expr = t.expression || {};
      f.history.push({ label: emo.label || expr.label || "", conf: emo.confidence ?? expr.confidence ?? 0 });
      if (f.history.length > HISTORY) f.history.shift();
    }
    f.tree = t;
    f.dirty = true;
    if (t.scene) {
      const cam = cameras.get(t.camera);
      if (cam) { cam.scene = t.scene; cam.dirty = true; }
    }
    schedule();
  }

  function onEvent(text) {
    let e;
    try { e = JSON.parse(text); } catch (_) { return; }
    if (e.type === "status" && e.camera) {
      const c = cameraSection(e.camera);
      c.badge.textContent = e.status;
      c.badge.dataset.status = e.status;
      c.badge.classList.remove("hidden");
    } else if (e.type === "faces" && e.camera) {
      const c = cameraSection(e.camera);
      c.facesNow = e.faces || 0;
      c.dirty = true;
      updateCounts(e.camera);
      schedule();
    } else if (e.type === "audience" && e.audience) {
      const c = cameraSection(e.camera);
      c.audience = e.audience;
      c.dirty = true;
      schedule();
    } else if (e.type === "track" && e.event) {
      const f = faces.get(e.event.camera + "/" + e.event.track_id);
      if (!f) return;
      if (e.event.type === "end") { f.ended = true; f.endedAt = performance.now(); }
      if (e.event.type === "lost") f.lost = true;
      if (e.event.type === "new") f.lost = false;
      f.dirty = true;
      schedule();
    }
  }

  let scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; renderDirty(); });
  }

  function renderDirty() {
    for (const f of faces.values()) if (f.dirty) { f.dirty = false; render(f); }
    for (const c of cameras.values()) if (c.dirty) { c.dirty = false; renderStrip(c); }
  }

  function bars(box, rows) {
    // rows: [{name, sub, value (0..1), color, cls}]
    while (box.children.length > rows.length * 3) box.lastChild.remove();
    rows.forEach((r, i) => {
      let name = box.children[i * 3], bar, val;
      if (!name) {
        name = h("span", "name"); bar = h("span", "bar"); bar.append(h("i")); val = h("span", "val");
        box.append(name, bar, val);
      } else { bar = name.nextSibling; val = bar.nextSibling; }
      name.textContent = r.name;
      if (r.sub) { const s = h("small", null, " " + r.sub); name.append(s); }
      name.className = "name" + (r.cls ? " " + r.cls : "");
      bar.firstChild.style.width = Math.max(0, Math.min(1, r.value)) * 100 + "%";
      bar.style.setProperty("--c", r.color || "var(--muted)");
      val.textContent = r.text ?? pct(r.value);
    });
  }

  function render(f) {
    const t = f.tree, u = f.ui;
    const emo = t.emotion || {}, expr = t.expression || {}, attr = t.attributes;
    const mainLabel = emo.label || expr.label || "unknown";
    const c = color(mainLabel);
    u.el.style.setProperty("--c", c);
    u.el.dataset.emotion = mainLabel;
    u.el.classList.toggle("ended", !!f.ended);
    u.label.textContent = mainLabel;
    u.conf.textContent = emo.label ? pct(emo.confidence) : pct(expr.confidence);
    u.fine.textContent = emo.fine && emo.fine !== emo.label ? emo.fine : (emo.label ? "" : "expression only");
    u.trend.textContent = TREND[emo.trend] || "";
    u.trend.dataset.trend = emo.trend || "";
    u.trend.title = emo.trend || "";
    u.rationale.textContent = emo.rationale || "";
    u.rationale.classList.toggle("hidden", !emo.rationale);

    // presence: dwell, the window's attention, looking now
    const fc = t.face || {};
    const pr = [];
    if (fc.dwell_s != null) pr.push("dwell " + dur(fc.dwell_s));
    if (fc.attention != null) pr.push("attention " + pct(fc.attention));
    u.presence.textContent = pr.join(" · ");
    u.presence.dataset.looking = fc.looking == null ? "" : String(fc.looking);
    u.presence.title = fc.looking == null ? "" : (fc.looking ? "looking at the camera" : "looking away");

    // attributes: age and gender as chips in the header, every attribute
    // with its confidence in the detail row
    u.attrs.replaceChildren();
    const chips = [];
    if (attr) {
      if (attr.age) { u.attrs.append(h("span", "chip", "~" + Math.round(attr.age.value) + " y")); chips.push(["age ~" + Math.round(attr.age.value), attr.age.confidence]); }
      if (attr.gender) { u.attrs.append(h("span", "chip", attr.gender.value)); chips.push([attr.gender.value, attr.gender.confidence]); }
      if (attr.liveness) chips.push([attr.liveness.value, attr.liveness.confidence]);
      for (const o of attr.other || []) chips.push([o.name + ": " + o.value, o.confidence]);
      if (attr.head_pose) {
        const p = attr.head_pose;
        chips.push([`yaw ${p.yaw.toFixed(0)}° · pitch ${p.pitch.toFixed(0)}° · roll ${p.roll.toFixed(0)}°`, null]);
      }
    }
    u.attrList.replaceChildren(...chips.map(([text, conf]) => {
      const c = h("span", "chip", text);
      if (conf != null) c.append(h("small", null, " " + pct(conf)));
      return c;
    }));
    u.attrBox.classList.toggle("hidden", chips.length === 0);

    // expression: label, valence/arousal, per-label scores (sorted), cues
    u.exprLabel.textContent = expr.label ? `${expr.label} ${pct(expr.confidence)}` : "–";
    const va = [];
    if (expr.valence != null) va.push("valence " + expr.valence.toFixed(2));
    if (expr.arousal != null) va.push("arousal " + expr.arousal.toFixed(2));
    u.va.textContent = va.join(" · ");
    const scores = Object.entries(expr.scores || {}).sort((a, b) => b[1] - a[1]);
    bars(u.scores, scores.map(([k, v], i) => ({ name: k, value: v, color: color(k), cls: i === 0 ? "top-score" : "" })));
    bars(u.cues, (expr.cues || []).map((q) => ({ name: q.name.replace(/_/g, " "), sub: q.au || "", value: q.intensity, color: c })));
    u.cueBox.classList.toggle("hidden", !(expr.cues || []).length);

    const s = t.source || {};
    u.foot.replaceChildren(
      h("span", null, s.engine || ""),
      h("span", null, s.model || ""),
      h("span", null, (s.provider || "").replace("ExecutionProvider", "")),
      h("span", null, s.latency_ms != null ? s.latency_ms.toFixed(1) + " ms" : ""),
      h("span", null, t.window?.end ? new Date(t.window.end).toLocaleTimeString() : ""),
    );
    drawTimeline(u.timeline, f.history);
  }

  function drawTimeline(cv, hist) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(cv.clientWidth * dpr)), ht = Math.max(1, Math.round(cv.clientHeight * dpr));
    if (cv.width !== w || cv.height !== ht) { cv.width = w; cv.height = ht; }
    const g = cv.getContext("2d");
    g.clearRect(0, 0, w, ht);
    const slot = w / HISTORY, gap = Math.min(2 * dpr, slot * 0.2);
    const x0 = w - hist.length * slot; // newest at the right
    hist.forEach((p, i) => {
      const x = x0 + i * slot;
      const barH = Math.max(0.15, Math.min(1, p.conf || 0)) * ht;
      g.globalAlpha = 0.25;
      g.fillStyle = color(p.label);
      g.fillRect(x, 0, slot - gap, ht);
      g.globalAlpha = 1;
      g.fillRect(x, ht - barH, slot - gap, barH);
    });
    g.globalAlpha = 1;
  }

  // Faces now: the camera's own count (its "faces" events) once one came,
  // else its cards of tracks that have not ended or been lost. Never the
  // cards kept on screen after their track ended.
  function facesNow(c) {
    if (c.facesNow != null) return c.facesNow;
    let n = 0;
    for (const f of faces.values()) if (f.camera === c.name && !f.ended && !f.lost) n++;
    return n;
  }

  function updateCounts(camera) {
    const c = cameras.get(camera);
    if (!c) return;
    const n = facesNow(c);
    c.count.textContent = n === 1 ? "1 face now" : n + " faces now";
    c.count.dataset.faces = String(n);
  }

  // Expiry, ages and the rate, once a second.
  setInterval(() => {
    const now = performance.now();
    for (const [key, f] of faces) {
      const idle = now - f.last;
      if (idle > EXPIRE_MS || (f.ended && now - f.endedAt > ENDED_MS)) {
        f.ui.el.remove();
        faces.delete(key);
        continue;
      }
      f.ui.el.classList.toggle("stale", idle > STALE_MS || f.lost);
      f.ui.age.textContent = idle < 1500 ? "now" : Math.round(idle / 1000) + " s ago";
    }
    for (const [name, c] of cameras) {
      if (c.grid.children.length === 0 && c.badge.classList.contains("hidden")) { c.el.remove(); cameras.delete(name); }
    }
    $empty.classList.toggle("hidden", faces.size > 0);
    while (recent.length && now - recent[0] > 5000) recent.shift();
    let inView = 0;
    for (const [name, c] of cameras) { updateCounts(name); renderStrip(c); inView += facesNow(c); }
    $stats.textContent = `${inView} ${inView === 1 ? "face" : "faces"} now · ${(recent.length / 5).toFixed(1)} trees/s · ${received} total`;
    $stats.dataset.faces = String(inView);
  }, 1000);
  window.addEventListener("resize", () => { for (const f of faces.values()) f.dirty = true; schedule(); });

  // --- WebRTC connection with auto-reconnect -----------------------------------
  const api = new URL("api/webrtc", document.baseURI);
  if (CAMERA_FILTER) api.searchParams.set("camera", CAMERA_FILTER);
  let session = null; // {pc, url, gen}
  let gen = 0;
  let backoff = 1000;
  let retryTimer = null;
  let connects = 0; // data channels opened (1 + reconnects)

  function headers(extra) {
    const hd = Object.assign({}, extra);
    const tok = token();
    if (tok) hd.Authorization = "Bearer " + tok;
    return hd;
  }

  function hangUp(keepalive, serverGone) {
    const s = session;
    session = null;
    if (!s) return;
    try { s.pc.close(); } catch (_) { /* already closed */ }
    if (s.url && !serverGone) fetch(s.url, { method: "DELETE", headers: headers(), keepalive }).catch(() => {});
  }

  function retry(why, serverGone) {
    if (retryTimer) return;
    hangUp(false, serverGone);
    const wait = backoff * (0.8 + 0.4 * Math.random());
    backoff = Math.min(backoff * 2, 10000);
    setStatus(why.startsWith("401") ? "error" : "reconnecting",
      (why.startsWith("401") ? "unauthorized: open this page with #token=… · " : "reconnecting: " + why + " · ") +
      "retry in " + Math.round(wait / 1000) + " s");
    retryTimer = setTimeout(() => { retryTimer = null; connect(); }, wait);
  }

  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
      });
    });
  }

  async function connect() {
    const my = ++gen;
    const live = () => my === gen && session && session.gen === my;
    setStatus("connecting", "connecting…");
    const pc = new RTCPeerConnection({ iceServers: [] });
    session = { pc, url: null, gen: my };
    const trees = pc.createDataChannel("trees", { ordered: true });
    const events = pc.createDataChannel("events", { ordered: true });
    trees.onmessage = (e) => onTree(e.data);
    events.onmessage = (e) => onEvent(e.data);
    trees.onopen = () => { if (live()) { connects++; backoff = 1000; setStatus("live", "live"); } };
    // The server drops a viewer whose "trees" closes: no DELETE needed.
    trees.onclose = () => { if (live()) retry("channel closed", true); };
    let discTimer = null;
    pc.onconnectionstatechange = () => {
      if (!live()) return;
      const st = pc.connectionState;
      if (st === "failed" || st === "closed") retry("connection " + st);
      else if (st === "disconnected") {
        setStatus("reconnecting", "connection unstable…");
        clearTimeout(discTimer);
        discTimer = setTimeout(() => { if (live() && pc.connectionState === "disconnected") retry("connection lost"); }, 4000);
      } else if (st === "connected" && trees.readyState === "open") setStatus("live", "live");
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, 3000);
      if (!live()) return;
      const res = await fetch(api, { method: "POST", headers: headers({ "Content-Type": "application/sdp" }), body: pc.localDescription.sdp });
      const body = await res.text();
      if (res.status !== 201) throw new Error(res.status + " " + body.trim());
      if (!live()) return;
      const loc = res.headers.get("Location");
      if (loc) session.url = new URL(loc, api).toString();
      await pc.setRemoteDescription({ type: "answer", sdp: body });
    } catch (e) {
      if (live()) retry(String(e.message || e));
    }
  }

  window.addEventListener("pagehide", () => hangUp(true));
  connect();

  // For tests and debugging.
  window.edgemo = { faces, cameras, get tracksSeen() { return seen.size; }, get received() { return received; }, get state() { return $status.dataset.state; }, get connects() { return connects; } };
})();
