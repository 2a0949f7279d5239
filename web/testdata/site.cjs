// Opens the site page (web/static/site.html) against a broker's websockets
// listener, waits until the given number of instances each show a face
// with a label, saves a screenshot and prints one JSON line:
// {"instances":[{prefix, available, cameras, faces, trees}], "off_machine":[…]}.
//
//   node site.cjs <url> <screenshot.png> <instances>
"use strict";
const path = require("path");
const { launch, chromiumCmdline, offMachineSockets } = require(path.join(__dirname, "chromium.cjs"));

const [url, shot, want] = process.argv.slice(2);

(async () => {
  const browser = await launch();
  try {
    const cmd = chromiumCmdline();
    const page = await browser.newPage({ viewport: { width: 1280, height: 640 } });
    page.on("pageerror", (e) => process.stderr.write(`pageerror: ${e.message}\n`));
    page.on("console", (m) => m.type() === "error" && process.stderr.write(`console: ${m.text()}\n`));
    await page.goto(url, { waitUntil: "load", timeout: 15000 });
    await page.waitForFunction(() => window.edgemoSite && window.edgemoSite.state === "live", null, { timeout: 15000 });
    await page.waitForFunction((n) => [...document.querySelectorAll(".instance")]
      .filter((i) => [...i.querySelectorAll(".face .label")].some((l) => l.textContent !== "…")).length >= n,
    Number(want), { timeout: 45000 });
    await page.waitForTimeout(1000);
    const instances = await page.evaluate(() => [...document.querySelectorAll(".instance")].map((i) => ({
      prefix: i.dataset.prefix,
      available: i.querySelector(".avail").textContent,
      cameras: [...i.querySelectorAll(".camera")].map((c) => c.dataset.camera),
      faces: [...i.querySelectorAll(".face .label")].map((l) => l.textContent),
      trees: window.edgemoSite.instances[i.dataset.prefix].trees,
    })));
    await page.screenshot({ path: shot, fullPage: true });
    const net = cmd ? offMachineSockets(cmd.pid) : { bad: ["chromium process not found"] };
    process.stdout.write(JSON.stringify({ instances, off_machine: net.bad }) + "\n");
  } finally {
    await browser.close();
  }
})().catch((e) => { process.stderr.write(String(e.stack || e) + "\n"); process.exit(1); });
