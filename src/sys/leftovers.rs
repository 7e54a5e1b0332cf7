//! Programs a previous Kahi left running. A Kahi killed with SIGKILL cannot stop its programs;
//! a Kahi started again would then run a second copy of each (supervisord does). Kahi keeps the
//! pids it runs in a state file beside its control socket (`SOCKET.pids`: pid, start time and
//! name, one process a line), and at start ends what the file names and still runs, as
//! `[server] orphans = "kill"` says, or only reports it with `"keep"`.
//!
//! A pid is taken for the same process only when its start time (field 22 of /proc/PID/stat,
//! clock ticks since boot) is the one recorded, so a recycled pid is never signalled. Kahi
//! records the time of the spawn by its own clock rather than reading /proc then: reading the
//! stat of a process that is still loading its program can stall until the load is done.
//! Each is ended with its process group, which also holds what it started; the group is
//! looked for even when the program itself has died (with the Kahi that started it, when
//! `orphans = "kill"` asked for that), see [`alive`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The state file of the daemon whose control socket is `socket`.
pub fn state_file(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_os_string();
    name.push(".pids");
    PathBuf::from(name)
}

/// The start time of `pid` in clock ticks since boot, or None once it is gone (or a zombie).
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// The process group and start time of `pid`, from /proc/PID/stat (fields 5 and 22), or
/// None once it is gone (or a zombie).
fn stat(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Every live process by its process group: pgid -> (pid, start time) of each member.
fn groups() -> HashMap<i32, Vec<(i32, u64)>> {
    let mut groups: HashMap<i32, Vec<(i32, u64)>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return groups };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else { continue };
        if let Some((pgid, start)) = stat(pid) {
            groups.entry(pgid).or_default().push((pid, start));
        }
    }
    groups
}

/// Whether `pid` carries the environment Kahi gives its programs (which what they start
/// inherits).
fn started_by_kahi(pid: i32) -> bool {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    environ.split(|b| *b == 0).any(|v| v == b"SUPERVISOR_ENABLED=1")
}

/// Now, in the unit of /proc/PID/stat's start time: clock ticks since boot.
pub fn now_ticks() -> u64 {
    let ticks =
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_or(0, |t| {
        t.tv_sec() as u64 * ticks as u64 + t.tv_nsec() as u64 * ticks as u64 / 1_000_000_000
    })
}

/// A spawn is recorded just after the process was made (its exec done): its start time, by
/// /proc, is a little before. A second's slack is far less than the pids a system would need
/// to go through to hand the same pid out again.
const SLACK_TICKS: u64 = 100;

/// Whether `pid` is the process recorded as spawned at `at` (clock ticks since boot).
fn same_process(pid: i32, at: u64) -> bool {
    start_time(pid).is_some_and(|s| s <= at + 1 && s + SLACK_TICKS >= at)
}

/// The file's text for `running`: (pid, start time, name).
pub fn render<'a>(running: impl ExactSizeIterator<Item = (i32, u64, &'a str)>) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(running.len() * 32);
    for (pid, start, name) in running {
        let _ = writeln!(out, "{pid} {start} {name}");
    }
    out
}

/// Writes the state file whole (a new file renamed over the old one).
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The processes the file at `path` names that still run as they were recorded, by their
/// process group (a program leads its own).
///
/// A program that died with the Kahi that started it (`orphans = "kill"`: PR_SET_PDEATHSIG)
/// may have left what it started running in its group: the group counts while it has a
/// member started after the program, with Kahi's environment. The kernel does not give a pid
/// to a new process while a group of that number exists, so such a member is the program's
/// unless the whole group ended and a new holder of the pid, after the pid space wrapped
/// around, made a group of its own and left a member with that environment.
pub fn alive(path: &Path) -> Vec<(i32, String)> {
    let Ok(text) = crate::config::read::text(path) else { return Vec::new() };
    let mut by_group = None;
    recorded(&text)
        .into_iter()
        .filter(|(pid, _)| *pid > 1)
        .filter_map(|(pid, (start, name))| {
            if same_process(pid, start) {
                return Some((pid, name));
            }
            let members = by_group.get_or_insert_with(groups).get(&pid)?;
            let left =
                members.iter().any(|(p, s)| *s + SLACK_TICKS >= start && started_by_kahi(*p));
            left.then_some((pid, name))
        })
        .collect()
}

/// Ends what a previous run left (its process groups: SIGTERM, then SIGKILL after `grace`), or
/// only reports it; logs each. Runs before the event loop exists.
pub fn handle(socket: &Path, kill: bool, grace: Duration) {
    let path = state_file(socket);
    let left = alive(&path);
    for (pid, name) in &left {
        if kill {
            log::warn!("ending '{name}' (pid {pid}), left running by a previous kahi");
            // The group: what the program started goes with it.
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGTERM);
        } else {
            log::warn!(
                "'{name}' (pid {pid}) is still running from a previous kahi; left alone (orphans = \"keep\")"
            );
        }
    }
    if kill && !left.is_empty() {
        let end = Instant::now() + grace;
        let running = |pid: &i32| groups().contains_key(pid);
        while Instant::now() < end && left.iter().any(|(pid, _)| running(pid)) {
            // Before the loop exists: a short wait is the simplest way to give them time.
            std::thread::sleep(Duration::from_millis(20));
        }
        for (pid, name) in &left {
            if running(pid) {
                log::warn!("killing '{name}' (pid {pid}) with SIGKILL: still running");
                let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// The state file as the event loop keeps it: a journal. Each spawn appends its line, each
/// exit a line `-PID`; what a turn adds is written at most every [`StateFile::EVERY`], in one
/// append. The file is written whole again (a new file renamed over it) only once it holds more
/// than twice the lines of what runs, so keeping it costs the loop in proportion to what
/// changed, not to what runs: with 10,000 programs, writing it whole took 3 to 5 ms a time.
pub struct StateFile {
    path: PathBuf,
    /// pid -> (start time, name) of every running program.
    running: HashMap<i32, (u64, String)>,
    /// The lines not yet appended, and how many.
    pending: String,
    pending_lines: usize,
    /// The file open for appending and the lines it holds; None until written whole (at the
    /// first write, and after a failed one, which may have left a part of a line).
    file: Option<(std::fs::File, usize)>,
    /// Out of date since then.
    dirty_since: Option<Instant>,
    written: Option<Instant>,
    failed: bool,
}

impl StateFile {
    pub const EVERY: Duration = Duration::from_millis(100);
    /// Lines past twice the running programs, before the file is written whole.
    const SLACK_LINES: usize = 64;

    pub fn new(socket: &Path) -> StateFile {
        StateFile {
            path: state_file(socket),
            running: Default::default(),
            pending: String::new(),
            pending_lines: 0,
            file: None,
            dirty_since: None,
            written: None,
            failed: false,
        }
    }

    pub fn spawned(&mut self, pid: i32, name: String, now: Instant) {
        use std::fmt::Write;
        let start = now_ticks();
        let _ = writeln!(self.pending, "{pid} {start} {name}");
        self.pending_lines += 1;
        self.running.insert(pid, (start, name));
        self.dirty_since.get_or_insert(now);
    }

    pub fn exited(&mut self, pid: i32, now: Instant) {
        use std::fmt::Write;
        if self.running.remove(&pid).is_some() {
            let _ = writeln!(self.pending, "-{pid}");
            self.pending_lines += 1;
            self.dirty_since.get_or_insert(now);
        }
    }

    /// When it should be written, if it is out of date.
    pub fn due(&self) -> Option<Instant> {
        let dirty = self.dirty_since?;
        Some(self.written.map_or(dirty, |w| (w + Self::EVERY).max(dirty)))
    }

    /// Writes what changed if it is due at `now`: appended, or the file whole when the
    /// journal has grown past its bound.
    pub fn flush(&mut self, now: Instant) {
        if self.due().is_none_or(|at| at > now) {
            return;
        }
        let bound = 2 * self.running.len() + Self::SLACK_LINES;
        let result = match &mut self.file {
            Some((file, lines)) if *lines + self.pending_lines <= bound => {
                use std::io::Write;
                let appended = file.write_all(self.pending.as_bytes());
                *lines += self.pending_lines;
                appended
            }
            _ => self.write_whole(),
        };
        self.pending.clear();
        self.pending_lines = 0;
        match result {
            Ok(()) => self.failed = false,
            Err(e) => {
                // A part of a line may be in the file: the next write is a whole one.
                self.file = None;
                if !self.failed {
                    self.failed = true;
                    log::warn!(
                        "unable to write {}: {e}; a kahi started after a crash of this one will not find its programs",
                        self.path.display()
                    );
                }
            }
        }
        self.dirty_since = None;
        self.written = Some(now);
    }

    /// The file written whole, then kept open to append to.
    fn write_whole(&mut self) -> std::io::Result<()> {
        self.file = None;
        // In no order: it is read line by line.
        let text = render(self.running.iter().map(|(p, (s, n))| (*p, *s, n.as_str())));
        write(&self.path, &text)?;
        let file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        self.file = Some((file, self.running.len()));
        Ok(())
    }

    /// A clean exit: nothing is left to find.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The processes a state file's journal leaves running, in the order of their pids: each
/// line `PID START NAME` adds one, `-PID` ends it. A last line without its newline (a write cut
/// short) is not taken.
fn recorded(text: &str) -> std::collections::BTreeMap<i32, (u64, String)> {
    let mut running = std::collections::BTreeMap::new();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    for line in whole.lines() {
        if let Some(pid) = line.strip_prefix('-') {
            if let Ok(pid) = pid.parse::<i32>() {
                running.remove(&pid);
            }
            continue;
        }
        let mut words = line.splitn(3, ' ');
        let (Some(Ok(pid)), Some(Ok(start))) =
            (words.next().map(str::parse::<i32>), words.next().map(str::parse::<u64>))
        else {
            continue;
        };
        running.insert(pid, (start, words.next().unwrap_or("?").to_string()));
    }
    running
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_process_with_the_recorded_start_time_is_taken() {
        let me = std::process::id() as i32;
        let start = start_time(me).expect("our own start time");
        let dir = std::env::temp_dir().join(format!("kahi-leftovers-{me}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kahi.sock.pids");
        // The parent runs too, but not since the time recorded for it: its pid was recycled.
        let parent = nix::unistd::getppid().as_raw();
        let parent_start = start_time(parent).expect("the parent's start time");
        let recycled = (parent, parent_start + 2 * SLACK_TICKS, "recycled");
        let text = render([(me, start, "me"), recycled].into_iter());
        write(&path, &text).unwrap();
        let found = alive(&path);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(found, [(me, "me".to_string())]);
        assert_eq!(state_file(Path::new("/run/kahi.sock")), Path::new("/run/kahi.sock.pids"));
    }

    #[test]
    fn the_journal_adds_and_ends_and_leaves_a_cut_line_alone() {
        let text = "10 5 a:a\n11 6 b:b c\n-10\n12 7 d\n-1";
        let got: Vec<_> = recorded(text).into_iter().collect();
        assert_eq!(got, [(11, (6, "b:b c".to_string())), (12, (7, "d".to_string()))]);
    }

    #[test]
    fn the_journal_is_appended_to_and_written_whole_past_its_bound() {
        let me = std::process::id();
        let dir = std::env::temp_dir().join(format!("kahi-journal-{me}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kahi.sock.pids");
        let mut state = StateFile::new(&dir.join("kahi.sock"));
        let t0 = Instant::now();
        let read = || std::fs::read_to_string(&path).unwrap();
        let lines = |text: &str| text.lines().count();
        state.spawned(100, "keep".into(), t0);
        state.flush(t0);
        assert_eq!(lines(&read()), 1, "the first write is whole");
        // Churn: each spawn and exit appends, until the file holds more than twice what runs.
        let mut at = t0;
        for pid in 200..200 + StateFile::SLACK_LINES as i32 {
            at += StateFile::EVERY;
            state.spawned(pid, "churn".into(), at);
            state.exited(pid, at);
            state.flush(at);
            let text = read();
            assert!(lines(&text) <= 2 + StateFile::SLACK_LINES, "{}", lines(&text));
            let names: Vec<_> = recorded(&text).into_values().map(|(_, n)| n).collect();
            assert_eq!(names, ["keep"]);
        }
        assert!(lines(&read()) < StateFile::SLACK_LINES, "written whole again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
