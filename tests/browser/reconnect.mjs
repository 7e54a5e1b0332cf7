// The dashboard across a restart of Kahi: the stream drops, reconnects, and the table and a
// process's page are read again in place (new pids, no reload); the forms take the new
// daemon's token.
// Run by tests/dashboard.rs, which restarts Kahi on the same port between the two halves:
// this prints "ready" and waits for a line on stdin. KAHI_URL as in dashboard.mjs.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { launch } from "./launch.mjs";

const url = process.env.KAHI_URL;
const T = 20000;
const ok = (what) => console.log("ok: " + what);
const fail = (what) => { throw new Error(what); };
async function until(page, fn, arg) {
  const end = Date.now() + T;
  while (!(await page.evaluate(fn, arg))) {
    if (Date.now() > end) fail("condition never met: " + fn.toString().slice(0, 200));
    await new Promise((r) => setTimeout(r, 50));
  }
}
const pid = () => document.querySelector('tr[data-name="web"] .c-pid').textContent;
// Whether a process page is live and shows its process RUNNING with pid `want`.
const shows = (want) => {
  const dt = Array.from(document.querySelectorAll("dt")).find((e) => e.textContent === "PID");
  return !!document.querySelector("#live.on") && !!document.querySelector("#proc .st-RUNNING")
    && !!dt && dt.nextElementSibling.textContent === want;
};

const browser = await launch(chromium);
let code = 0;
try {
  const context = await browser.newContext({ httpCredentials: { username: "o", password: "opw" } });
  const p = await context.newPage();
  await p.goto(url + "/");
  await p.locator("#live.on").waitFor({ timeout: T });
  const pid0 = await p.evaluate(pid);
  await p.evaluate(() => {
    window.kahiNoReload = true;
    window.kahiDropped = false;
    new MutationObserver(() => {
      if (document.querySelector("#live").classList.contains("off")) window.kahiDropped = true;
    }).observe(document.querySelector("#live"), { attributes: true });
  });
  const web = await context.newPage();
  await web.goto(url + "/ui/p/web");
  await until(web, shows, pid0);
  await web.evaluate(() => { window.kahiNoReload = true; });
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log("ready");
  await lines.next();
  await until(p, () => window.kahiDropped, null);
  ok("the stream dropped with the daemon");
  await until(p, (pid0) => {
    const pid = document.querySelector('tr[data-name="web"] .c-pid').textContent;
    return document.querySelector("#live.on") && pid && pid !== pid0;
  }, pid0);
  const pid1 = await p.evaluate(pid);
  if (!(await p.evaluate(() => window.kahiNoReload))) fail("the page reloaded");
  ok(`reconnected and read again in place: web pid ${pid0} -> ${pid1}, no reload`);
  await until(web, shows, pid1);
  if (!(await web.evaluate(() => window.kahiNoReload))) fail("the process page reloaded");
  ok(`the process page read its status again in place: pid ${pid1}, RUNNING, no reload`);
  await p.getByRole("button", { name: "Restart web", exact: true }).click();
  await until(p, (pid1) => {
    const tr = document.querySelector('tr[data-name="web"]');
    const pid = tr.querySelector(".c-pid").textContent;
    return pid && pid !== pid1 && tr.dataset.state === "RUNNING";
  }, pid1);
  ok("a form sent after the restart carries the new daemon's token: web restarted");
} catch (e) {
  console.log("FAILED: " + e.message);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
