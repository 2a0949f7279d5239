// edgemo dashboard: the per camera strip — faces now, visitors, attention
// share and mean dwell over the camera's audience period, the period's
// emotion mix as a stacked bar, and the scene (the latest tree's "scene"
// block). Loaded before app.js, which calls window.edgemoStrip with its
// DOM and colour helpers.
"use strict";

window.edgemoStrip = ({ h, pct, color, facesNow }) => {
  const dur = (s) => {
    if (s == null || isNaN(s)) return "–";
    if (s < 60) return Math.round(s) + " s";
    const m = Math.floor(s / 60), r = Math.round(s % 60);
    return m + " min" + (r ? " " + r + " s" : "");
  };

  function makeStrip() {
    const el = h("div", "strip");
    const stat = (cls, label) => {
      const box = h("div", "stat " + cls);
      const v = h("b", null, "–");
      box.append(v, h("small", null, label));
      el.append(box);
      return v;
    };
    const s = { el };
    s.faces = stat("faces", "faces now");
    s.visitors = stat("visitors", "visitors");
    s.attention = stat("attention", "attention");
    s.dwell = stat("dwell", "mean dwell");
    const mixBox = h("div", "stat mixbox");
    s.mix = h("div", "mix");
    s.mix.setAttribute("role", "img");
    s.mixLegend = h("small", "legend", "emotion mix");
    mixBox.append(s.mix, s.mixLegend);
    el.append(mixBox);
    const sceneBox = h("div", "stat scene hidden");
    s.swatch = h("span", "swatch");
    s.sceneText = h("small");
    sceneBox.append(s.swatch, s.sceneText);
    el.append(sceneBox);
    s.sceneBox = sceneBox;
    return s;
  }

  function renderStrip(c) {
    const s = c.strip, a = c.audience;
    s.faces.textContent = String(facesNow(c));
    s.visitors.textContent = a ? String(a.visitors) : "–";
    s.attention.textContent = a ? pct(a.attention_share) : "–";
    s.dwell.textContent = a && a.visitors ? dur(a.dwell_mean_s) : "–";
    const mix = Object.entries((a && a.emotion_mix) || {}).sort((x, y) => y[1] - x[1]);
    s.mix.replaceChildren(...mix.map(([l, p]) => {
      const seg = h("i");
      seg.style.width = (100 * p).toFixed(2) + "%";
      seg.style.background = color(l);
      seg.title = l + " " + pct(p);
      seg.dataset.label = l;
      return seg;
    }));
    s.mix.setAttribute("aria-label", "emotion mix: " + (mix.map(([l, p]) => l + " " + pct(p)).join(", ") || "none yet"));
    s.mixLegend.textContent = mix.length
      ? mix.slice(0, 3).map(([l, p]) => l + " " + pct(p)).join(" · ") + (a.period_s ? " · last " + dur(a.period_s) : "")
      : "emotion mix";
    const sc = c.scene;
    s.sceneBox.classList.toggle("hidden", !sc);
    if (sc) {
      // the picture's dominant hue, its saturation by colourfulness (109:
      // Hasler–Süsstrunk's "extremely colourful"), its lightness by brightness
      const sat = sc.hue == null ? 0 : Math.min(100, Math.round(100 * sc.colorfulness / 109));
      s.swatch.style.background = `hsl(${sc.hue ?? 0} ${sat}% ${Math.round(100 * Math.min(0.9, Math.max(0.1, sc.brightness)))}%)`;
      s.sceneText.textContent = `light ${pct(sc.brightness)} · colour ${Math.round(sc.colorfulness)}` +
        (sc.hue != null ? ` · hue ${Math.round(sc.hue)}°` : "") + (sc.low_light ? " · low light" : "");
      s.sceneBox.classList.toggle("low", !!sc.low_light);
    }
  }

  return { makeStrip, renderStrip, dur };
};
