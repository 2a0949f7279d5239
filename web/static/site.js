// The site page: subscribes to the central broker over MQTT-over-WebSockets
// (?broker=ws://host:port, mosquitto's websockets listener) and lists every
// edgemo instance (topic prefix) with its cameras and each face's latest
// emotion, live. window.edgemoSite exposes the state for tests.
"use strict";
(function () {
  const q = new URLSearchParams(location.search);
  const broker = q.get("broker") || `ws://${location.hostname}:9001`;
  const state = { state: "connecting", instances: {} }; // prefix -> {available, cameras: {cam -> {track -> tree}}, trees}
  window.edgemoSite = state;
  document.getElementById("broker").textContent = broker;
  const inst = (p) => (state.instances[p] ||= { available: "", cameras: {}, trees: 0 });
  let dirty = false;
  const render = () => {
    dirty = false;
    const main = document.getElementById("instances");
    const names = Object.keys(state.instances).sort();
    document.getElementById("empty").hidden = names.length > 0;
    for (const p of names) {
      const it = state.instances[p];
      let el = main.querySelector(`.instance[data-prefix="${CSS.escape(p)}"]`);
      if (!el) {
        el = document.createElement("section");
        el.className = "instance"; el.dataset.prefix = p;
        main.appendChild(el);
      }
      const h = document.createElement("h2");
      h.textContent = p;
      const av = document.createElement("span");
      av.className = "avail"; av.dataset.v = it.available; av.textContent = it.available || "?";
      h.appendChild(av);
      const parts = [h];
      for (const cam of Object.keys(it.cameras).sort()) {
        const c = document.createElement("div");
        c.className = "camera"; c.dataset.camera = cam;
        const ch = document.createElement("h3"); ch.textContent = cam; c.appendChild(ch);
        const tracks = it.cameras[cam];
        for (const id of Object.keys(tracks).sort((a, b) => a - b)) {
          const t = tracks[id], emo = t.emotion || {}, f = document.createElement("div");
          f.className = "face"; f.dataset.track = id;
          const a = document.createElement("span"); a.textContent = "track " + id;
          const l = document.createElement("span"); l.className = "label"; l.textContent = emo.label || (t.expression || {}).label || "…";
          const n = document.createElement("span"); n.className = "conf";
          n.textContent = emo.confidence != null ? Math.round(emo.confidence * 100) + "%" : "";
          f.append(a, l, n); c.appendChild(f);
        }
        parts.push(c);
      }
      const counts = document.createElement("div");
      counts.className = "counts"; counts.textContent = `${it.trees} trees`;
      parts.push(counts);
      el.replaceChildren(...parts);
    }
  };
  const onMessage = (topic, text) => {
    const seg = topic.split("/");
    if (seg.length === 2 && seg[1] === "available") {
      inst(seg[0]).available = text;
    } else if (seg.length === 4 && seg[3] === "tree") {
      let t; try { t = JSON.parse(text); } catch { return; }
      const it = inst(seg[0]);
      (it.cameras[seg[1]] ||= {})[seg[2]] = t;
      it.trees++;
    } else if (seg.length === 3 && seg[2] === "tracks") {
      let e; try { e = JSON.parse(text); } catch { return; }
      if (e.type === "end" && e.track) delete (inst(seg[0]).cameras[seg[1]] || {})[e.track.track_id];
    } else return;
    if (!dirty) { dirty = true; requestAnimationFrame(render); }
  };
  const onState = (s) => {
    state.state = s;
    const el = document.getElementById("status");
    el.dataset.state = s === "live" ? "live" : "connecting";
    document.getElementById("status-text").textContent = s;
  };
  window.mqttws.connect(broker, ["+/available", "+/+/+/tree", "+/+/tracks"], onMessage, onState);
})();
