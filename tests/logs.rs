//! Log files: rotation loses, duplicates and reorders nothing; the last partial line is kept;
//! SIGUSR2 reopens; `clear` empties; bytes are written as they came.

use std::path::Path;

use crate::util::*;

/// Every line of `base` and its backups, oldest file first.
fn lines_across_rotations(base: &Path, backups: u32) -> (Vec<String>, usize) {
    let mut files: Vec<std::path::PathBuf> = (1..=backups)
        .rev()
        .map(|n| std::path::PathBuf::from(format!("{}.{n}", base.display())))
        .filter(|p| p.exists())
        .collect();
    files.push(base.to_path_buf());
    let count = files.len();
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in the middle of a line",
            f.display()
        );
        lines.extend(text.lines().map(str::to_string));
    }
    (lines, count)
}

#[test]
fn a_flood_across_ten_rotations_keeps_every_line_once_in_order() {
    let n = 20_000;
    let d = Daemon::start(
        "log-rotation",
        &format!(
            "[programs.flood]\n\
             command = [\"/bin/sh\", \"-c\", \"i=0; while [ $i -lt {n} ]; do echo \\\"line $i of the flood\\\"; i=$((i+1)); done; echo done\"]\n\
             stdout_logfile = \"flood.log\"\n\
             stdout_logfile_maxbytes = \"40KB\"\n\
             stdout_logfile_backups = 30\n\
             autorestart = false\n\
             startsecs = 0\n"
        ),
    );
    d.wait_state("flood", "EXITED");
    let base = d.dir.join("flood.log");
    wait_until("the last line is in the log", DEADLINE, || {
        std::fs::read_to_string(&base).is_ok_and(|t| t.ends_with("done\n"))
    });
    let (lines, files) = lines_across_rotations(&base, 30);
    assert!(files >= 11, "only {files} files: fewer than ten rotations");
    let want: Vec<String> =
        (0..n).map(|i| format!("line {i} of the flood")).chain(["done".to_string()]).collect();
    assert_eq!(lines.len(), want.len(), "line count across {files} files");
    for (i, (got, want)) in lines.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "line {i}");
    }
    for n in 1..=30 {
        let p = std::path::PathBuf::from(format!("{}.{n}", base.display()));
        if let Ok(meta) = std::fs::metadata(&p) {
            assert!(meta.len() <= 40 * 1024, "{} is {} bytes", p.display(), meta.len());
        }
    }
}

#[test]
fn the_last_line_without_a_newline_is_logged() {
    let d = Daemon::start(
        "log-partial",
        "[programs.p]\ncommand = [\"/bin/sh\", \"-c\", \"echo first; printf 'no newline at the end'\"]\n\
         stdout_logfile = \"p.log\"\nautorestart = false\nstartsecs = 0\n",
    );
    d.wait_state("p", "EXITED");
    wait_until("the partial line reached the file", DEADLINE, || {
        d.dir.read("p.log") == "first\nno newline at the end"
    });
}

#[test]
fn binary_output_is_written_untouched() {
    let d = Daemon::start(
        "log-binary",
        "[programs.b]\ncommand = [\"/bin/sh\", \"-c\", \"printf '\\\\000\\\\377\\\\033[31mx\\\\r\\\\n'\"]\n\
         stdout_logfile = \"b.log\"\nautorestart = false\nstartsecs = 0\n",
    );
    d.wait_state("b", "EXITED");
    wait_until("the bytes reached the file", DEADLINE, || {
        std::fs::read(d.dir.join("b.log")).is_ok_and(|b| b.len() == 10)
    });
    assert_eq!(std::fs::read(d.dir.join("b.log")).unwrap(), b"\x00\xff\x1b[31mx\r\n");
}

#[test]
fn sigusr2_reopens_files_moved_away_and_clear_empties_them() {
    let d = Daemon::start(
        "log-reopen",
        "[programs.t]\ncommand = [\"/bin/sh\", \"-c\", \"while :; do echo tick; sleep 0.05; done\"]\n\
         stdout_logfile = \"t.log\"\nstderr_logfile = \"AUTO\"\n\n[logging]\nchildlogdir = \".\"\n",
    );
    d.wait_state("t", "RUNNING");
    assert!(d.dir.join("t-stderr.log").exists(), "AUTO stderr file in childlogdir");
    wait_until("ticks in the log", DEADLINE, || d.dir.read("t.log").contains("tick"));
    std::fs::rename(d.dir.join("t.log"), d.dir.join("t.log.old")).unwrap();
    // Negative twin: without SIGUSR2 the daemon keeps writing the moved file.
    let before = d.dir.read("t.log.old").len();
    wait_until("the moved file still grows", DEADLINE, || d.dir.read("t.log.old").len() > before);
    assert!(!d.dir.join("t.log").exists());
    d.signal(12); // SIGUSR2
    wait_until("a new t.log receives ticks", DEADLINE, || d.dir.read("t.log").contains("tick"));
    d.wait_log("reopened 2 log files");

    let out = d.ctl(&["clear", "t"]);
    assert_eq!(out.stdout, "t: cleared\n", "{out:?}");
    let len = std::fs::metadata(d.dir.join("t.log")).unwrap().len();
    assert!(len < 40, "the file was emptied (now {len} bytes)");
}

#[test]
fn a_logfile_in_a_missing_directory_is_a_config_error() {
    let dir = Dir::new("log-missing-dir");
    let config = dir.write(
        "kahi.toml",
        "[programs.p]\ncommand = \"sleep 1\"\nstdout_logfile = \"nowhere/p.log\"\n",
    );
    let out = run(std::process::Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&config));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("kahi.toml:3:18: programs.p.stdout_logfile: directory")
            && out.stderr.contains("nowhere does not exist"),
        "{}",
        out.stderr
    );
}
