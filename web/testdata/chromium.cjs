// Launches Debian's headless Chromium through playwright-core exactly as
// docs/browser-tests.md requires (its flags, one merged
// --disable-features), and offers checks that nothing left the machine.
// Shared by the dashboard tests (publish/webrtc, internal/daemon).
//
//   const { launch, chromiumCmdline, offMachineSockets } = require("<repo>/web/testdata/chromium.cjs");
//   env EDGEMO_NODE_MODULES: the node_modules holding playwright-core
"use strict";
const fs = require("fs");
const path = require("path");

const pwDir = path.join(process.env.EDGEMO_NODE_MODULES || "", "playwright-core");
const { chromium } = require(pwDir);

// Playwright passes its own --disable-features list; Chromium keeps only the
// last such flag, so ours must be Playwright's list plus ours, and Playwright's
// own flag must be dropped (ignoreDefaultArgs). The list is not exported, so
// read it from the pinned bundle and fail loudly if its shape changes.
function playwrightDisabledFeatures() {
  const src = fs.readFileSync(path.join(pwDir, "lib", "coreBundle.js"), "utf8");
  const m = src.match(/disabledFeatures = (\[[\s\S]*?\])\.filter\(Boolean\)/);
  if (!m) throw new Error("cannot find Playwright's disabledFeatures list in lib/coreBundle.js (playwright-core changed: update dashboard.cjs)");
  const list = new Function("return " + m[1])().filter(Boolean);
  if (!list.includes("NetworkTimeServiceQuerying")) throw new Error("Playwright's disabledFeatures list looks wrong: " + list);
  return list;
}

// The launched Chromium's real command line (the child of this node process).
function chromiumCmdline() {
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid) continue;
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (/chrom/.test(args[0] || "")) return { pid: Number(pid), args };
    } catch (_) { /* process gone */ }
  }
  return null;
}

// Sockets of the Chromium process tree whose remote address is neither
// loopback nor unspecified (a snapshot; the flags are the real guard).
function offMachineSockets(rootPid) {
  const pids = new Set([rootPid]);
  let grew = true;
  const all = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  while (grew) {
    grew = false;
    for (const pid of all) {
      if (pids.has(Number(pid))) continue;
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (pids.has(ppid)) { pids.add(Number(pid)); grew = true; }
      } catch (_) { /* gone */ }
    }
  }
  const inodes = new Set();
  for (const pid of pids) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        const l = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = l.match(/^socket:\[(\d+)\]$/);
        if (m) inodes.add(m[1]);
      }
    } catch (_) { /* gone */ }
  }
  const bad = [];
  let seen = 0;
  for (const proto of ["tcp", "udp", "tcp6", "udp6"]) {
    let lines;
    try { lines = fs.readFileSync(`/proc/net/${proto}`, "utf8").trim().split("\n").slice(1); } catch (_) { continue; }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (!inodes.has(f[9])) continue;
      seen++;
      const remote = f[2].split(":")[0];
      const v4loop = remote.length === 8 && remote.endsWith("7F"); // 127.x.x.x, little-endian
      const v6loop = remote === "00000000000000000000000001000000";
      const v4mapLoop = remote.length === 32 && remote.startsWith("0000000000000000FFFF0000") && remote.endsWith("7F");
      if (!/^0+$/.test(remote) && !v4loop && !v6loop && !v4mapLoop) bad.push(`${proto} ${f[1]} -> ${f[2]}`);
    }
  }
  return { processes: pids.size, sockets: seen, bad };
}

// launch starts Chromium with the required flags.
async function launch() {
  const pwFeatures = playwrightDisabledFeatures();
  const args = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--disable-features=" + [...pwFeatures, "WebRtcHideLocalIpsWithMdns"].join(","),
  ];
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium", headless: true, args, timeout: 30000,
    ignoreDefaultArgs: ["--disable-features=" + pwFeatures.join(",")],
  });
  return browser;
}

module.exports = { launch, chromiumCmdline, offMachineSockets, playwrightDisabledFeatures };
