//! The documentation agrees with the binary: every command and option `--help` lists is in
//! the man pages and in the shell completions; the completions complete; `make install` puts
//! pages that `man` renders; every command of README.md's tour works, as written, on
//! kahi.example.toml. (Config keys are kept in agreement by the unit tests of
//! src/config/doc_tests.rs.)

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The commands a `--help` lists under "Commands:".
fn commands(args: &[&str]) -> Vec<String> {
    let out = run(Command::new(KAHI).args(args).arg("--help"));
    assert_eq!(out.code, 0, "{out:?}");
    let section = out.stdout.split("Commands:").nth(1).expect("a Commands: section");
    section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// The long options a `--help` lists, but --help itself.
fn options(args: &[&str]) -> Vec<String> {
    let out = run(Command::new(KAHI).args(args).arg("--help"));
    let section = out.stdout.split("Options:").nth(1).expect("an Options: section");
    section
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("-").map(|_| l.trim_start()))
        .flat_map(|l| l.split_whitespace().take_while(|w| w.starts_with('-')).collect::<Vec<_>>())
        .map(|w| w.trim_end_matches(',').to_string())
        .filter(|w| w.starts_with("--") && w != "--help")
        .collect()
}

/// How a man page writes a word: dashes escaped.
fn roff(word: &str) -> String {
    word.replace('-', "\\-")
}

#[test]
fn every_command_and_option_is_in_the_man_pages() {
    let kahi = read("man/kahi.1");
    let top = commands(&[]);
    assert!(top.len() >= 5 && top.contains(&"exec".to_string()), "{top:?}");
    for c in &top {
        assert!(kahi.contains(&format!(".B {}\n", roff(c))), "kahi(1) lacks the command {c}");
    }
    let daemon = options(&["daemon"]);
    assert!(daemon.contains(&"--pidfile".to_string()), "{daemon:?}");
    for o in &daemon {
        assert!(kahi.contains(&roff(o)), "kahi(1) lacks daemon {o}");
    }
    let ctl_page = read("man/kahi-ctl.1");
    let ctl = commands(&["ctl"]);
    assert!(ctl.len() >= 15, "{ctl:?}");
    for c in &ctl {
        let documented = ctl_page
            .lines()
            .any(|l| l.starts_with(".B") && l.split_whitespace().nth(1) == Some(&roff(c)));
        assert!(documented, "kahi-ctl(1) lacks the command {c}");
        for o in options(&["ctl", c]) {
            assert!(ctl_page.contains(&roff(&o)), "kahi-ctl(1) lacks ctl {c} {o}");
        }
    }
}

#[test]
fn the_completions_know_every_command() {
    for file in ["contrib/completions/kahi.bash", "contrib/completions/_kahi"] {
        let text = read(file);
        let words: Vec<&str> =
            text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).collect();
        for c in commands(&[]).iter().chain(commands(&["ctl"]).iter()) {
            assert!(words.contains(&c.as_str()), "{file} lacks the command {c}");
        }
        for o in options(&["daemon"]) {
            assert!(text.contains(&o), "{file} lacks daemon {o}");
        }
    }
}

/// Runs the bash completion of `line` (the cursor at its end) and returns what it offers.
fn complete(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let script = format!(
        ". {ROOT}/contrib/completions/kahi.bash\n\
         COMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT={point}\n\
         _kahi kahi '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        cword = words.len() - 1,
        point = line.len(),
        cur = words[words.len() - 1],
        prev = if words.len() > 1 { words[words.len() - 2] } else { "" },
    );
    let out = run(Command::new("bash").arg("-c").arg(&script).env("PATH", path_with_kahi()));
    assert_eq!(out.code, 0, "{out:?}");
    let mut got: Vec<String> = out.stdout.lines().map(String::from).collect();
    got.sort();
    got
}

/// PATH with the directory of the binary under test first, so completions find `kahi`.
fn path_with_kahi() -> String {
    let dir = Path::new(KAHI).parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

#[test]
fn bash_completes_commands_options_and_process_names() {
    let mut want: Vec<String> =
        commands(&["ctl"]).into_iter().filter(|c| c.starts_with("st")).collect();
    want.sort();
    assert_eq!(complete("kahi ctl st"), want);
    assert_eq!(complete("kahi e"), ["exec"]);
    assert!(complete("kahi daemon --").contains(&"--daemonize".to_string()));

    // Process names come from the running daemon named on the line.
    let d = Daemon::start(
        "complete",
        "[programs.alpha]\ncommand = \"sleep 1000\"\n\n[programs.alps]\ncommand = \"sleep 1000\"\n",
    );
    let sock = path_str(&d.socket);
    let got = complete(&format!("kahi ctl -s {sock} restart al"));
    assert_eq!(got, ["all", "alpha", "alps"]);
}

#[test]
fn make_install_puts_every_page_where_man_renders_it() {
    let dest = Dir::new("install");
    let out = run(Command::new("make")
        .current_dir(ROOT)
        .args(["-s", "-o", "static", "install"])
        .arg(format!("DESTDIR={}", dest.path.display()))
        .arg(format!("KAHI_BIN={KAHI}")));
    assert_eq!(out.code, 0, "{out:?}");
    let prefix = dest.join("usr/local");
    assert!(prefix.join("bin/kahi").is_file());
    assert!(prefix.join("share/bash-completion/completions/kahi").is_file());
    assert!(prefix.join("share/zsh/site-functions/_kahi").is_file());
    assert!(prefix.join("share/fish/vendor_completions.d/kahi.fish").is_file());
    for (page, title) in [
        ("share/man/man1/kahi.1", "KAHI(1)"),
        ("share/man/man1/kahi-ctl.1", "KAHI-CTL(1)"),
        ("share/man/man5/kahi.toml.5", "KAHI.TOML(5)"),
    ] {
        let path = prefix.join(page);
        let out = run(Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat"));
        assert_eq!(out.code, 0, "man -l {page}: {out:?}");
        assert!(out.stdout.starts_with(title), "{page} renders as:\n{}", out.stdout);
        assert!(out.stdout.contains("SEE ALSO") && out.stderr.is_empty(), "{page}: {out:?}");
    }
}

// ---- README.md's tour, on kahi.example.toml ----

/// The tour's commands, read from README.md: the body of the `kctl` alias, and every line of
/// the section's `sh` blocks that starts with `kctl ` or `curl `, in order.
fn tour() -> (String, Vec<String>) {
    let readme = read("README.md");
    let start = readme.find("## A tour of `kahi ctl`").expect("README.md has a tour section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let (mut alias, mut lines, mut in_sh) = (None, Vec::new(), false);
    for line in section.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(body) = line.strip_prefix("alias kctl='") {
            alias = body.strip_suffix('\'').map(String::from);
        } else if line.starts_with("kctl ") || line.starts_with("curl ") {
            lines.push(line.to_string());
        }
    }
    let alias = alias.expect("the tour defines alias kctl='...'");
    (alias, lines)
}

/// Whether a tour command follows something until it is stopped.
fn follows(line: &str) -> bool {
    let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
    words.contains(&"-f") || (words[0] == "curl" && words.contains(&"-N"))
}

/// The exit status the README documents for a tour command on the example: `status` is 3
/// there (setup and hello are EXITED, sleeper STOPPED); everything else succeeds.
fn documented_exit(line: &str) -> i32 {
    if line.starts_with("kctl status") { 3 } else { 0 }
}

/// Runs `line` with `sh` from the repository's root, `kctl` defined as the alias says (with
/// the binary under test), in its own process group, its output in a file of `dir`.
fn tour_command(dir: &Dir, alias: &str, n: usize, line: &str) -> (std::process::Child, String) {
    let rest =
        alias.strip_prefix("./target/release/kahi ").expect("the alias runs the release kahi");
    let script = format!("kctl() {{ \"$KAHI_UNDER_TEST\" {rest} \"$@\"; }}\n{line}\n");
    let out = format!("tour-{n}.out");
    let child = dir
        .command("sh")
        .arg("-c")
        .arg(script)
        .current_dir(ROOT)
        .env("KAHI_UNDER_TEST", KAHI)
        .env("XDG_RUNTIME_DIR", &dir.path)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(&out)).unwrap())
        .stderr(std::fs::File::create(dir.join(&format!("{out}.err"))).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    (child, out)
}

/// Ends a tour command's process group.
fn end_group(mut child: std::process::Child) {
    kill_group(child.id() as i32, 15);
    let _ = child.wait();
}

/// Watches flaky until one of its runs has ended, and returns the longest uptime seen in
/// that run.
fn one_flaky_run(d: &Daemon) -> f64 {
    let end = Instant::now() + DEADLINE;
    let (mut pid, mut longest) = (None, 0.0f64);
    loop {
        let r = d.request(r#"{"cmd":"status","names":["backend:flaky"]}"#);
        let p = &r["processes"][0];
        let now = p["pid"].as_i64().filter(|_| p["state"] == "RUNNING");
        if pid.is_some() && now != pid {
            return longest;
        }
        if let Some(up) = now.and(p["uptime_secs"].as_f64()) {
            (pid, longest) = (now, longest.max(up));
        }
        assert!(Instant::now() < end, "flaky did not end a run within {DEADLINE:?}: {r}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Issue 12: the tour's `kctl stop 'workers:*'` failed (the workers are in the group
/// backend), `kctl signal HUP web` killed the web server, and `flaky` crashed only after 3 s.
/// Each command of the tour, read from README.md, runs as written against the example (its
/// socket moved into the test's directory through XDG_RUNTIME_DIR) and exits as documented.
#[test]
fn issue_12_every_command_of_the_readme_tour_works_on_the_example() {
    let (alias, lines) = tour();
    let kctl = lines.iter().filter(|l| l.starts_with("kctl ")).count();
    assert!(kctl >= 10 && lines.len() - kctl >= 5, "the tour's commands were not found: {lines:?}");
    // The example listens on fixed ports: where they are taken, it cannot run.
    for port in [9876, 8765, 8766] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            skip(&format!("127.0.0.1:{port} is taken ({e}): the example cannot run here"));
            return;
        }
    }
    let dir = Dir::new("readme-tour");
    let socket = dir.join("kahi-example.sock");
    let (runtime, tmp) = (path_str(&dir.path), path_str(&dir.path));
    let env = [("XDG_RUNTIME_DIR", runtime.as_str()), ("TMPDIR", tmp.as_str())];
    let config = Path::new(ROOT).join("kahi.example.toml");
    let mut d = Daemon::launch(dir, config, socket, &env);
    d.wait_state("web", "RUNNING");

    // flaky crash-loops: each run ends a little after startsecs (1 s) made it RUNNING.
    let up = one_flaky_run(&d);
    assert!((1.0..2.5).contains(&up), "a run of flaky lasted {up} s, not 1 to 2.5 s");
    // ... and the restart guard holds its restarts back, as the README says.
    wait_until("flaky waits in BACKOFF, restarting in a while", DEADLINE, || {
        let p = d.process("backend:flaky");
        p["state"] == "BACKOFF" && p["description"].as_str().unwrap_or("").contains("restarting in")
    });

    let mut shutdown = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if line.starts_with("kctl shutdown") {
            // It ends the daemon: the last thing done, after the HTTP block.
            shutdown.push((n, line));
            continue;
        }
        let web = d.process("web")["pid"].as_i64();
        let (mut child, out) = tour_command(&d.dir, &alias, n, line);
        if follows(line) {
            // Something must come out; a state change for the event stream.
            let t = Instant::now();
            wait_until(&format!("`{line}` prints something"), DEADLINE, || {
                if t.elapsed() > Duration::from_secs(2) && d.dir.read(&out).is_empty() {
                    d.ctl(&["restart", "clock"]);
                }
                !d.dir.read(&out).is_empty()
            });
            let running = child.try_wait().unwrap().is_none();
            end_group(child);
            assert!(running, "`{line}` stopped by itself: {}", d.dir.read(&format!("{out}.err")));
            continue;
        }
        let mut code = None;
        wait_until(&format!("`{line}` exits"), DEADLINE, || {
            code = child.try_wait().unwrap().map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        let (stdout, stderr) = (d.dir.read(&out), d.dir.read(&format!("{out}.err")));
        let want = documented_exit(line);
        assert_eq!(code, Some(want), "`{line}` exited {code:?}, not {want}:\n{stdout}{stderr}");
        if line.starts_with("kctl status") || line.starts_with("curl") {
            assert!(!stdout.is_empty(), "`{line}` printed nothing: {stderr}");
        }
        if line.starts_with("kctl stop 'backend:*'") {
            for p in d.status().iter().filter(|p| p["group"] == "backend") {
                assert_eq!(p["state"], "STOPPED", "`{line}`: {p}");
            }
        }
        if line.starts_with("kctl signal HUP web") {
            wait_until("web says it reloads", DEADLINE, || {
                d.ctl(&["tail", "web"]).stdout.contains("web: SIGHUP: reloading")
            });
            assert_eq!(d.state("web"), "RUNNING", "web survives SIGHUP");
            assert_eq!(d.process("web")["pid"].as_i64(), web, "web survives SIGHUP");
        }
        if line.starts_with("kctl restart web") {
            assert_eq!(d.state("web"), "RUNNING");
            assert_ne!(d.process("web")["pid"].as_i64(), web, "web has a new pid");
        }
    }
    assert_eq!(shutdown.len(), 1, "the tour ends with kctl shutdown");
    for (n, line) in shutdown {
        let (mut child, _) = tour_command(&d.dir, &alias, n, line);
        wait_until(&format!("`{line}` exits"), DEADLINE, || child.try_wait().unwrap().is_some());
        assert_eq!(child.wait().unwrap().code(), Some(0), "`{line}`");
    }
    assert_eq!(d.wait_exit(DEADLINE), 0, "{}", d.log());
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(ROOT).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// docs/reliability.md names a test for each claim: each must exist, where it says, so that
/// the page cannot go on citing a test that was renamed or removed.
#[test]
fn every_test_the_reliability_page_cites_exists() {
    let page = read("docs/reliability.md");
    let mut files = Vec::new();
    sources(&Path::new(ROOT).join("src"), &mut files);
    sources(&Path::new(ROOT).join("tests"), &mut files);
    let defines = |text: &str, name: &str| text.contains(&format!("fn {name}()"));
    let mut cited = 0;
    for span in page.split('`').skip(1).step_by(2) {
        if let Some((file, name)) = span.split_once(".rs: ") {
            let file = format!("{file}.rs");
            let text =
                files.iter().find(|(rel, _)| *rel == file).map(|(_, t)| t.as_str()).unwrap_or_else(
                    || panic!("docs/reliability.md cites {file}, which does not exist"),
                );
            assert!(defines(text, name), "docs/reliability.md cites {name} in {file}: not there");
            cited += 1;
        } else if span.len() > 20
            && span.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            assert!(
                files.iter().any(|(_, t)| defines(t, span)),
                "docs/reliability.md cites the test {span}, which does not exist"
            );
            cited += 1;
        }
    }
    assert!(cited >= 25, "only {cited} tests cited: the page's format changed?");
}

/// Every `src/...` path ARCHITECTURE.md names exists: a module may be `a/b.rs` or `a/b/mod.rs`,
/// as Rust allows either.
#[test]
fn every_path_architecture_md_names_exists() {
    let text = read("ARCHITECTURE.md");
    let mut named = 0;
    for word in text.split(|c: char| c.is_whitespace() || "`(),".contains(c)) {
        let Some(start) = word.find("src/") else { continue };
        let path = word[start..].trim_end_matches(['.', ':', ';']);
        named += 1;
        let root = Path::new(ROOT);
        let exists = root.join(path).exists()
            || path.strip_suffix(".rs").is_some_and(|m| root.join(m).join("mod.rs").exists());
        assert!(exists, "ARCHITECTURE.md names {path}, which does not exist");
    }
    assert!(named >= 20, "only {named} paths found in ARCHITECTURE.md");
}
