// Drives Debian's headless Chromium through playwright-core against the
// dashboard served by browser_test.go. Follows docs/browser-tests.md:
// exactly its flags, one merged --disable-features, pages loaded by
// http://127.0.0.1:PORT only.
//
//   node dashboard.cjs <url> <artifact dir>
//   env EDGEMO_NODE_MODULES: the node_modules holding playwright-core
//   env EDGEMO_VIEWPORT: WxH (default 1366x900)
//
// Protocol: one JSON object per stdout line (type: cmdline, live, ready,
// done, reconnected, error); after "ready" it reads one JSON line on stdin:
// {"gone": "cam1/2", "expect": {"cam1/1": "happiness", ...}}; after
// "done" one more line once the server has hung up on the page.
"use strict";
const fs = require("fs");
const path = require("path");
const readline = require("readline");

const [url, outDir] = process.argv.slice(2);
const { launch, chromiumCmdline, offMachineSockets } = require(path.join(__dirname, "..", "..", "..", "web", "testdata", "chromium.cjs"));

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const t0 = Date.now();
const ms = () => Date.now() - t0;

function dom() {
  return [...document.querySelectorAll(".card")].map((c) => ({
    camera: c.dataset.camera,
    track: Number(c.dataset.track),
    emotion: c.querySelector(".emotion-label")?.textContent || "",
    scores: c.querySelectorAll(".scores .bar").length,
    cues: c.querySelectorAll(".cues .bar").length,
    attributes: c.querySelectorAll(".attrlist .chip").length,
    trend: c.querySelector(".trend")?.dataset.trend || "",
    rationale: c.querySelector(".rationale")?.textContent || "",
    timeline: (() => { const cv = c.querySelector("canvas.timeline"); return cv ? cv.width : 0; })(),
    stale: c.classList.contains("stale"),
  }));
}

(async () => {
  const browser = await launch();
  const requests = [];
  try {
    const cmd = chromiumCmdline();
    emit({ type: "cmdline", pid: cmd?.pid, args: cmd?.args || [], ms: ms() });
    // EDGEMO_VIEWPORT=WxH tries other screens (e.g. 800x480 for a kiosk).
    const [vw, vh] = (process.env.EDGEMO_VIEWPORT || "1366x900").split("x").map(Number);
    const page = await browser.newPage({ viewport: { width: vw, height: vh } });
    page.on("request", (r) => requests.push(r.method() + " " + r.url()));
    page.on("console", (m) => process.stderr.write(`console.${m.type()}: ${m.text()}\n`));
    page.on("pageerror", (e) => process.stderr.write(`pageerror: ${e.message}\n`));
    const nav = Date.now();
    await page.goto(url, { waitUntil: "load", timeout: 15000 });
    await page.waitForFunction(() => window.edgemo && window.edgemo.state === "live", null, { timeout: 15000 });
    emit({ type: "live", open_ms: Date.now() - nav, ms: ms() });

    await page.waitForFunction(() => {
      const labels = [...document.querySelectorAll(".card .emotion-label")];
      return labels.length >= 4 && labels.every((e) => e.textContent && e.textContent !== "…") &&
        [...document.querySelectorAll(".card")].every((c) => c.querySelector("canvas.timeline").width > 0);
    }, null, { timeout: 15000 });
    await page.waitForTimeout(2500); // let the timelines fill a little
    await page.screenshot({ path: path.join(outDir, "dashboard-4faces.png"), fullPage: true });
    emit({ type: "ready", cards: await page.evaluate(dom), ms: ms() });

    const rl = readline.createInterface({ input: process.stdin });
    const lines = [];
    let wake = null;
    rl.on("line", (l) => { lines.push(l); if (wake) wake(); });
    const nextLine = async () => { while (!lines.length) await new Promise((r) => { wake = r; }); return lines.shift(); };
    const { gone, expect } = JSON.parse(await nextLine());
    const [goneCam, goneTrack] = gone.split("/");
    await page.waitForFunction(({ goneCam, goneTrack, expect }) => {
      if (document.querySelector(`.card[data-camera="${goneCam}"][data-track="${goneTrack}"]`)) return false;
      return Object.entries(expect).every(([k, label]) => {
        const [cam, track] = k.split("/");
        const el = document.querySelector(`.card[data-camera="${cam}"][data-track="${track}"] .emotion-label`);
        return el && el.textContent === label;
      });
    }, { goneCam, goneTrack, expect }, { timeout: 15000 });
    await page.screenshot({ path: path.join(outDir, "dashboard.png"), fullPage: true });
    const cards = await page.evaluate(dom);
    const status = await page.evaluate(() => document.getElementById("status-text").textContent);
    const badges = await page.evaluate(() => [...document.querySelectorAll(".camera .badge")].map((b) => b.textContent));
    const net = offMachineSockets(cmd?.pid || 0);
    emit({ type: "done", cards, status, badges, requests, net, ms: ms() });

    // The server hangs up on us: the page must notice and reconnect by itself.
    await nextLine();
    const hung = Date.now();
    await page.waitForFunction(() => window.edgemo.connects >= 2 && window.edgemo.state === "live", null, { timeout: 15000 });
    emit({ type: "reconnected", after_ms: Date.now() - hung, ms: ms() });
    rl.close();
    await page.close({ runBeforeUnload: true }); // pagehide: the page hangs up (DELETE)
  } catch (e) {
    emit({ type: "error", error: String(e && e.stack || e), requests, ms: ms() });
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})().catch((e) => { emit({ type: "error", error: String(e && e.stack || e) }); process.exit(1); });
