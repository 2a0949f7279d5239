// Opens the dashboard of a running edgemo, waits until face cards with
// emotion labels appear, saves a screenshot and prints one JSON line:
// {"open_ms":…, "cards":[{camera, track, emotion, presence}],
//  "header_faces":N, "strips":[{camera, faces, visitors, attention, dwell,
//  mix:[{label, width}], scene}], "off_machine":[…]}.
//
//   node snapshot.cjs <url> <screenshot.png> [min cards] [min tracks]
//
// min tracks: first wait until trees of that many distinct tracks arrived
// (a looping clip's second pass), with the audience strip filled.
//   env EDGEMO_NODE_MODULES: the node_modules holding playwright-core
"use strict";
const path = require("path");
const { launch, chromiumCmdline, offMachineSockets } = require(path.join(__dirname, "chromium.cjs"));

const [url, shot, minCards = "1", minTracks = "0"] = process.argv.slice(2);

(async () => {
  const browser = await launch();
  try {
    const cmd = chromiumCmdline();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("pageerror", (e) => process.stderr.write(`pageerror: ${e.message}\n`));
    const t0 = Date.now();
    await page.goto(url, { waitUntil: "load", timeout: 15000 });
    await page.waitForFunction(() => window.edgemo && window.edgemo.state === "live", null, { timeout: 15000 });
    const openMs = Date.now() - t0;
    await page.waitForFunction((n) => [...document.querySelectorAll(".card .emotion-label")]
      .filter((e) => e.textContent.trim() !== "").length >= n, Number(minCards), { timeout: 30000 });
    await page.waitForTimeout(1500); // let the timeline gather a few windows
    if (Number(minTracks) > 0) {
      await page.waitForFunction((n) => window.edgemo.tracksSeen >= n &&
        [...document.querySelectorAll(".strip .mix")].some((m) => m.children.length > 0), Number(minTracks), { timeout: 40000 });
    }
    // A card is made when its first tree arrives and labelled on the next
    // animation frame, so a face that appears between two looks is "…" for
    // a moment. Read every card in one evaluation (no tree lands inside
    // it) until all are labelled; the caller checks every label, so a card
    // still unlabelled after 10 s fails there.
    let cards = [];
    for (const deadline = Date.now() + 10000; ;) {
      cards = await page.evaluate(() => [...document.querySelectorAll(".card")].map((c) => ({
        camera: c.dataset.camera, track: Number(c.dataset.track),
        emotion: c.querySelector(".emotion-label")?.textContent || "",
        presence: c.querySelector(".presence")?.textContent || "",
      })));
      const labelled = cards.every((c) => { const l = c.emotion.trim(); return l !== "" && l !== "…"; });
      if (labelled || Date.now() > deadline) break;
      await page.waitForTimeout(100);
    }
    const headerFaces = await page.evaluate(() => Number(document.getElementById("stats").dataset.faces));
    const strips = await page.evaluate(() => [...document.querySelectorAll(".camera")].map((c) => {
      const s = c.querySelector(".strip");
      const txt = (cls) => s.querySelector(".stat." + cls + " b").textContent;
      return {
        camera: c.dataset.camera, faces: Number(txt("faces")), visitors: txt("visitors"), attention: txt("attention"), dwell: txt("dwell"),
        mix: [...s.querySelectorAll(".mix > i")].map((i) => ({ label: i.dataset.label, width: parseFloat(i.style.width) })),
        scene: s.querySelector(".scene").classList.contains("hidden") ? "" : s.querySelector(".scene small").textContent,
      };
    }));
    await page.screenshot({ path: shot, fullPage: true });
    const net = cmd ? offMachineSockets(cmd.pid) : { bad: ["chromium process not found"] };
    process.stdout.write(JSON.stringify({ open_ms: openMs, cards, header_faces: headerFaces, strips, off_machine: net.bad }) + "\n");
  } finally {
    await browser.close();
  }
})().catch((e) => { process.stderr.write(String(e.stack || e) + "\n"); process.exit(1); });
