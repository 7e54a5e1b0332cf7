//! Log files on a 1 MB tmpfs that fills and empties over and over: four programs write
//! numbered lines to files that rotate at 200 KB; the test takes the rotated files away (as
//! logrotate would) only once the disk has been full for a while. Kahi drops whole lines while
//! it is full and warns once an outage; every line that is in a file is whole, and every line
//! missing is one Kahi counted as dropped.
//!
//! The daemon runs in a mount namespace of its own (`unshare -m`), where the tmpfs is mounted:
//! nothing outlives the test, even a failed one. The test reaches the disk through
//! /proc/PID/root. It needs root and `unshare`; elsewhere it says so and passes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::util::*;

/// The daemon's RSS bound: measured 8.5 MiB (release; 8.9 MiB after 78 outages) and 13.6 MiB
/// (debug) after the outages; what a full disk refuses is dropped, not kept.
const RSS_BOUND_KIB: u64 = 32 * 1024;

const WRITERS: usize = 4;
/// Lines each writer writes, from a disk with room, after the last outage.
const EPILOGUE: u64 = 100;
const PAD: &str = "the quick brown fox jumps over the lazy dog";

/// Line `i` of writer `w`: its number twice, so that a line cut and glued to another shows.
fn line(w: usize, i: u64) -> String {
    format!("w{w} {i:08} {PAD} {i:08}")
}

/// The script of writer `w`: numbered lines in batches of 200 every 50 ms (about 260 KB/s),
/// waiting while `pause` exists (and saying how far it got in `ack`); once `finish` exists,
/// EPILOGUE more lines and an end line with the count.
fn writer(w: usize, dir: &Path) -> String {
    let (pause, ack, finish) = (dir.join("pause"), dir.join(format!("ack{w}")), dir.join("finish"));
    format!(
        "i=0; \
         while [ ! -e {finish} ]; do \
           if [ -e {pause} ]; then echo $i > {ack}.new; mv {ack}.new {ack}; \
             while [ -e {pause} ]; do sleep 0.02; done; fi; \
           n=0; while [ $n -lt 200 ]; do printf 'w{w} %08d {PAD} %08d\\n' $i $i; \
             i=$((i+1)); n=$((n+1)); done; \
           sleep 0.05; \
         done; \
         n=0; while [ $n -lt {EPILOGUE} ]; do printf 'w{w} %08d {PAD} %08d\\n' $i $i; \
           i=$((i+1)); n=$((n+1)); done; \
         echo w{w} end $i; exec sleep 1000",
        finish = finish.display(),
        pause = pause.display(),
        ack = ack.display(),
    )
}

/// What the test has read of each writer's lines.
#[derive(Default)]
struct Lines {
    /// For writer w, whether line i has been seen (and how often).
    seen: Vec<Vec<u8>>,
    /// Lines that are not one writer's line, whole.
    torn: Vec<String>,
    /// The count each writer's end line gave.
    end: HashMap<usize, u64>,
    bytes: u64,
}

impl Lines {
    fn take(&mut self, text: &str) {
        self.bytes += text.len() as u64;
        if !text.is_empty() && !text.ends_with('\n') {
            self.torn.push(format!("a file ends mid-line: {:?}", tail(text, 1)));
        }
        for l in text.lines() {
            let parsed = (|| {
                let (w, rest) = l.strip_prefix('w')?.split_once(' ')?;
                let w: usize = w.parse().ok()?;
                if let Some(n) = rest.strip_prefix("end ") {
                    return Some((w, None, n.parse().ok()?));
                }
                let i: u64 = rest.get(..8)?.parse().ok()?;
                (l == line(w, i)).then_some((w, Some(i), 0))
            })();
            match parsed {
                Some((w, None, n)) if w < WRITERS => {
                    self.end.insert(w, n);
                }
                Some((w, Some(i), _)) if w < WRITERS => {
                    let seen = &mut self.seen[w];
                    if seen.len() <= i as usize {
                        seen.resize(i as usize + 1, 0);
                    }
                    seen[i as usize] += 1;
                }
                _ => {
                    if self.torn.len() < 10 {
                        self.torn.push(l.to_string());
                    }
                }
            }
        }
    }
}

/// Rotated files (`wN.log.K`) in `disk`, moved aside, read and removed, which frees their
/// room. A file Kahi renames meanwhile is taken under its new name next time.
fn harvest(disk: &Path, lines: &mut Lines, taken: &mut u64) -> usize {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(disk) else { return 0 };
    let mut rotated: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            name.rsplit_once(".log.").is_some_and(|(_, k)| k.parse::<u32>().is_ok())
        })
        .collect();
    rotated.sort();
    for p in rotated {
        *taken += 1;
        let aside = disk.join(format!("taken-{taken}"));
        if std::fs::rename(&p, &aside).is_err() {
            continue;
        }
        lines.take(&std::fs::read_to_string(&aside).unwrap());
        std::fs::remove_file(&aside).unwrap();
        n += 1;
    }
    n
}

/// How many times the daemon's log says `text`.
fn count(d: &Daemon, text: &str) -> usize {
    d.log().matches(text).count()
}

/// Lines dropped from `file`, by the daemon's "is written again" lines.
fn dropped_lines(log: &str, file: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(&format!("the log file {file} of ")) && l.contains("written again"))
        .filter_map(|l| l.split(" bytes (").nth(1)?.split(" lines)").next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_log_directory_on_a_1_mb_tmpfs_fills_and_empties() {
    let _serial = serial();
    let dir = Dir::new("soak-disk");
    let disk = dir.join("disk");
    std::fs::create_dir(&disk).unwrap();
    // Can this machine do it? A namespace of our own, and a tmpfs in it, gone with it.
    let probe = run(dir
        .command("unshare")
        .args(["-m", "--propagation", "private", "/bin/sh", "-c"])
        .arg("mount -t tmpfs -o size=1m tmpfs \"$0\"")
        .arg(&disk));
    if probe.code != 0 {
        return skip(&format!(
            "cannot mount a tmpfs in a mount namespace of its own (needs root and unshare): {}",
            probe.stderr.trim()
        ));
    }

    let mut body = String::from(CANARY);
    for w in 0..WRITERS {
        body.push_str(&format!(
            "[programs.w{w}]\ncommand = [\"/bin/sh\", \"-c\", \"{}\"]\nstartsecs = 0\n\
             stdout_logfile = \"{}\"\nstdout_logfile_maxbytes = \"200KB\"\n\
             stdout_logfile_backups = 1000\nstopasgroup = true\n\n",
            writer(w, &dir.path),
            disk.join(format!("w{w}.log")).display()
        ));
    }
    let socket = dir.join("kahi.sock");
    let config =
        dir.write("kahi.toml", &format!("[server]\nsocket = \"{}\"\n\n{body}", socket.display()));
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut cmd = dir.command("unshare");
    cmd.args(["-m", "--propagation", "private", "/bin/sh", "-c"])
        .arg("mount -t tmpfs -o size=1m tmpfs \"$0\" && exec \"$1\" daemon -v -c \"$2\"")
        .arg(&disk)
        .arg(KAHI)
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let d = Daemon::spawn(dir, config, socket, cmd);
    let daemon = d.pid();
    // The daemon's view of the disk: the tmpfs, not the empty directory the test sees.
    let view = PathBuf::from(format!("/proc/{daemon}/root")).join(disk.strip_prefix("/").unwrap());
    wait_until("every writer RUNNING", DEADLINE, || {
        states(&d).values().filter(|s| *s == "RUNNING").count() == 1 + WRITERS
    });
    let baseline = fewest_fds(daemon);
    // statfs(2) of the daemon's view: the tmpfs, 1 MiB.
    let fs = run(Command::new("stat").args(["-f", "-c", "%T %b %S"]).arg(&view));
    let f: Vec<&str> = fs.stdout.split_whitespace().collect();
    let size = f.get(1).and_then(|b| b.parse::<u64>().ok()).unwrap_or(0)
        * f.get(2).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    assert_eq!((f.first().copied(), size), (Some("tmpfs"), 1 << 20), "{fs:?}");

    let (mut lines, mut taken) =
        (Lines { seen: vec![Vec::new(); WRITERS], ..Default::default() }, 0);
    let mut w = Watch::new(&d);
    let (t0, total) = (Instant::now(), scenario_secs());
    let mut cycles = 0;
    let (full, again) = ("unable to write the log file", "is written again");
    while t0.elapsed() < total {
        // The disk fills: the writers' output keeps coming, the files stop growing.
        let before = count(&d, full);
        wait_until("the disk fills", DEADLINE, || count(&d, full) > before);
        w.sample();
        std::thread::sleep(Duration::from_millis(300));
        w.sample();
        // Room again: the rotated files go, and each file that failed is written again.
        let outages = count(&d, full);
        harvest(&view, &mut lines, &mut taken);
        wait_until("writing resumes", DEADLINE, || {
            harvest(&view, &mut lines, &mut taken);
            count(&d, again) >= outages
        });
        w.sample();
        cycles += 1;
    }

    // The end: the writers pause, the disk is emptied of rotated files, and the last lines
    // come to a disk with room.
    std::fs::write(d.dir.join("pause"), "").unwrap();
    let acks: Vec<PathBuf> = (0..WRITERS).map(|i| d.dir.join(&format!("ack{i}"))).collect();
    wait_until("every writer pauses", DEADLINE, || acks.iter().all(|a| a.exists()));
    // Lines from this one on are written to a disk with room.
    let mut room_from = Vec::new();
    for (i, ack) in acks.iter().enumerate() {
        let n: u64 = std::fs::read_to_string(ack).unwrap().trim().parse().unwrap();
        let last = line(i, n.saturating_sub(1));
        wait_until("Kahi has read every line written", DEADLINE, || {
            d.ctl(&["tail", &format!("w{i}")]).stdout.contains(&last)
        });
        room_from.push(n);
    }
    harvest(&view, &mut lines, &mut taken);
    std::fs::write(d.dir.join("finish"), "").unwrap();
    std::fs::remove_file(d.dir.join("pause")).unwrap();
    for i in 0..WRITERS {
        let name = format!("w{i}");
        wait_until("the end line is read", DEADLINE, || {
            d.ctl(&["tail", &name]).stdout.contains(&format!("w{i} end "))
        });
    }
    wait_until("every outage is over", DEADLINE, || count(&d, again) == count(&d, full));
    harvest(&view, &mut lines, &mut taken);
    for i in 0..WRITERS {
        lines.take(&std::fs::read_to_string(view.join(format!("w{i}.log"))).unwrap());
    }

    // Every line in the files is whole; each writer's lines are all there but those Kahi
    // said it dropped, and the last ones, which came to a disk with room, all are.
    let log = d.log();
    assert!(lines.torn.is_empty(), "torn lines in the log files: {:?}", lines.torn);
    let mut figures = Vec::new();
    for (i, room) in room_from.iter().enumerate() {
        let end = *lines.end.get(&i).unwrap_or_else(|| panic!("no end line of w{i}"));
        let seen = &lines.seen[i];
        assert!(seen.iter().all(|n| *n <= 1), "w{i}: a line is in the files twice");
        let missing: Vec<u64> = (0..end).filter(|k| seen.get(*k as usize) != Some(&1)).collect();
        let gaps = missing.windows(2).filter(|p| p[1] != p[0] + 1).count()
            + (!missing.is_empty()) as usize;
        let file = disk.join(format!("w{i}.log"));
        let dropped = dropped_lines(&log, &file.display().to_string());
        let outages = log.matches(&format!("{full} {} ", file.display())).count();
        assert_eq!(
            missing.len() as u64,
            dropped,
            "w{i}: {} lines missing, Kahi dropped {dropped}",
            missing.len()
        );
        assert!(gaps <= outages, "w{i}: {gaps} gaps in the lines, {outages} outages");
        assert!(
            missing.last().is_none_or(|m| m < room),
            "w{i}: line {:?} is missing, written once the disk had room",
            missing.last()
        );
        figures.push(format!("w{i} {end} lines, {dropped} dropped in {outages} outages"));
    }
    // The disk was full, nothing else: no other failure of a log file.
    let other: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(full) && !l.contains("No space left on device"))
        .collect();
    assert!(other.is_empty(), "log files failed for another reason: {other:?}");
    assert_states(&d, 1 + WRITERS, |_| Some(&["RUNNING"]));
    let fds = w.settle(baseline);
    let (rss, peak) = w.assert_rss(RSS_BOUND_KIB);
    report(&format!(
        "full disk: {cycles} fill-and-empty cycles of a 1 MiB tmpfs in {:.0?}; {} MiB in {taken} \
         rotated files and the last ones; {}; no torn line; {}; fds {baseline} -> {fds}; RSS \
         {rss} KiB (peak {peak} KiB, bound {RSS_BOUND_KIB})",
        t0.elapsed(),
        lines.bytes >> 20,
        figures.join(", "),
        w.canary_figures(),
    ));
    assert!(cycles >= 2, "only {cycles} cycles");
    w.assert_canary();
}
