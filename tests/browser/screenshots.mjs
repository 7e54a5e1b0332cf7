// Screenshots of the dashboard for the README: light and dark, desktop and phone width.
//   node tests/browser/screenshots.mjs [KAHI_BIN]    (default: target/debug/kahi)
// Starts Kahi on a demo configuration in a temporary directory (programs in every state:
// running and healthy, backing off, fatal, stopped, waiting for another), shoots
// docs/dashboard-{light,dark}-{desktop,phone}.png and the process page, then stops it.
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./launch.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const kahi = resolve(process.argv[2] || join(root, "target/debug/kahi"));
const dir = mkdtempSync(join(tmpdir(), "kahi-shots-"));
const hash = (pw) => execFileSync(kahi, ["hash-password", "--cost", "4"], { input: pw + "\n" }).toString().trim();
const port = 19000 + (process.pid % 1000);
writeFileSync(join(dir, "kahi.toml"), `
[server]
socket = "${dir}/kahi.sock"
[server.http]
listen = "127.0.0.1:${port}"
[[server.http.users]]
name = "ops"
password_hash = "${hash("ops")}"
role = "admin"

[programs.api]
command = "sh -c 'while :; do echo \\"GET /orders 200 $(date +%T)\\"; sleep 0.5; done'"
startsecs = 0
[programs.api.healthcheck]
exec = "true"
interval = 60
[programs.db]
command = "sleep 100000"
startsecs = 0
[programs.worker]
command = "sleep 100000"
numprocs = 3
process_name = "worker_%(process_num)d"
startsecs = 0
depends_on = ["db"]
[programs.mailer]
command = "sh -c 'echo smtp: connection refused >&2; exit 1'"
startsecs = 1
startretries = 100
backoff_initial = 30
[programs.report]
command = "sh -c 'exit 2'"
startretries = 0
[programs.backup]
command = "sleep 100000"
autostart = false
[groups.jobs]
programs = ["worker"]
`);
const daemon = spawn(kahi, ["daemon", "-c", join(dir, "kahi.toml")], { stdio: "ignore" });
const url = `http://127.0.0.1:${port}`;
const browser = await launch(chromium);
try {
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const r = await fetch(url + "/ui/processes.json", { headers: { Authorization: "Basic " + btoa("ops:ops") } });
      const list = r.ok ? await r.json() : [];
      if (list.some((p) => p.state === "BACKOFF") && list.some((p) => p.state === "FATAL")
          && list.filter((p) => p.state === "RUNNING").length >= 5 && list.some((p) => p.health === "healthy")) break;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error("the demo never settled");
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const scheme of ["light", "dark"]) {
    for (const [form, viewport] of [["desktop", { width: 1280, height: 760 }], ["phone", { width: 390, height: 844 }]]) {
      const context = await browser.newContext({
        httpCredentials: { username: "ops", password: "ops" }, colorScheme: scheme, viewport,
        deviceScaleFactor: form === "phone" ? 2 : 1,
      });
      const page = await context.newPage();
      await page.goto(url + "/");
      await page.locator("#live.on").waitFor();
      await page.screenshot({ path: join(root, `docs/dashboard-${scheme}-${form}.png`) });
      if (form === "desktop") {
        await page.goto(url + "/ui/p/api");
        await page.locator("#log").getByText("GET /orders").first().waitFor();
        await page.screenshot({ path: join(root, `docs/dashboard-${scheme}-process.png`) });
      }
      await context.close();
    }
  }
} finally {
  await browser.close();
  daemon.kill("SIGTERM");
  await new Promise((r) => daemon.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
console.log("written: docs/dashboard-{light,dark}-{desktop,phone,process}.png");
