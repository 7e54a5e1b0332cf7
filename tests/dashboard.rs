//! The web dashboard: the page over a plain socket (every process in the HTML, the headers, the
//! weight, CSRF and roles), then in a real browser (Debian's chromium driven by Playwright,
//! `tests/browser/dashboard.mjs`): live updates, actions, logs, a viewer, no JavaScript.

use std::path::Path;
use std::process::Stdio;

use crate::http::{basic, role_users, send_raw, start};
use crate::util::*;

/// Programs in two groups: `web` alone, `backend` with two workers, and `ticker`, which writes
/// a line with the time it was written (ms since the epoch) three times a second.
fn config() -> String {
    format!(
        "{}[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.worker]\ncommand = \"sleep 1000\"\nnumprocs = 2\n\
         process_name = \"worker_%(process_num)d\"\nstartsecs = 0\n\n\
         [programs.ticker]\ncommand = \"sh -c 'while :; do echo \\\"tick $(date +%s%3N)\\\"; sleep 0.3; done'\"\n\
         startsecs = 0\n\n\
         [groups.backend]\nprograms = [\"worker\"]\n",
        role_users()
    )
}

const NAMES: [&str; 4] = ["backend:worker_0", "backend:worker_1", "ticker", "web"];

/// GET as a user: status, head (lowercase), body.
fn get(port: u16, user: (&str, &str), path: &str) -> (u16, String, String) {
    send_raw(port, "GET", path, &basic(user.0, user.1), "")
}

fn post(port: u16, user: (&str, &str), path: &str, extra: &str, body: &str) -> (u16, String) {
    let headers = format!(
        "{}{extra}Content-Type: application/x-www-form-urlencoded\r\n",
        basic(user.0, user.1)
    );
    let (code, _, body) = send_raw(port, "POST", path, &headers, body);
    (code, body)
}

/// The CSRF token a page carries.
fn token(page: &str) -> String {
    let at = page.find("name=\"kahi-csrf\" content=\"").expect("a token in the page") + 26;
    page[at..].split('"').next().unwrap().to_string()
}

const VIEWER: (&str, &str) = ("v", "vpw");
const OPERATOR: (&str, &str) = ("o", "opw");

#[test]
fn the_page_shows_every_process_with_its_state_light_and_secured() {
    let (d, port) = start("dash-page", &config());
    for n in NAMES {
        d.wait_state(n, "RUNNING");
    }
    let (code, head, page) = get(port, OPERATOR, "/");
    assert_eq!(code, 200, "{page}");
    assert!(head.contains("content-type: text/html"), "{head}");
    let csp = head.lines().find(|l| l.starts_with("content-security-policy:")).expect(&head);
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!page.contains("<script>") && !page.contains("style="), "nothing inline");
    for n in NAMES {
        assert!(page.contains(&format!("data-name=\"{n}\" data-state=\"RUNNING\"")), "{n}: {page}");
    }
    assert!(page.contains("aria-label=\"Restart web\"") && page.contains("Restart all failed"));
    // The page and everything it loads.
    let mut weight = page.len();
    for asset in ["/ui/kahi.css", "/ui/kahi.js", "/ui/icon.svg"] {
        let (code, head, body) = get(port, VIEWER, asset);
        assert_eq!(code, 200, "{asset}");
        assert!(head.contains("content-security-policy"), "{asset}: {head}");
        weight += body.len();
    }
    assert!(weight < 60 << 10, "the dashboard weighs {weight} bytes");
    // No credentials in the page: the user's name, never the Basic value.
    assert!(!page.contains("b3Bwdw") && !page.contains("opw"), "credentials in the page");

    // A viewer sees the same table and no action.
    let (code, _, page) = get(port, VIEWER, "/");
    assert_eq!(code, 200);
    assert!(NAMES.iter().all(|n| page.contains(&format!("data-name=\"{n}\""))));
    assert!(!page.contains("<form class=\"act\"") && !page.contains("Restart all failed"));
    // A process's page and the daemon's.
    let (code, _, page) = get(port, VIEWER, "/ui/p/backend%3Aworker_1");
    assert_eq!(code, 200);
    assert!(page.contains("Configuration in force") && page.contains("sleep 1000"), "{page}");
    assert_eq!(get(port, VIEWER, "/ui/p/nope").0, 404);
    let (code, _, page) = get(port, VIEWER, "/ui/daemon");
    assert_eq!(code, 200);
    assert!(page.contains(&d.config.display().to_string()), "{page}");
    // Without credentials: nothing.
    assert_eq!(send_raw(port, "GET", "/", "", "").0, 401);
}

#[test]
fn a_form_needs_its_users_token_and_role_and_a_cross_site_post_is_refused() {
    let (d, port) = start("dash-forms", &config());
    d.wait_state("web", "RUNNING");
    let pid = d.process("web")["pid"].clone();
    let (_, _, page) = get(port, OPERATOR, "/");
    let op_token = token(&page);
    let (_, _, page) = get(port, VIEWER, "/");
    let viewer_token = token(&page);
    assert_ne!(op_token, viewer_token);

    // Without a token, with another's, or with a bad one: refused, nothing done.
    let path = "/ui/p/web";
    for body in ["do=restart", "do=restart&csrf=x", &format!("do=restart&csrf={viewer_token}")] {
        let (code, answer) = post(port, OPERATOR, path, "", body);
        assert_eq!(code, 403, "{body}: {answer}");
        assert!(answer.contains("token"), "{answer}");
    }
    assert_eq!(d.process("web")["pid"], pid, "a refused form changed nothing");
    // A viewer, even with its own token: 403.
    let (code, answer) = post(port, VIEWER, path, "", &format!("do=restart&csrf={viewer_token}"));
    assert_eq!(code, 403, "{answer}");
    // A browser sent from another site, with the right token: refused; on the API too.
    let cross = "Sec-Fetch-Site: cross-site\r\n";
    let body = format!("do=restart&csrf={op_token}");
    assert_eq!(post(port, OPERATOR, path, cross, &body).0, 403);
    let other = "Origin: http://evil.example\r\n";
    assert_eq!(post(port, OPERATOR, "/api/v1/processes/web/restart", other, "").0, 403);
    assert_eq!(d.process("web")["pid"], pid);

    // The operator's own form: done, and back to the table.
    let (code, head, _) = send_raw(
        port,
        "POST",
        path,
        &format!("{}Sec-Fetch-Site: same-origin\r\n", basic(OPERATOR.0, OPERATOR.1)),
        &body,
    );
    assert_eq!(code, 303, "{head}");
    assert!(head.contains("location: /\r\n"), "{head}");
    wait_until("web restarted", DEADLINE, || {
        let p = d.process("web");
        p["state"] == "RUNNING" && p["pid"] != pid
    });
    // As the script sends it: JSON.
    let (code, answer) =
        post(port, OPERATOR, "/ui/g/backend", "", &format!("do=stop&as=json&csrf={op_token}"));
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("backend:worker_0"), "{answer}");
    d.wait_state("backend:worker_0", "STOPPED");
    // Nothing has failed: "restart all failed" does nothing, and says so.
    let (code, answer) =
        post(port, OPERATOR, "/ui/restart-failed", "", &format!("as=json&csrf={op_token}"));
    assert_eq!((code, answer.trim()), (200, "[]"));
}

/// What the browser test needs, or why it cannot run here.
fn browser() -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("no /usr/bin/chromium (apt-get install chromium)".into());
    }
    let node = std::process::Command::new("node").arg("--version").stdout(Stdio::null()).status();
    if !node.is_ok_and(|s| s.success()) {
        return Err("no node".into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Err("no playwright-core (npm ci in tests/browser)".into());
    }
    Ok(())
}

#[test]
fn in_a_browser_the_table_lives_acts_follows_logs_and_works_without_javascript() {
    if let Err(why) = browser() {
        return skip(&why);
    }
    let (d, port) = start("dash-browser", &config());
    for n in NAMES {
        d.wait_state(n, "RUNNING");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.mjs");
    // The browser's fresh profile goes here (a short path: chromium's socket in it must fit
    // in sun_path), removed when the test ends.
    let tmp = TempDir(std::env::temp_dir().join(format!("kahi-{}", d.dir.tag)));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let mut cmd = d.dir.command("node");
    cmd.arg(&script)
        .env("KAHI_URL", format!("http://127.0.0.1:{port}"))
        .env("KAHI_PROCESSES", NAMES.join(","))
        .env("TMPDIR", &tmp.0);
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "the browser test failed:\n{}\n{}", out.stdout, out.stderr);
    // What the browser did, seen from the daemon.
    d.wait_state("backend:worker_0", "STOPPED");
    d.wait_state("backend:worker_1", "STOPPED");
    d.wait_state("web", "STOPPED");
    assert!(out.stdout.contains("ok: log line"), "{}", out.stdout);
}

#[test]
fn in_a_browser_a_dropped_stream_reconnects_and_reads_the_table_and_a_process_page_again() {
    if let Err(why) = browser() {
        return skip(&why);
    }
    // A fixed port: the daemon is started again on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut d = Daemon::start(
        "dash-reconnect",
        &format!("[server.http]\nlisten = \"127.0.0.1:{port}\"\n\n{}", config()),
    );
    d.wait_state("web", "RUNNING");
    let tmp = TempDir(std::env::temp_dir().join(format!("kahi-{}", d.dir.tag)));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/reconnect.mjs");
    let mut node = d
        .dir
        .command("node")
        .arg(&script)
        .env("KAHI_URL", format!("http://127.0.0.1:{port}"))
        .env("TMPDIR", &tmp.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(node.stdout.take().unwrap());
    let mut said = String::new();
    use std::io::{BufRead, Read, Write};
    while !said.ends_with("ready\n") {
        if out.read_line(&mut said).unwrap() == 0 {
            let _ = node.wait();
            panic!("the browser test ended before it was ready:\n{said}");
        }
    }
    // Kahi stops (the page's stream drops) and starts again on the same port.
    d.signal(15);
    d.wait_exit(DEADLINE);
    let log = std::fs::OpenOptions::new().append(true).open(d.dir.join("daemon.log")).unwrap();
    let child = d
        .dir
        .command(KAHI)
        .args(["daemon", "-c"])
        .arg(&d.config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    d.child = Some(child);
    wait_until("the new daemon answers", DEADLINE, || {
        std::os::unix::net::UnixStream::connect(&d.socket).is_ok()
    });
    d.wait_state("web", "RUNNING");
    writeln!(node.stdin.take().unwrap(), "go").unwrap();
    out.read_to_string(&mut said).unwrap();
    let status = node.wait().unwrap();
    assert!(status.success(), "the browser test failed:\n{said}");
    assert!(said.contains("ok: the process page read its status again"), "{said}");
    assert!(said.contains("ok: a form sent after the restart"), "{said}");
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_admin_sees_what_a_reread_would_change_before_applying_it() {
    let admin = ("a", "apw");
    let (d, port) = start("dash-reread", &config());
    d.wait_state("web", "RUNNING");
    let (_, _, page) = get(port, admin, "/ui/daemon");
    assert!(page.contains("action=\"/ui/daemon/reread\""), "{page}");
    let admin_token = token(&page);
    // An operator sees no reread, and may not ask for one.
    let (_, _, page) = get(port, OPERATOR, "/ui/daemon");
    assert!(!page.contains("/ui/daemon/reread"));
    let op = token(&get(port, OPERATOR, "/").2);
    assert_eq!(post(port, OPERATOR, "/ui/daemon/reread", "", &format!("csrf={op}")).0, 403);

    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{text}\n[programs.extra]\ncommand = \"sleep 1000\"\n"))
        .unwrap();
    let back = "back=%2Fui%2Fdaemon";
    let (code, page) =
        post(port, admin, "/ui/daemon/reread", "", &format!("csrf={admin_token}&{back}"));
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("extra: added") && page.contains("action=\"/ui/daemon/update\""));
    assert!(d.status().iter().all(|p| p["name"] != "extra"), "a reread applies nothing");
    let (code, body) =
        post(port, admin, "/ui/daemon/reread", "", &format!("csrf={admin_token}&as=json"));
    assert_eq!(code, 200);
    assert!(body.contains("\"added\":[\"extra\"]"), "{body}");

    let (code, head, _) = send_raw(
        port,
        "POST",
        "/ui/daemon/update",
        &basic(admin.0, admin.1),
        &format!("csrf={admin_token}&{back}"),
    );
    assert_eq!(code, 303, "{head}");
    assert!(head.contains("location: /ui/daemon\r\n"), "{head}");
    d.wait_state("extra", "RUNNING");
}
