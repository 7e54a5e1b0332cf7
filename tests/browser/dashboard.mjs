// Kahi's dashboard in a real browser: Debian's chromium, headless, driven by Playwright.
// Run by tests/dashboard.rs against a running Kahi, with
//   KAHI_URL        http://127.0.0.1:PORT
//   KAHI_PROCESSES  every process of the config (web, ticker and the group backend among them)
//   TMPDIR          where the browser's fresh profile goes
// Users: v/vpw (viewer), o/opw (operator). Prints "ok: ..." per check; exits 1 on the first
// failure. Every wait has a deadline; nothing sleeps blindly.
import { chromium } from "playwright-core";
import { launch, NO_ERRORS } from "./launch.mjs";

const url = process.env.KAHI_URL;
const names = process.env.KAHI_PROCESSES.split(",");
const T = 20000;

function ok(what) { console.log("ok: " + what); }
// page.waitForFunction evaluates a string, which the page's Content-Security-Policy forbids
// (as it should): poll with page.evaluate instead, until a deadline.
async function until(page, fn, arg) {
  const end = Date.now() + T;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > end) fail("condition never met: " + fn.toString().slice(0, 200));
    await new Promise((r) => setTimeout(r, 50));
  }
}
function fail(what) { throw new Error(what); }

const browser = await launch(chromium);
let code = 0;
try {
  const as = async (user, pass, options = {}) => {
    const context = await browser.newContext({ httpCredentials: { username: user, password: pass }, ...options });
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(e.message));
    return { context, page, errors };
  };
  const row = (page, name) => page.locator(`tr[data-name="${name}"]`);

  // --- An operator: every process with its state, live. ---
  const op = await as("o", "opw");
  const p = op.page;
  await p.goto(url + "/");
  for (const n of names) {
    await row(p, n).locator(".c-state").getByText("RUNNING").waitFor({ timeout: T });
  }
  ok("every process of the config is shown RUNNING: " + names.join(", "));
  await p.locator("#live.on").waitFor({ timeout: T });
  ok("the event stream is followed");
  await p.evaluate(() => { window.kahiNoReload = true; });

  // --- Restart one: its pid and uptime change in place. ---
  const web = row(p, "web");
  await until(p, () => {
    const up = document.querySelector('tr[data-name="web"] .c-up').textContent;
    return /^(\d+)s$/.test(up) ? +up.slice(0, -1) >= 3 : up.includes("m");
  }, null);
  const pid0 = await web.locator(".c-pid").textContent();
  const up0 = await web.locator(".c-up").textContent();
  await p.getByRole("button", { name: "Restart web", exact: true }).click();
  await until(p, (pid0) => {
    const tr = document.querySelector('tr[data-name="web"]');
    const pid = tr.querySelector(".c-pid").textContent;
    return pid && pid !== pid0 && tr.dataset.state === "RUNNING";
  }, pid0);
  const pid1 = await web.locator(".c-pid").textContent();
  await until(p, (up0) => {
    const up = document.querySelector('tr[data-name="web"] .c-up').textContent;
    return /^[0-2]s$/.test(up) && up !== up0;
  }, up0);
  const up1 = await web.locator(".c-up").textContent();
  if (!(await p.evaluate(() => window.kahiNoReload))) fail("the page reloaded");
  ok(`restart: pid ${pid0} -> ${pid1}, uptime ${up0} -> ${up1}, no reload`);

  // --- Stop a group. ---
  await p.getByRole("button", { name: "Stop group backend", exact: true }).click();
  for (const n of names.filter((n) => n.startsWith("backend:"))) {
    await until(p, (n) => document.querySelector(`tr[data-name="${n}"]`).dataset.state === "STOPPED", n);
  }
  if (!(await p.evaluate(() => window.kahiNoReload))) fail("the page reloaded");
  ok("stopping the group backend shows its processes STOPPED, no reload");

  // --- By keyboard alone: the skip link first, then Tab to "Stop web" and Enter. ---
  // A fresh load, so that Tab starts from the top, not from the last button clicked.
  await p.goto(url + "/");
  await p.locator("#live.on").waitFor({ timeout: T });
  await p.keyboard.press("Tab");
  const first = await p.evaluate(() => document.activeElement.textContent);
  if (first !== "Skip to content") fail("the first stop of Tab is " + first);
  let tabs = 0;
  while (await p.evaluate(() => document.activeElement.getAttribute("aria-label")) !== "Stop web") {
    if (++tabs > 100) fail("Tab never reached Stop web");
    await p.keyboard.press("Tab");
  }
  await p.keyboard.press("Enter");
  await until(p, () => document.querySelector('tr[data-name="web"]').dataset.state === "STOPPED", null);
  ok(`keyboard: Stop web reached in ${tabs + 1} Tabs, Enter stopped it`);

  // --- The filter, live. ---
  await p.getByLabel("Name").fill("tick");
  const shown = await p.locator("tr[data-name]:visible").evaluateAll((trs) => trs.map((t) => t.dataset.name));
  if (shown.join() !== "ticker") fail("the filter shows " + shown.join());
  ok("the name filter shows only ticker");

  // --- A log line, within a second of being written. ---
  await p.goto(url + "/ui/p/ticker");
  // The first lines shown are the log's past: they are marked seen, and the lines after them
  // are timed from the moment the program wrote them to the moment they are on the page.
  await p.locator("#log").getByText(/tick \d{13}/).first().waitFor({ timeout: T });
  await p.evaluate(() => {
    const log = document.querySelector("#log");
    const stamps = () => Array.from(log.textContent.matchAll(/tick (\d{13})/g), (m) => m[1]);
    const seen = new Set(stamps());
    window.kahiLate = [];
    new MutationObserver(() => {
      const now = Date.now();
      for (const s of stamps()) {
        if (!seen.has(s)) { seen.add(s); window.kahiLate.push(now - +s); }
      }
    }).observe(log, { childList: true, characterData: true, subtree: true });
  });
  await until(p, () => window.kahiLate.length >= 6, null);
  const late = await p.evaluate(() => window.kahiLate);
  if (Math.max(...late) > 1000) fail("log lines shown late (ms): " + late.join(", "));
  ok("log line shown within a second of being written (ms late: " + late.join(", ") + ")");
  await p.getByRole("tab", { name: "stderr" }).click();
  await p.locator("#t-stderr[aria-selected=true]").waitFor({ timeout: T });
  ok("the stderr tab is followed");
  if (op.errors.length) fail("errors in the operator's console: " + op.errors.join(" | "));
  ok("no console errors (nothing the Content-Security-Policy refused)");

  // --- A viewer: no actions, and a 403 when posting anyway. ---
  const v = await as("v", "vpw");
  await v.page.goto(url + "/");
  await row(v.page, "web").waitFor({ timeout: T });
  const buttons = await v.page.locator("form.act, form.bulk, button[name=do]").count();
  if (buttons) fail(`the viewer sees ${buttons} actions`);
  const statuses = await v.page.evaluate(async () => {
    const csrf = document.querySelector('meta[name="kahi-csrf"]').content;
    const form = await fetch("/ui/p/web", { method: "POST", body: new URLSearchParams({ do: "restart", csrf }) });
    const api = await fetch("/api/v1/processes/web/restart", { method: "POST" });
    return [form.status, api.status];
  });
  if (statuses.join() !== "403,403") fail("a viewer's posts got " + statuses.join());
  ok("a viewer sees no action and gets 403 when posting anyway");

  // --- Without JavaScript: the table is there. ---
  const nojs = await as("v", "vpw", { javaScriptEnabled: false });
  await nojs.page.goto(url + "/");
  for (const n of names) {
    const st = await row(nojs.page, n).getAttribute("data-state", { timeout: T });
    if (!st) fail("no state for " + n);
  }
  const live = await nojs.page.locator("#live").textContent();
  if (live !== "static") fail("without JavaScript the page says " + live);
  ok("with JavaScript off the table shows every process");
  if (v.errors.some((e) => !NO_ERRORS.test(e))) fail("errors in the viewer's console: " + v.errors.join(" | "));
} catch (e) {
  console.log("FAILED: " + e.message);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
