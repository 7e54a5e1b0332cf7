//! Per-program cgroups (v2) for `memory_max`, `cpu_max` and `pids_max`.
//!
//! Kahi works inside the cgroup it was started in, as systemd's `Delegate=yes` or a container
//! runtime hands it over: it moves itself into a leaf `kahi` below it (cgroup v2 lets a group
//! hand controllers to children only while it holds no process itself), enables the
//! controllers for its children, and makes one child per limited program, `program-NAME`.
//! Each started process moves itself into its program's group between fork and exec, so every
//! process it starts is inside too. After an exit, `memory.events` says whether the kernel's
//! OOM killer struck.
//!
//! Where there is no writable cgroup v2 hierarchy with these controllers (cgroup v1, a
//! read-only /sys/fs/cgroup), the limits are not applied and Kahi says so once.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::config::{CPU_PERIOD_US, CgroupLimits};

/// Kahi's delegated cgroup, with the controllers enabled for its children.
pub struct Cgroups {
    dir: PathBuf,
    controllers: Vec<String>,
}

/// A program's group, ready for a process to join.
pub struct Joined {
    /// `cgroup.procs`, open for writing: the child writes "0" to it to move itself in.
    pub procs: OwnedFd,
    /// OOM kills so far, to tell whether the next exit was one.
    pub oom_kills: u64,
}

impl Cgroups {
    /// Takes over the cgroup this process is in.
    pub fn delegate() -> Result<Cgroups, String> {
        let mount = cgroup2_mount().ok_or("no cgroup v2 hierarchy is mounted")?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("0::").map(String::from)))
            .ok_or("this process is in no cgroup v2 group (cgroup v1 only)")?;
        let dir = mount.join(own.trim_start_matches('/'));
        Cgroups::delegate_at(&dir, std::process::id())
    }

    /// Takes over `dir`, moving `pid` (Kahi) into a leaf below it.
    fn delegate_at(dir: &Path, pid: u32) -> Result<Cgroups, String> {
        let available = std::fs::read_to_string(dir.join("cgroup.controllers"))
            .map_err(|e| format!("{}: {e}", dir.join("cgroup.controllers").display()))?;
        let controllers: Vec<String> = available
            .split_whitespace()
            .filter(|c| ["memory", "cpu", "pids"].contains(c))
            .map(String::from)
            .collect();
        if controllers.is_empty() {
            return Err(format!(
                "{} offers none of the memory, cpu and pids controllers (they are bound to cgroup v1)",
                dir.display()
            ));
        }
        let leaf = dir.join("kahi");
        mkdir(&leaf)?;
        write(&leaf.join("cgroup.procs"), &pid.to_string())?;
        let enable: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
        write(&dir.join("cgroup.subtree_control"), &enable.join(" "))?;
        Ok(Cgroups { dir: dir.to_path_buf(), controllers })
    }

    fn group(&self, name: &str) -> PathBuf {
        self.dir.join(format!("program-{}", name.replace(':', "_")))
    }

    /// Makes (or updates) the group of process `name` with `limits`; limits not given are
    /// set to "max", so that an update that drops one takes effect.
    pub fn prepare(&self, name: &str, limits: &CgroupLimits) -> Result<Joined, String> {
        let group = self.group(name);
        mkdir(&group)?;
        let max = |v: Option<u64>| v.map_or("max".to_string(), |n| n.to_string());
        let settings = [
            ("memory", "memory.max", max(limits.memory_max)),
            ("cpu", "cpu.max", format!("{} {CPU_PERIOD_US}", max(limits.cpu_quota_us))),
            ("pids", "pids.max", max(limits.pids_max)),
        ];
        for (controller, file, value) in settings {
            if self.controllers.iter().any(|c| c == controller) {
                write(&group.join(file), &value)?;
            }
        }
        let path = group.join("cgroup.procs");
        let procs = File::options()
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Joined { procs: procs.into(), oom_kills: self.oom_kills(name) })
    }

    /// How many times the OOM killer struck in `name`'s group.
    pub fn oom_kills(&self, name: &str) -> u64 {
        std::fs::read_to_string(self.group(name).join("memory.events"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
            })
            .unwrap_or(0)
    }

    /// Removes the programs' groups, at exit, once every process is gone.
    pub fn remove_all(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().starts_with("program-") {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

/// Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo.
pub(super) fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        // ... MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
        let (left, right) = l.split_once(" - ")?;
        let point = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(point))
    })
}

fn mkdir(dir: &Path) -> Result<(), String> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("unable to create {}: {e}", dir.display())),
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value)
        .map_err(|e| format!("unable to write {value:?} to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory laid out as a delegated cgroup v2 group (the kernel's files are plain
    /// files here).
    fn fake(controllers: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("kahi-cgroup-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
        dir
    }

    fn read(p: PathBuf) -> String {
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn delegation_moves_kahi_to_a_leaf_and_enables_what_is_there() {
        let dir = fake("cpuset cpu io memory hugetlb pids rdma\n");
        let cg = Cgroups::delegate_at(&dir, 4242).unwrap();
        assert_eq!(read(dir.join("kahi/cgroup.procs")), "4242");
        assert_eq!(read(dir.join("cgroup.subtree_control")), "+cpu +memory +pids");

        let limits =
            CgroupLimits { memory_max: Some(64 << 20), cpu_quota_us: Some(50_000), pids_max: None };
        std::fs::create_dir_all(dir.join("program-web_web")).unwrap();
        std::fs::write(dir.join("program-web_web/cgroup.procs"), "").unwrap();
        std::fs::write(
            dir.join("program-web_web/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        let joined = cg.prepare("web:web", &limits).unwrap();
        assert_eq!(joined.oom_kills, 1);
        let g = dir.join("program-web_web");
        assert_eq!(read(g.join("memory.max")), "67108864");
        assert_eq!(read(g.join("cpu.max")), "50000 100000");
        assert_eq!(read(g.join("pids.max")), "max");
        std::fs::write(g.join("memory.events"), "oom 2\noom_kill 2\n").unwrap();
        assert_eq!(cg.oom_kills("web:web"), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_the_controllers_delegation_says_why() {
        let dir = fake("hugetlb\n");
        let e = Cgroups::delegate_at(&dir, 1).err().unwrap();
        assert!(e.contains("none of the memory, cpu and pids controllers"), "{e}");
        let e = Cgroups::delegate_at(&dir.join("missing"), 1).err().unwrap();
        assert!(e.contains("cgroup.controllers"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_available_controllers_are_written() {
        let dir = fake("pids\n");
        let cg = Cgroups::delegate_at(&dir, 7).unwrap();
        std::fs::create_dir_all(dir.join("program-x")).unwrap();
        std::fs::write(dir.join("program-x/cgroup.procs"), "").unwrap();
        let limits = CgroupLimits { memory_max: Some(1), cpu_quota_us: None, pids_max: Some(10) };
        cg.prepare("x", &limits).unwrap();
        assert_eq!(read(dir.join("program-x/pids.max")), "10");
        assert!(!dir.join("program-x/memory.max").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
