//! `kahi completion bash|zsh|fish`: the scripts in contrib/completions are what the binary
//! writes (so they cannot drift from `--help`), and each shell completes with them.

use std::path::Path;
use std::process::Command;

use crate::util::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const FILES: [(&str, &str); 3] = [
    ("bash", "contrib/completions/kahi.bash"),
    ("zsh", "contrib/completions/_kahi"),
    ("fish", "contrib/completions/kahi.fish"),
];

#[test]
fn the_scripts_in_contrib_are_what_kahi_completion_writes() {
    for (shell, file) in FILES {
        let out = run(Command::new(KAHI).args(["completion", shell]));
        assert_eq!(out.code, 0, "{out:?}");
        let kept = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap();
        assert!(
            out.stdout == kept,
            "{file} is not what `kahi completion {shell}` writes: run\n  \
             target/debug/kahi completion {shell} > {file}"
        );
    }
    let out = run(Command::new(KAHI).args(["completion", "tcsh"]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("unknown shell \"tcsh\""), "{out:?}");
}

/// What `kahi completion bash` offers for the words (the cursor at the end of the last one).
fn bash(words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "source <({KAHI} completion bash)\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_kahi\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len() - 1
    );
    let out = run(Command::new("bash").arg("-c").arg(&script).current_dir(ROOT));
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn bash_completes_from_the_table() {
    assert_eq!(bash(&["kahi", "ct"]), ["ctl"]);
    assert_eq!(bash(&["kahi", "comp"]), ["completion"]);
    assert_eq!(bash(&["kahi", "completion", ""]), ["bash", "zsh", "fish"]);
    assert_eq!(bash(&["kahi", "daemon", "--format", ""]), ["auto", "toml", "supervisord"]);
    assert_eq!(bash(&["kahi", "ctl", "tail", "web", "std"]), ["stdout", "stderr"]);
    assert_eq!(bash(&["kahi", "ctl", "-s", "/x", "signal", "US"]), ["USR1", "USR2"]);
    assert!(bash(&["kahi", "daemon", "-"]).contains(&"--pidfile".to_string()));
    // A value is not a command: `-c tail` leaves kahi ctl at its commands.
    assert!(bash(&["kahi", "ctl", "-c", "tail", "sta"]).contains(&"status".to_string()));
    // Files for a path, commands for kahi exec, files after its command.
    assert_eq!(bash(&["kahi", "migrate", "Cargo.t"]), ["Cargo.toml"]);
    assert_eq!(bash(&["kahi", "daemon", "-c", "Cargo.t"]), ["Cargo.toml"]);
    assert!(bash(&["kahi", "exec", "--", "bas"]).contains(&"bash".to_string()));
    assert_eq!(bash(&["kahi", "exec", "ls", "Cargo.t"]), ["Cargo.toml"]);
    // After a command line has started, its options are not kahi's.
    assert_eq!(bash(&["kahi", "exec", "ls", "--he"]), Vec::<String>::new());
}

/// Whether `shell --version` runs: false where it is not installed.
fn installed(shell: &str) -> bool {
    Command::new(shell)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success())
}

/// What fish offers for `line` with the script `kahi completion fish` writes: the words
/// only, without their descriptions.
fn fish(line: &str, env: &[(&str, &str)]) -> Option<Vec<String>> {
    if !installed("fish") {
        skip("fish is not installed (apt-get install fish)");
        return None;
    }
    let script = format!("{KAHI} completion fish | source\ncomplete -C '{line}'");
    let out = run(Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(&script)
        .envs(env.iter().copied())
        .current_dir(ROOT));
    assert_eq!(out.code, 0, "{out:?}");
    let mut got: Vec<String> =
        out.stdout.lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect();
    got.sort();
    Some(got)
}

#[test]
fn fish_completes_from_the_table() {
    let Some(got) = fish("kahi ct", &[]) else { return };
    assert_eq!(got, ["ctl"]);
    assert_eq!(fish("kahi ctl st", &[]).unwrap(), ["start", "status", "stdin", "stop"]);
    assert_eq!(fish("kahi daemon --format ", &[]).unwrap(), ["auto", "supervisord", "toml"]);
    assert_eq!(fish("kahi ctl tail web ", &[]).unwrap(), ["stderr", "stdout"]);
    assert_eq!(fish("kahi completion ", &[]).unwrap(), ["bash", "fish", "zsh"]);
    assert_eq!(fish("kahi migrate Cargo.t", &[]).unwrap(), ["Cargo.toml"]);
    assert!(fish("kahi daemon --", &[]).unwrap().contains(&"--daemonize".to_string()));
    // The second argument of ctl signal is a process: the daemon's, with GROUP:* and all.
    let d = Daemon::start(
        "fishcomplete",
        "[programs.alpha]\ncommand = \"sleep 1000\"\n\n[programs.alps]\ncommand = \"sleep 1000\"\n",
    );
    let line = format!("{KAHI} ctl -s {} restart al", path_str(&d.socket));
    assert_eq!(fish(&line, &[]).unwrap(), ["all", "alpha", "alps"]);
}

#[test]
fn zsh_reads_the_script() {
    if !installed("zsh") {
        return skip("zsh is not installed (apt-get install zsh)");
    }
    let file = Path::new(ROOT).join("contrib/completions/_kahi");
    let out = run(Command::new("zsh").arg("-n").arg(&file));
    assert_eq!(out.code, 0, "{out:?}");
    // Loaded as compinit loads it, it defines a function for each command with subcommands.
    // -D: no dump file. With -d /dev/null, compdump moved its temporary file onto the path,
    // and a test run as root left /dev/null a regular file.
    let script = format!(
        "autoload -Uz compinit && compinit -u -D && source {} 2>/dev/null; \
         print -l ${{(k)functions[(I)_kahi*]}}",
        file.display()
    );
    let out = run(Command::new("zsh").arg("-f").arg("-c").arg(&script));
    let mut got: Vec<&str> = out.stdout.lines().collect();
    got.sort();
    assert_eq!(got, ["_kahi", "_kahi_ctl", "_kahi_processes"], "{out:?}");
}
