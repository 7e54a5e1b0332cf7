//! A program's log file: appends, rotates by size into `NAME.1`, `NAME.2`, ... keeping
//! `backups` of them, reopens on request (SIGUSR2, for logrotate) and truncates on `clear`.
//!
//! Rotation happens at a line boundary whenever the data allows it, so every line is whole
//! in exactly one file: nothing is lost, duplicated or reordered across a rotation. Bytes are
//! written as they came (binary output survives untouched). Files are opened with O_CLOEXEC
//! (std's default), so they never leak into programs.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    /// Rotate once the file would grow past this; 0 never rotates.
    maxbytes: u64,
    backups: u32,
    /// False for a device, FIFO or socket (`/dev/console`, a named pipe): such a file is
    /// never rotated nor truncated, only written.
    regular: bool,
}

impl LogFile {
    pub fn open(path: &Path, maxbytes: u64, backups: u32) -> io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            size: meta.len(),
            maxbytes,
            backups,
            regular: meta.file_type().is_file(),
        })
    }

    /// Opens the file a program stream's settings name.
    pub fn open_spec(spec: &crate::config::LogSpec) -> io::Result<LogFile> {
        LogFile::open(&spec.path, spec.maxbytes, spec.backups)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when this file is the one `spec` describes (after an update, it may not be).
    pub fn is(&self, spec: &crate::config::LogSpec) -> bool {
        self.path == spec.path && self.maxbytes == spec.maxbytes && self.backups == spec.backups
    }

    /// Appends `data`, rotating as needed.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = if self.maxbytes == 0 || !self.regular {
                u64::MAX
            } else {
                self.maxbytes.saturating_sub(self.size)
            };
            if data.len() as u64 <= room {
                return self.append(data);
            }
            // Fill the file up to the last whole line that fits, then rotate.
            let fits = &data[..room as usize];
            let cut = match fits.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                // Not one whole line fits. In a fresh file, a line longer than the limit goes
                // in whole (up to its end); otherwise start a fresh file for it.
                None if self.size == 0 => {
                    data.iter().position(|&b| b == b'\n').map_or(data.len(), |i| i + 1)
                }
                None => 0,
            };
            self.append(&data[..cut])?;
            data = &data[cut..];
            if !data.is_empty() || self.size >= self.maxbytes {
                self.rotate()?;
            }
        }
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.file.write_all(data)?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// `NAME` -> `NAME.1` -> `NAME.2` ... up to `backups`; the oldest is removed. With no
    /// backups, the file is emptied in place.
    pub fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let backup = |n: u32| -> PathBuf {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let _ = std::fs::remove_file(backup(self.backups));
        for n in (1..self.backups).rev() {
            let from = backup(n);
            if from.exists() {
                std::fs::rename(&from, backup(n + 1))?;
            }
        }
        std::fs::rename(&self.path, backup(1))?;
        self.reopen()
    }

    /// Opens the path again: after logrotate moved the file away, writing goes to a new one.
    pub fn reopen(&mut self) -> io::Result<()> {
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = file;
        Ok(())
    }

    /// Empties the file (and keeps the backups). A device or pipe has nothing to empty.
    pub fn clear(&mut self) -> io::Result<()> {
        if !self.regular {
            return Ok(());
        }
        self.file.set_len(0)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    /// A scratch directory, removed when dropped: when the test ends, passed or failed.
    struct TempDir(PathBuf);

    impl TempDir {
        fn join(&self, p: impl AsRef<Path>) -> PathBuf {
            self.0.join(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("kahi-logfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn rotates_at_line_boundaries_and_keeps_every_line_once() {
        let d = dir("rotate");
        let path = d.join("out.log");
        let mut f = LogFile::open(&path, 100, 50).unwrap();
        let mut all = String::new();
        for i in 0..400 {
            let line = format!("line {i:05}\n");
            all.push_str(&line);
            // Writes of uneven sizes, cutting lines anywhere.
            if i % 7 == 6 {
                f.write(all.as_bytes()).unwrap();
                all.clear();
            }
        }
        f.write(all.as_bytes()).unwrap();
        let mut files: Vec<PathBuf> =
            (1..=50).rev().map(|n| d.join(format!("out.log.{n}"))).filter(|p| p.exists()).collect();
        files.push(path.clone());
        let mut seen = Vec::new();
        for p in &files {
            let text = read(p);
            assert!(text.len() <= 100, "{} is {} bytes", p.display(), text.len());
            assert!(text.ends_with('\n') || text.is_empty(), "{} ends mid-line", p.display());
            seen.extend(text.lines().map(str::to_string));
        }
        let want: Vec<String> = (0..400).map(|i| format!("line {i:05}")).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn keeps_only_the_configured_backups() {
        let d = dir("backups");
        let path = d.join("x.log");
        let mut f = LogFile::open(&path, 10, 2).unwrap();
        for i in 0..10 {
            f.write(format!("{i}23456789\n").as_bytes()).unwrap();
        }
        assert!(d.join("x.log.1").exists() && d.join("x.log.2").exists());
        assert!(!d.join("x.log.3").exists());
        assert_eq!(read(&path), "923456789\n");
        assert_eq!(read(&d.join("x.log.1")), "823456789\n");
        assert_eq!(read(&d.join("x.log.2")), "723456789\n");
    }

    #[test]
    fn a_line_longer_than_the_limit_is_kept_whole() {
        let d = dir("long");
        let path = d.join("x.log");
        let mut f = LogFile::open(&path, 8, 3).unwrap();
        f.write(b"ab\n0123456789abcdef\ncd\n").unwrap();
        assert_eq!(read(&d.join("x.log.2")), "ab\n");
        assert_eq!(read(&d.join("x.log.1")), "0123456789abcdef\n");
        assert_eq!(read(&path), "cd\n");
    }

    #[test]
    fn no_backups_empties_in_place_and_zero_maxbytes_never_rotates() {
        let d = dir("inplace");
        let path = d.join("x.log");
        let mut f = LogFile::open(&path, 6, 0).unwrap();
        f.write(b"12345\nabc\n").unwrap();
        assert_eq!(read(&path), "abc\n");
        let path2 = d.join("y.log");
        let mut g = LogFile::open(&path2, 0, 5).unwrap();
        g.write(&[b'x'; 10_000]).unwrap();
        assert_eq!(std::fs::metadata(&path2).unwrap().len(), 10_000);
    }

    #[test]
    fn a_fifo_is_written_but_never_rotated_or_truncated() {
        let d = dir("fifo");
        let path = d.join("pipe");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Hold the read end (non-blocking, so opening it does not wait for a writer).
        let reader =
            OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(&path).unwrap();
        let mut f = LogFile::open(&path, 4, 3).unwrap();
        f.write(b"one line\nand another\n").unwrap();
        f.clear().unwrap();
        assert!(!d.join("pipe.1").exists(), "a FIFO was rotated");
        let mut got = String::new();
        io::Read::read_to_string(&mut &reader, &mut got).ok();
        assert_eq!(got, "one line\nand another\n");
    }

    #[test]
    fn reopen_follows_a_moved_file_and_clear_empties() {
        let d = dir("reopen");
        let path = d.join("x.log");
        let mut f = LogFile::open(&path, 0, 0).unwrap();
        f.write(b"before\n").unwrap();
        std::fs::rename(&path, d.join("moved.log")).unwrap();
        f.reopen().unwrap();
        f.write(b"after\n").unwrap();
        assert_eq!(read(&d.join("moved.log")), "before\n");
        assert_eq!(read(&path), "after\n");
        f.clear().unwrap();
        assert_eq!(read(&path), "");
        f.write(&[0, 255, 10]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [0, 255, 10]);
    }

    /// Issue 12: these tests left a kahi-logfile-* directory in /tmp each. A failed test
    /// removes its directory too.
    #[test]
    fn issue_12_a_scratch_directory_is_removed_even_when_its_test_fails() {
        let path = std::sync::Mutex::new(PathBuf::new());
        let failed = std::panic::catch_unwind(|| {
            let d = dir("failing");
            *path.lock().unwrap() = d.0.clone();
            std::fs::write(d.join("x.log"), "x\n").unwrap();
            panic!("a failing test");
        });
        assert!(failed.is_err());
        let path = path.into_inner().unwrap();
        assert!(
            path.starts_with(std::env::temp_dir())
                && path.ends_with(format!("kahi-logfile-{}-failing", std::process::id()))
        );
        assert!(!path.exists(), "{} is left behind", path.display());
    }
}
