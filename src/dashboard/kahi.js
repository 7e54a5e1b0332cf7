// Kahi's dashboard, made live. The pages work without this file (the server renders them and
// the forms post and come back); with it, the table follows /api/v1/events/stream and changes
// in place, forms are sent without leaving the page, logs are followed as they are written.
// No framework; nothing is loaded from anywhere but this server.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const page = document.body.dataset.page;
  let csrf = ($('meta[name="kahi-csrf"]') || {}).content || "";
  const live = $("#live");
  const msg = $("#msg");

  function say(text, bad) {
    msg.textContent = text;
    msg.classList.toggle("bad", !!bad);
    clearTimeout(say.t);
    say.t = setTimeout(() => { msg.textContent = ""; }, bad ? 10000 : 4000);
  }

  function dur(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return Math.round(n / 1024) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }
  const clock = () => performance.now() / 1000;

  // ---- The event stream: reconnects by itself; every (re)connection resynchronises. ----
  const handlers = [];
  function follow(onEvent, onOpen) {
    handlers.push([onEvent, onOpen]);
    if (handlers.length > 1) return;
    let es = null, wait = 1000;
    const names = ["state", "health", "update", "shutdown", "lost", "PROCESS_GROUP_ADDED",
      "PROCESS_GROUP_REMOVED", "SUPERVISOR_STATE_CHANGE_RUNNING", "KAHI_DEPENDENCY",
      "PROCESS_COMMUNICATION_STDOUT", "PROCESS_COMMUNICATION_STDERR", "REMOTE_COMMUNICATION"];
    function connect() {
      es = new EventSource("/api/v1/events/stream");
      es.onopen = () => {
        wait = 1000;
        live.textContent = "live";
        live.className = "live on";
        handlers.forEach((h) => h[1] && h[1]());
      };
      es.onerror = () => {
        live.textContent = "reconnecting";
        live.className = "live off";
        if (es.readyState === EventSource.CLOSED) {
          // Refused (503, 401): EventSource gives up; try again, more slowly each time.
          setTimeout(connect, wait);
          wait = Math.min(wait * 2, 30000);
        }
      };
      names.forEach((n) => es.addEventListener(n, (e) => {
        let data = {};
        try { data = JSON.parse(e.data); } catch (_) { return; }
        handlers.forEach((h) => h[0](n, data));
      }));
    }
    connect();
  }

  // ---- Forms: sent with fetch, answered as JSON; the page stays. ----
  async function send(form, submitter) {
    const body = new URLSearchParams(new FormData(form, submitter));
    body.set("as", "json");
    const buttons = $$("button", form);
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const r = await fetch(form.action, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-Kahi-CSRF": csrf },
      });
      let data = await r.json().catch(() => ({}));
      if (!r.ok) {
        say(data.error || (r.status + " " + r.statusText), true);
        return null;
      }
      if (Array.isArray(data)) {
        // A restart answers for its stop, then its start: the last says how it ended.
        const last = new Map();
        data.forEach((x) => last.set(x.name, x));
        data = Array.from(last.values());
        const bad = data.filter((x) => /^(already_started|not_running|no_such_process|spawn_error|abnormal_termination|shutting_down)$/.test(x.outcome));
        say(data.map((x) => x.name + ": " + x.outcome.replace(/_/g, " ")).join(", ") || "nothing to do", bad.length > 0);
      }
      return data;
    } catch (e) {
      say("request failed: " + e.message, true);
      return null;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
  document.addEventListener("submit", (e) => {
    const f = e.target;
    if (f.method !== "post") return;
    e.preventDefault();
    send(f, e.submitter).then((data) => {
      if (f.id === "reread" && data) showDiff(data);
      if (f.id === "apply" && data) { $("#diff").textContent = ""; say("applied"); }
      if (page === "index") resync();
    });
  });

  // ---- The process table. ----
  const rows = new Map();
  function index() {
    rows.clear();
    $$("tr[data-name]").forEach((tr) => {
      const up = tr.dataset.up;
      const next = $(".st", tr) && $(".st", tr).dataset.next;
      rows.set(tr.dataset.name, {
        tr, upBase: up === undefined ? null : +up, upAt: clock(),
        nextAt: next ? clock() + +next : null, cpu: null,
      });
    });
  }
  function cell(r, c) { return $(".c-" + c, r.tr); }
  function setState(r, st, next) {
    r.tr.dataset.state = st;
    const span = document.createElement("span");
    span.className = "st st-" + st;
    span.textContent = st;
    r.nextAt = null;
    if (st === "BACKOFF" && next != null) {
      r.nextAt = clock() + next;
      const small = document.createElement("small");
      small.textContent = " " + dur(Math.ceil(next));
      span.appendChild(small);
    }
    const c = cell(r, "state");
    c.textContent = "";
    c.appendChild(span);
    r.tr.classList.remove("flash");
    void r.tr.offsetWidth;
    r.tr.classList.add("flash");
  }
  function onState(name, d) {
    if (name === "shutdown") return say("Kahi is shutting down", true);
    // Events were lost while the page was behind: what they said is not known, read it all.
    if (name === "lost") return later();
    const r = rows.get(d.name);
    // Groups added or removed, an update applied, a process not in the table: read it again.
    if (!r || name === "update" || name.startsWith("PROCESS_GROUP_")) return later();
    if (name === "state") {
      setState(r, d.to, d.next_start_in);
      cell(r, "pid").textContent = d.pid ? d.pid : "";
      if (d.to === "STARTING") { r.upBase = 0; r.upAt = clock(); }
      if (!/^(STARTING|RUNNING|STOPPING)$/.test(d.to)) { r.upBase = null; cell(r, "up").textContent = ""; }
      if (d.exitstatus != null) cell(r, "exit").textContent = d.exitstatus;
    } else if (name === "health") {
      cell(r, "health").textContent = d.health || "";
    }
    filter();
    later();
  }
  // What events do not carry (restarts, uptime, CPU, memory, waits): fetched once things settle.
  let laterT = null;
  function later() { clearTimeout(laterT); laterT = setTimeout(resync, 300); }
  async function resync() {
    let list;
    try {
      const r = await fetch("/ui/processes.json", { credentials: "same-origin" });
      if (!r.ok) return;
      // A daemon started again signs forms with a new key.
      const token = r.headers.get("X-Kahi-CSRF");
      if (token && token !== csrf) {
        csrf = token;
        $$('input[name="csrf"]').forEach((i) => { i.value = token; });
      }
      list = await r.json();
    } catch (_) { return; }
    const names = list.map((p) => p.name).sort().join("\n");
    if (names !== Array.from(rows.keys()).sort().join("\n")) return replaceTable();
    list.forEach((p) => {
      const r = rows.get(p.name);
      if (r.tr.dataset.state !== p.state) setState(r, p.state, p.next_start_in);
      r.nextAt = p.next_start_in != null ? clock() + p.next_start_in : null;
      cell(r, "pid").textContent = p.pid ? p.pid : "";
      r.upBase = p.uptime_secs != null ? p.uptime_secs : null;
      r.upAt = clock();
      cell(r, "up").textContent = r.upBase != null ? dur(r.upBase) : "";
      cell(r, "health").textContent = p.health || "";
      cell(r, "restarts").textContent = p.restarts;
      cell(r, "exit").textContent = p.exitstatus != null ? p.exitstatus + (p.oom_killed ? " (OOM)" : "") : "";
      cell(r, "wait").textContent = (p.waiting_for || []).join(", ");
      if (p.cpu_seconds != null) {
        let text = p.cpu_seconds.toFixed(1) + "s";
        if (r.cpu && p.pid === r.cpu.pid && clock() > r.cpu.at) {
          const pct = (100 * (p.cpu_seconds - r.cpu.s)) / (clock() - r.cpu.at);
          text = Math.max(0, pct).toFixed(1) + "% · " + text;
        }
        r.cpu = { s: p.cpu_seconds, at: clock(), pid: p.pid };
        cell(r, "cpu").textContent = text;
      } else {
        r.cpu = null;
        cell(r, "cpu").textContent = "";
      }
      cell(r, "mem").textContent = p.rss_bytes != null ? bytes(p.rss_bytes) : "";
    });
    filter();
  }
  // Processes came or went (an update): the table is fetched again and swapped in place.
  async function replaceTable() {
    try {
      const r = await fetch("/", { credentials: "same-origin" });
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = $("#procs", doc);
      if (fresh) $("#procs").replaceWith(document.adoptNode(fresh));
      index();
      filter();
    } catch (_) { /* the next event or resynchronisation tries again */ }
  }
  function filter() {
    const q = $("#q"), s = $("#state");
    if (!q) return;
    const text = q.value.trim().toLowerCase(), st = s.value;
    rows.forEach((r, name) => {
      r.tr.hidden = (text && !name.toLowerCase().includes(text)) || (st && r.tr.dataset.state !== st);
    });
  }
  function tick() {
    rows.forEach((r) => {
      if (r.upBase != null) cell(r, "up").textContent = dur(r.upBase + clock() - r.upAt);
      if (r.nextAt != null) {
        const small = $(".st small", r.tr);
        if (small) small.textContent = " " + dur(Math.max(0, Math.ceil(r.nextAt - clock())));
      }
    });
  }
  if (page === "index") {
    index();
    const f = $("#filter");
    f.addEventListener("submit", (e) => { e.preventDefault(); filter(); });
    f.addEventListener("input", () => {
      filter();
      const u = new URL(location.href);
      u.searchParams.set("q", $("#q").value);
      u.searchParams.set("state", $("#state").value);
      history.replaceState(null, "", u.pathname + "?" + u.searchParams);
    });
    follow(onState, resync);
    setInterval(tick, 1000);
    // CPU and memory change without events: read again while the page is looked at.
    setInterval(() => { if (!document.hidden) resync(); }, 10000);
  }

  // ---- Event feeds (process and daemon pages). ----
  function feed(only) {
    const ol = $("#events");
    if (!ol) return;
    follow((name, d) => {
      if (only && name !== "lost" && d.name !== only) return;
      const none = $(".none", ol);
      if (none) none.remove();
      const li = document.createElement("li");
      const t = document.createElement("time");
      t.textContent = new Date().toLocaleTimeString();
      li.appendChild(t);
      let text = d.eventname || name;
      if (name === "lost") text = d.lost + " events lost (the page was too slow)";
      else if (name === "state") text = (d.name || "") + ": " + d.from + " → " + d.to + (d.pid ? " (pid " + d.pid + ")" : "");
      else if (name === "health") text = (d.name || "") + ": " + d.health;
      else if (name === "update") {
        text = "update: " + ["added", "changed", "removed"]
          .filter((k) => (d[k] || []).length).map((k) => k + " " + d[k].join(", ")).join("; ");
      }
      else if (d.name) text += " " + d.name;
      else if (d.group) text += " " + d.group;
      li.appendChild(document.createTextNode(text));
      ol.prepend(li);
      while (ol.children.length > 200) ol.lastChild.remove();
      if (page === "process" && name === "state") {
        const h = $("#proc .st");
        if (h) { h.className = "st st-" + d.to; h.textContent = d.to; }
      }
    });
  }

  // ---- A process's heading and status: read again from the server after a change of its
  // state, a reconnection or lost events, as the server renders them. ----
  function status() {
    const h = $("#proc");
    if (!h) return;
    const name = h.dataset.name;
    let t = null;
    const soon = () => { clearTimeout(t); t = setTimeout(reread, 300); };
    async function reread() {
      try {
        const r = await fetch(location.pathname, { credentials: "same-origin" });
        if (!r.ok) return;
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        ["#proc", '[aria-labelledby="h-st"]'].forEach((sel) => {
          const fresh = $(sel, doc), old = $(sel);
          if (fresh && old) old.replaceWith(document.adoptNode(fresh));
        });
      } catch (_) { /* the next event or reconnection tries again */ }
    }
    follow((n, d) => { if (n === "lost" || (n === "state" && d.name === name)) soon(); }, soon);
  }

  // ---- The log of a process: tabs, pause, search within what is shown, download. ----
  function logs() {
    const sec = $(".logs");
    if (!sec) return;
    const pre = $("#log"), pause = $("#pause"), find = $("#find"), dl = $("#download");
    const tabs = $$("[role=tab]", sec);
    pause.hidden = false;
    find.hidden = false;
    let es = null, text = "", paused = false, held = "";
    const MAX = 256 * 1024;
    function show() {
      const q = find.value;
      pre.textContent = "";
      if (!q) { pre.textContent = text; }
      else {
        let i = 0, at;
        const lower = text.toLowerCase(), ql = q.toLowerCase();
        while ((at = lower.indexOf(ql, i)) >= 0) {
          pre.appendChild(document.createTextNode(text.slice(i, at)));
          const m = document.createElement("mark");
          m.textContent = text.slice(at, at + q.length);
          pre.appendChild(m);
          i = at + q.length;
        }
        pre.appendChild(document.createTextNode(text.slice(i)));
      }
      const near = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 60;
      if (near || !q) pre.scrollTop = pre.scrollHeight;
    }
    function open(stream) {
      if (es) es.close();
      text = ""; held = "";
      show();
      tabs.forEach((t) => {
        const on = t.dataset.stream === stream;
        t.setAttribute("aria-selected", on);
        t.tabIndex = on ? 0 : -1;
        if (on) pre.setAttribute("aria-labelledby", t.id);
      });
      dl.dataset.stream = stream;
      es = new EventSource(sec.dataset.api + "/" + stream + "/stream");
      es.addEventListener("log", (e) => {
        // A piece is the bytes as written, its line ends included (a CR comes as LF).
        if (paused) { held += e.data; return; }
        text = (text + e.data).slice(-MAX);
        show();
      });
    }
    tabs.forEach((t) => {
      t.addEventListener("click", () => open(t.dataset.stream));
      t.addEventListener("keydown", (e) => {
        if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
        const other = tabs[(tabs.indexOf(t) + 1) % tabs.length];
        other.focus();
        open(other.dataset.stream);
      });
    });
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", paused);
      pause.textContent = paused ? "Resume" : "Pause";
      if (!paused && held) { text = (text + held).slice(-MAX); held = ""; show(); }
    });
    find.addEventListener("input", show);
    dl.addEventListener("click", (e) => {
      e.preventDefault();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      a.download = dl.download.replace(/-stdout\.json$/, "-" + dl.dataset.stream + ".log");
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    });
    open("stdout");
  }

  // ---- Reread: the changes, shown before they are applied. ----
  function showDiff(c) {
    const box = $("#diff");
    box.textContent = "";
    const all = [["added", c.added], ["changed", c.changed], ["removed", c.removed]];
    let n = 0;
    all.forEach(([what, names]) => (names || []).forEach((name) => {
      const p = document.createElement("p");
      p.className = "chg chg-" + what;
      p.textContent = name + ": " + what;
      box.appendChild(p);
      n++;
    }));
    if (!n) { box.textContent = "No changes: the file is what is in force."; return; }
    const f = document.createElement("form");
    f.id = "apply";
    f.method = "post";
    f.action = "/ui/daemon/update";
    const h = document.createElement("input");
    h.type = "hidden"; h.name = "csrf"; h.value = csrf;
    const b = document.createElement("button");
    b.textContent = "Apply " + n + (n === 1 ? " change" : " changes");
    f.append(h, b);
    box.appendChild(f);
    b.focus();
  }

  if (page === "process") { feed(($("#events") || { dataset: {} }).dataset.only); logs(); status(); }
  if (page === "daemon") feed(null);
})();
