//! The documentation agrees with the binary: every command and option `--help` lists is in
//! the man pages and in the shell completions; the completions complete; `make install` puts
//! pages that `man` renders. (Config keys are kept in agreement by the unit tests of
//! src/config/doc_tests.rs.)

use std::path::Path;
use std::process::Command;

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
        .args(["-s", "-o", "build", "install"])
        .arg(format!("DESTDIR={}", dest.path.display()))
        .arg(format!("KAHI_BIN={KAHI}")));
    assert_eq!(out.code, 0, "{out:?}");
    let prefix = dest.join("usr/local");
    assert!(prefix.join("bin/kahi").is_file());
    assert!(prefix.join("share/bash-completion/completions/kahi").is_file());
    assert!(prefix.join("share/zsh/site-functions/_kahi").is_file());
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
