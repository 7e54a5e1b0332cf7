//! The dashboard's pages as HTML, made from snapshots the loop took. Pure but for the CPU and
//! memory figures, read from /proc on the front's thread. Every text from outside Kahi (names,
//! commands, log lines, errors) goes through [`esc`]; nothing inline runs or styles (the
//! Content-Security-Policy forbids it): behaviour is `kahi.js`, looks are `kahi.css`.

use std::fmt::Write;

use super::Viewer;
use crate::api::{ApiError, ConfigInfo, NameResult, ProcessConfig, ProcessInfo};
use crate::config::Role;
use crate::metrics::{Usage, usage_of};
use crate::supervisor::Changes;

/// HTML-escapes text for an element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A name as a path segment.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A duration, short: `3d 4h`, `4h 5m`, `5m 6s`, `7s`.
pub fn dur(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1048576 => format!("{:.0} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1048576.0),
    }
}

/// The asset URL, versioned so that a new binary's assets are new URLs.
fn asset(name: &str) -> String {
    format!("/ui/{name}?v={}", crate::VERSION)
}

/// The page's head and top bar.
fn open(out: &mut String, who: &Viewer, title: &str, page: &str) {
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Kahi</title><link rel=\"stylesheet\" href=\"{}\">\
         <link rel=\"icon\" href=\"/ui/icon.svg\"><script src=\"{}\" defer></script>\
         <meta name=\"kahi-csrf\" content=\"{}\"></head><body data-page=\"{page}\">\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><a class=\"brand\" href=\"/\">Kahi</a>\
         <nav aria-label=\"Pages\"><a href=\"/\"{}>Processes</a> <a href=\"/ui/daemon\"{}>Daemon</a></nav>\
         <span id=\"live\" class=\"live\" role=\"status\">static</span>",
        esc(title),
        asset("kahi.css"),
        asset("kahi.js"),
        esc(&who.token),
        if page == "index" { " aria-current=\"page\"" } else { "" },
        if page == "daemon" { " aria-current=\"page\"" } else { "" },
    );
    if !who.name.is_empty() {
        let _ = write!(out, "<span class=\"who\">{} ({})</span>", esc(&who.name), who.role.name());
    }
    out.push_str("</header><div id=\"msg\" class=\"msg\" role=\"status\" aria-live=\"polite\"></div><main id=\"main\">");
}

fn close(out: &mut String) {
    out.push_str("</main></body></html>");
}

/// The hidden fields every form carries.
fn hidden(out: &mut String, who: &Viewer, back: &str) {
    let _ = write!(out, "<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&who.token));
    if back != "/" {
        let _ = write!(out, "<input type=\"hidden\" name=\"back\" value=\"{}\">", esc(back));
    }
}

const SIGNALS: [&str; 7] = ["HUP", "INT", "TERM", "KILL", "USR1", "USR2", "QUIT"];

/// The actions on a process or a group, for an operator or an admin.
fn actions(out: &mut String, who: &Viewer, name: &str, group: bool, back: &str) {
    if who.role < Role::Operator {
        return;
    }
    let path = if group { "g" } else { "p" };
    let label = if group { format!("group {name}") } else { name.to_string() };
    let label = esc(&label);
    let _ = write!(out, "<form class=\"act\" method=\"post\" action=\"/ui/{path}/{}\">", seg(name));
    hidden(out, who, back);
    for (what, text) in
        [("start", "Start"), ("stop", "Stop"), ("restart", "Restart"), ("clear", "Clear")]
    {
        let _ = write!(
            out,
            "<button name=\"do\" value=\"{what}\" aria-label=\"{text} {label}\">{text}</button>"
        );
    }
    let _ = write!(out, "<select name=\"signal\" aria-label=\"Signal for {label}\">");
    for s in SIGNALS {
        let _ = write!(out, "<option>{s}</option>");
    }
    let _ = write!(
        out,
        "</select><button name=\"do\" value=\"signal\" aria-label=\"Send signal to {label}\">Signal</button></form>"
    );
}

/// The state, coloured by its class; BACKOFF with the seconds to its next start.
fn state(p: &ProcessInfo) -> String {
    let name = p.state.name();
    match p.next_start_in {
        Some(s) => format!(
            "<span class=\"st st-{name}\" data-next=\"{s:.1}\">{name} <small>{}</small></span>",
            dur(s.ceil())
        ),
        None => format!("<span class=\"st st-{name}\">{name}</span>"),
    }
}

fn exit(p: &ProcessInfo) -> String {
    let mut s = p.exitstatus.map(|c| c.to_string()).unwrap_or_default();
    if p.oom_killed {
        s.push_str(" (OOM)");
    }
    s
}

/// The CPU time and resident memory of each running process, by the list's order.
pub fn usage(list: &[ProcessInfo]) -> Vec<Option<Usage>> {
    list.iter().map(|p| p.pid.filter(|&pid| pid > 0).and_then(usage_of)).collect()
}

/// The table's data: each process as the API shows it, with `cpu_seconds` and `rss_bytes`.
pub fn data(list: Vec<ProcessInfo>) -> serde_json::Value {
    let use_ = usage(&list);
    let mut v = serde_json::to_value(&list).unwrap_or_default();
    if let Some(all) = v.as_array_mut() {
        for (p, u) in all.iter_mut().zip(use_) {
            if let (Some(o), Some(u)) = (p.as_object_mut(), u) {
                o.insert("cpu_seconds".into(), u.cpu_seconds.into());
                o.insert("rss_bytes".into(), u.rss_bytes.into());
            }
        }
    }
    v
}

/// One row of the process table.
fn row(out: &mut String, who: &Viewer, p: &ProcessInfo, u: Option<&Usage>, hide: bool) {
    let uptime = p.uptime_secs.map(dur).unwrap_or_default();
    let _ = write!(
        out,
        "<tr data-name=\"{n}\" data-state=\"{st}\"{h}{up}><td data-l=\"Name\"><a href=\"/ui/p/{s}\">{n}</a>",
        n = esc(&p.name),
        st = p.state.name(),
        s = seg(&p.name),
        h = if hide { " hidden" } else { "" },
        up = p.uptime_secs.map(|u| format!(" data-up=\"{u:.0}\"")).unwrap_or_default(),
    );
    let note = p.spawnerr.as_deref().or(p.status_text.as_deref()).unwrap_or("");
    if !note.is_empty() {
        let _ = write!(out, "<small class=\"note\">{}</small>", esc(note));
    }
    let _ = write!(
        out,
        "</td><td data-l=\"State\" class=\"c-state\">{}</td><td data-l=\"PID\" class=\"c-pid\">{}</td>\
         <td data-l=\"Uptime\" class=\"c-up\">{uptime}</td><td data-l=\"Health\" class=\"c-health\">{}</td>\
         <td data-l=\"Restarts\" class=\"c-restarts\">{}</td><td data-l=\"Exit\" class=\"c-exit\">{}</td>\
         <td data-l=\"Waits for\" class=\"c-wait\">{}</td><td data-l=\"CPU\" class=\"c-cpu\">{}</td>\
         <td data-l=\"Memory\" class=\"c-mem\">{}</td>",
        state(p),
        p.pid.map(|p| p.to_string()).unwrap_or_default(),
        p.health.map(|h| h.name()).unwrap_or(""),
        p.restarts,
        exit(p),
        esc(&p.waiting_for.join(", ")),
        u.map(|u| format!("{:.1}s", u.cpu_seconds)).unwrap_or_default(),
        u.map(|u| bytes(u.rss_bytes)).unwrap_or_default(),
    );
    if who.role >= Role::Operator {
        out.push_str("<td class=\"c-act\">");
        actions(out, who, &p.name, false, "/");
        out.push_str("</td>");
    }
    out.push_str("</tr>");
}

/// The process table, grouped by group, filtered by a part of the name and a state.
pub fn index(
    who: &Viewer,
    list: &[ProcessInfo],
    q: &str,
    state_filter: &str,
    use_: &[Option<Usage>],
) -> String {
    let mut out = String::with_capacity(4096 + list.len() * 900);
    open(&mut out, who, "Processes", "index");
    let _ = write!(
        out,
        "<h1>Processes</h1><form id=\"filter\" class=\"filter\" method=\"get\" action=\"/\" role=\"search\">\
         <label>Name <input id=\"q\" name=\"q\" type=\"search\" value=\"{}\"></label>\
         <label>State <select id=\"state\" name=\"state\"><option value=\"\">any</option>",
        esc(q)
    );
    for s in crate::process::State::ALL {
        let sel = if s.name() == state_filter { " selected" } else { "" };
        let _ = write!(out, "<option{sel}>{}</option>", s.name());
    }
    out.push_str("</select></label><button>Filter</button></form>");
    if who.role >= Role::Operator {
        out.push_str("<form class=\"bulk\" method=\"post\" action=\"/ui/restart-failed\">");
        hidden(&mut out, who, "/");
        out.push_str("<button>Restart all failed</button></form>");
    }
    let ops = who.role >= Role::Operator;
    out.push_str(
        "<div class=\"wrap\"><table id=\"procs\"><caption class=\"sr\">Processes by group</caption><thead><tr>\
         <th scope=\"col\">Name</th><th scope=\"col\">State</th><th scope=\"col\">PID</th>\
         <th scope=\"col\">Uptime</th><th scope=\"col\">Health</th><th scope=\"col\">Restarts</th>\
         <th scope=\"col\">Exit</th><th scope=\"col\">Waits for</th><th scope=\"col\">CPU</th>\
         <th scope=\"col\">Memory</th>",
    );
    if ops {
        out.push_str("<th scope=\"col\">Actions</th>");
    }
    out.push_str("</tr></thead>");
    // Programs alone in a group of their own name first, without a heading; then each group.
    let alone = |p: &ProcessInfo| p.name == p.group;
    let mut groups: Vec<&str> =
        list.iter().filter(|p| !alone(p)).map(|p| p.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let cols = if ops { 11 } else { 10 };
    let q = q.to_lowercase();
    let rows = |out: &mut String, keep: &dyn Fn(&ProcessInfo) -> bool| {
        for (p, u) in list.iter().zip(use_).filter(|(p, _)| keep(p)) {
            let hide = (!q.is_empty() && !p.name.to_lowercase().contains(&q))
                || (!state_filter.is_empty() && p.state.name() != state_filter);
            row(out, who, p, u.as_ref(), hide);
        }
    };
    if list.iter().any(alone) {
        out.push_str("<tbody>");
        rows(&mut out, &alone);
        out.push_str("</tbody>");
    }
    for g in groups {
        let _ = write!(
            out,
            "<tbody data-group=\"{}\"><tr class=\"grp\"><th colspan=\"{cols}\" scope=\"rowgroup\">\
             <span>Group <b>{}</b></span>",
            esc(g),
            esc(g)
        );
        actions(&mut out, who, g, true, "/");
        out.push_str("</th></tr>");
        rows(&mut out, &|p: &ProcessInfo| !alone(p) && p.group == g);
        out.push_str("</tbody>");
    }
    out.push_str("</table></div>");
    close(&mut out);
    out
}

fn dl(out: &mut String, items: &[(&str, String)]) {
    out.push_str("<dl class=\"kv\">");
    for (k, v) in items {
        let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", esc(v));
    }
    out.push_str("</dl>");
}

/// A process: its status, its actions, its configuration in force, its log and its events.
pub fn process(who: &Viewer, p: &ProcessInfo, c: &ProcessConfig, tails: &[String; 2]) -> String {
    let mut out = String::with_capacity(8192);
    open(&mut out, who, &p.name, "process");
    let back = format!("/ui/p/{}", seg(&p.name));
    let _ = write!(
        out,
        "<h1 id=\"proc\" data-name=\"{}\">{} {}</h1>",
        esc(&p.name),
        esc(&p.name),
        state(p)
    );
    actions(&mut out, who, &p.name, false, &back);
    out.push_str("<section aria-labelledby=\"h-st\"><h2 id=\"h-st\">Status</h2>");
    let opt = |v: Option<String>| v.unwrap_or_default();
    dl(
        &mut out,
        &[
            ("Group", p.group.clone()),
            ("PID", opt(p.pid.map(|v| v.to_string()))),
            ("Uptime", opt(p.uptime_secs.map(dur))),
            ("Health", opt(p.health.map(|h| h.name().to_string()))),
            ("Restarts", p.restarts.to_string()),
            ("Exit status", exit(p)),
            ("Waits for", p.waiting_for.join(", ")),
            ("Description", p.description.clone()),
            ("Spawn error", opt(p.spawnerr.clone())),
        ],
    );
    out.push_str(
        "</section><section aria-labelledby=\"h-cfg\"><h2 id=\"h-cfg\">Configuration in force</h2>",
    );
    let list = |v: &[String]| v.join(" ");
    dl(
        &mut out,
        &[
            ("Program", c.program.clone()),
            ("Command", list(&c.command)),
            ("Directory", opt(c.directory.as_ref().map(|d| d.display().to_string()))),
            ("Autostart", c.autostart.to_string()),
            ("Autorestart", c.autorestart.clone()),
            ("Start secs", c.startsecs.to_string()),
            ("Start retries", c.startretries.to_string()),
            (
                "Exit codes",
                c.exitcodes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
            ),
            ("Stop signal", c.stopsignal.clone()),
            ("Stop wait secs", c.stopwaitsecs.to_string()),
            ("Environment", c.environment.join(", ")),
            ("Stdout log file", opt(c.stdout_logfile.clone())),
            ("Stderr log file", opt(c.stderr_logfile.clone())),
        ],
    );
    let api = format!("/api/v1/processes/{}/log", seg(&p.name));
    let _ = write!(
        out,
        "</section><section aria-labelledby=\"h-log\" class=\"logs\" data-api=\"{api}\"><h2 id=\"h-log\">Log</h2>\
         <div class=\"tools\"><div role=\"tablist\" aria-label=\"Stream\">\
         <button role=\"tab\" id=\"t-stdout\" aria-selected=\"true\" aria-controls=\"log\" data-stream=\"stdout\">stdout</button>\
         <button role=\"tab\" id=\"t-stderr\" aria-selected=\"false\" aria-controls=\"log\" data-stream=\"stderr\" tabindex=\"-1\">stderr</button></div>\
         <button id=\"pause\" type=\"button\" aria-pressed=\"false\" hidden>Pause</button>\
         <label>Search <input id=\"find\" type=\"search\" hidden></label>\
         <a id=\"download\" href=\"{api}/stdout?length=1048576\" download=\"{}-stdout.json\">Download</a></div>\
         <pre id=\"log\" role=\"tabpanel\" aria-labelledby=\"t-stdout\" tabindex=\"0\" aria-live=\"off\">{}</pre>\
         <noscript><h3>stderr</h3><pre>{}</pre></noscript></section>\
         <section aria-labelledby=\"h-ev\"><h2 id=\"h-ev\">Recent events</h2><ol id=\"events\" class=\"feed\" data-only=\"{}\">\
         <li class=\"none\">None since this page opened.</li></ol></section>",
        esc(&p.name.replace(':', "_")),
        esc(&tails[0]),
        esc(&tails[1]),
        esc(&p.name),
    );
    close(&mut out);
    out
}

/// The daemon: version, uptime, configuration file, reread and update, events.
pub fn daemon(who: &Viewer, c: &ConfigInfo, processes: usize) -> String {
    let mut out = String::with_capacity(4096);
    open(&mut out, who, "Daemon", "daemon");
    out.push_str(
        "<h1>Daemon</h1><section aria-labelledby=\"h-d\"><h2 id=\"h-d\" class=\"sr\">About</h2>",
    );
    let addrs: Vec<String> = c.http.iter().map(|a| a.to_string()).collect();
    dl(
        &mut out,
        &[
            ("Version", crate::VERSION.to_string()),
            ("PID", std::process::id().to_string()),
            ("Uptime", own_uptime().map(dur).unwrap_or_default()),
            ("Configuration file", c.file.display().to_string()),
            ("Control socket", c.socket.display().to_string()),
            ("HTTP", addrs.join(", ")),
            ("Programs", c.programs.len().to_string()),
            ("Processes", processes.to_string()),
        ],
    );
    out.push_str("</section>");
    if who.role >= Role::Admin {
        out.push_str(
            "<section aria-labelledby=\"h-cf\"><h2 id=\"h-cf\">Configuration</h2>\
             <p>Read the file again and see what would change; nothing is applied until you say so.</p>\
             <form id=\"reread\" method=\"post\" action=\"/ui/daemon/reread\">",
        );
        hidden(&mut out, who, "/ui/daemon");
        out.push_str("<button>Show changes</button></form><div id=\"diff\"></div></section>");
    }
    out.push_str(
        "<section aria-labelledby=\"h-ev\"><h2 id=\"h-ev\">Events</h2><ol id=\"events\" class=\"feed\">\
         <li class=\"none\">None since this page opened.</li></ol></section>",
    );
    close(&mut out);
    out
}

/// What a reread found, with the form that applies it.
pub fn changes(who: &Viewer, c: &Changes, back: &str) -> String {
    let mut out = String::with_capacity(2048);
    open(&mut out, who, "Changes", "changes");
    out.push_str("<h1>Changes in the configuration file</h1>");
    let none = c.added.is_empty() && c.changed.is_empty() && c.removed.is_empty();
    if none {
        out.push_str("<p>No changes: the file is what is in force.</p>");
    }
    for (what, names) in [("added", &c.added), ("changed", &c.changed), ("removed", &c.removed)] {
        for n in names {
            let _ = write!(out, "<p class=\"chg chg-{what}\">{}: {what}</p>", esc(n));
        }
    }
    if !none {
        out.push_str("<form method=\"post\" action=\"/ui/daemon/update\">");
        hidden(&mut out, who, back);
        out.push_str("<button>Apply</button></form>");
    }
    let _ = write!(out, "<p><a href=\"{}\">Back</a></p>", esc(back));
    close(&mut out);
    out
}

/// The outcome of an action that did not all go as asked.
pub fn results(who: &Viewer, results: &[NameResult], back: &str) -> String {
    let mut out = String::with_capacity(1024);
    open(&mut out, who, "Result", "result");
    out.push_str("<h1>Result</h1><ul>");
    for r in results {
        let detail = r.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        let _ = write!(out, "<li>{}: {}{}</li>", esc(&r.name), r.outcome.text(), esc(&detail));
    }
    let _ = write!(out, "</ul><p><a href=\"{}\">Back</a></p>", esc(back));
    close(&mut out);
    out
}

/// A refusal or an error, as a page.
pub fn error(who: &Viewer, e: &ApiError, back: &str) -> String {
    let mut out = String::with_capacity(1024);
    open(&mut out, who, "Error", "error");
    let _ = write!(
        out,
        "<h1>Error</h1><p class=\"err\">{}</p><p><a href=\"{}\">Back</a></p>",
        esc(&e.error),
        esc(back)
    );
    close(&mut out);
    out
}

/// How long this process has run: its start (field 22 of /proc/self/stat, in clock ticks
/// since boot) against the time since boot (/proc/uptime).
fn own_uptime() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let start: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let up: f64 =
        std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    Some(up - start / crate::metrics::ticks_per_second())
}
