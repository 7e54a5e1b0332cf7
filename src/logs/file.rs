//! A program's log file: appends, rotates by size into `NAME.1`, `NAME.2`, ... keeping
//! `backups` of them, reopens on request (SIGUSR2, for logrotate) and truncates on `clear`.
//!
//! Rotation happens at a line boundary whenever the data allows it, so every line is whole
//! in exactly one file: nothing is lost, duplicated or reordered across a rotation. Bytes are
//! written as they came (binary output survives untouched). Files are opened with O_CLOEXEC
//! (std's default), so they never leak into programs.
//!
//! A write the disk refuses (ENOSPC, EDQUOT, EIO), in whole or in part, never leaves a torn
//! line: what was not written is dropped up to the end of its line, a fragment of that line
//! already in the file is cut off again (or, when it cannot be, the next write starts a
//! fresh line), and the next line that comes is written whole when there is room. Each write
//! says what it dropped; warning about it is the caller's business. No logging here.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What one write did: how much went to the file, what was dropped, and why.
#[derive(Debug, Default)]
pub struct Written {
    /// Bytes the file took.
    pub bytes: u64,
    /// Bytes of output that will never be in the file (a fragment cut off again included).
    pub dropped: u64,
    /// Newlines among the dropped bytes: the lines lost.
    pub dropped_lines: u64,
    /// Why writing stopped; None when everything that was not dropped was written.
    pub error: Option<io::Error>,
}

impl Written {
    fn drop(&mut self, data: &[u8]) {
        self.dropped += data.len() as u64;
        self.dropped_lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
    }

    fn add(&mut self, other: Written) {
        self.bytes += other.bytes;
        self.dropped += other.dropped;
        self.dropped_lines += other.dropped_lines;
        if other.error.is_some() {
            self.error = other.error;
        }
    }
}

/// What writing needs of the file; the tests use one that fills up.
trait Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize>;
    fn len(&self) -> io::Result<u64>;
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl Sink for File {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Write::write(self, data)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// Where the file stands with respect to lines.
#[derive(Debug, Default)]
struct Edge {
    /// Bytes in the current file.
    size: u64,
    /// Where the line in progress starts in the file (`size` at a line boundary).
    line_start: u64,
    /// A write failed mid-line: output is dropped up to the end of that line.
    skipping: bool,
    /// The file ends with a fragment of a line that will never be finished (it could not be
    /// cut off): the next write starts a fresh line.
    torn: bool,
    /// A regular file, whose fragment can be cut off with ftruncate.
    regular: bool,
}

impl Edge {
    fn at(size: u64, regular: bool) -> Edge {
        Edge { size, line_start: size, regular, ..Edge::default() }
    }

    /// Drops what is left of a line whose beginning was dropped; returns the rest.
    fn skip<'a>(&mut self, data: &'a [u8], w: &mut Written) -> &'a [u8] {
        if !self.skipping {
            return data;
        }
        match data.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.skipping = false;
                w.drop(&data[..=i]);
                &data[i + 1..]
            }
            None => {
                w.drop(data);
                &[]
            }
        }
    }

    /// Writes `data` (which does not start inside a skipped line) to `sink`. On an error, the
    /// rest of `data` is dropped, up to the end of its last line and beyond, into the next
    /// writes, when it ends mid-line.
    fn put(&mut self, sink: &mut impl Sink, data: &[u8]) -> Written {
        let mut w = Written::default();
        if data.is_empty() {
            return w;
        }
        if self.torn {
            match write_all(sink, b"\n") {
                Ok(()) => {
                    self.torn = false;
                    self.size += 1;
                    w.bytes += 1;
                    self.line_start = self.size;
                }
                Err(e) => {
                    self.fail(sink, data, &mut w);
                    w.error = Some(e);
                    return w;
                }
            }
        }
        let mut done = 0;
        while done < data.len() {
            match sink.write(&data[done..]) {
                Ok(0) => {
                    w.error = Some(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => {
                    let chunk = &data[done..done + n];
                    self.size += n as u64;
                    if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
                        self.line_start = self.size - (n - i - 1) as u64;
                    }
                    done += n;
                    w.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    w.error = Some(e);
                    break;
                }
            }
        }
        if w.error.is_some() {
            self.fail(sink, &data[done..], &mut w);
        }
        w
    }

    /// A write stopped before `rest`: the line in progress is cut off the file (or marked
    /// torn), and `rest` is dropped up to the end of its line.
    fn fail(&mut self, sink: &mut impl Sink, rest: &[u8], w: &mut Written) {
        let fragment = self.size - self.line_start;
        if fragment > 0 {
            // Cut only a file that holds what this writer thinks it does: another writer's
            // lines after ours are not ours to remove.
            let ours = self.regular && sink.len().is_ok_and(|len| len == self.size);
            if ours && sink.truncate(self.line_start).is_ok() {
                self.size = self.line_start;
                w.bytes = w.bytes.saturating_sub(fragment);
                w.dropped += fragment;
            } else {
                self.torn = true;
            }
        }
        w.drop(rest);
        if let Some(&last) = rest.last() {
            self.skipping = last != b'\n';
        }
    }
}

/// write_all that keeps retrying EINTR and says WriteZero.
fn write_all(sink: &mut impl Sink, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match sink.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Size, line boundary and failure state of the current file. `edge.regular` is false
    /// for a device, FIFO or socket (`/dev/console`, a named pipe): such a file is never
    /// rotated nor truncated, only written.
    edge: Edge,
    /// Rotate once the file would grow past this; 0 never rotates.
    maxbytes: u64,
    backups: u32,
}

impl LogFile {
    pub fn open(path: &Path, maxbytes: u64, backups: u32) -> io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            edge: Edge::at(meta.len(), meta.file_type().is_file()),
            maxbytes,
            backups,
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

    /// The output that comes next continues a line whose beginning was dropped (the file
    /// could not be opened then): it is dropped up to the end of that line.
    pub fn skip_to_next_line(&mut self) {
        self.edge.skipping = true;
    }

    /// Appends `data`, rotating as needed. What the file does not take is dropped, a line at
    /// a time (see the module comment), and the result says so.
    pub fn write(&mut self, data: &[u8]) -> Written {
        let mut w = Written::default();
        let mut data = self.edge.skip(data, &mut w);
        while !data.is_empty() {
            let room = if self.maxbytes == 0 || !self.edge.regular {
                u64::MAX
            } else {
                self.maxbytes.saturating_sub(self.edge.size)
            };
            if data.len() as u64 <= room {
                w.add(self.edge.put(&mut self.file, data));
                return w;
            }
            // Fill the file up to the last whole line that fits, then rotate.
            let fits = &data[..room as usize];
            let cut = match fits.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                // Not one whole line fits. In a fresh file, a line longer than the limit goes
                // in whole (up to its end); otherwise start a fresh file for it.
                None if self.edge.size == 0 => {
                    data.iter().position(|&b| b == b'\n').map_or(data.len(), |i| i + 1)
                }
                None => 0,
            };
            let put = self.edge.put(&mut self.file, &data[..cut]);
            let failed = put.error.is_some();
            w.add(put);
            data = &data[cut..];
            if failed {
                // The rest goes too: the disk just refused a write.
                self.edge.fail(&mut self.file, data, &mut w);
                return w;
            }
            if (!data.is_empty() || self.edge.size >= self.maxbytes)
                && let Err(e) = self.rotate()
            {
                self.edge.fail(&mut self.file, data, &mut w);
                w.error = Some(e);
                return w;
            }
        }
        w
    }

    /// `NAME` -> `NAME.1` -> `NAME.2` ... up to `backups`; the oldest is removed. With no
    /// backups, the file is emptied in place.
    pub fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            self.file.set_len(0)?;
            self.edge.size = 0;
            self.edge.line_start = 0;
            self.edge.torn = false;
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
        let size = file.metadata()?.len();
        // A torn fragment stays torn only if this is still the file that holds it.
        let torn = self.edge.torn && size == self.edge.size;
        self.edge =
            Edge { torn, skipping: self.edge.skipping, ..Edge::at(size, self.edge.regular) };
        self.file = file;
        Ok(())
    }

    /// Empties the file (and keeps the backups). A device or pipe has nothing to empty.
    pub fn clear(&mut self) -> io::Result<()> {
        if !self.edge.regular {
            return Ok(());
        }
        self.file.set_len(0)?;
        self.edge = Edge { skipping: self.edge.skipping, ..Edge::at(0, true) };
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

    /// The write took everything.
    fn ok(w: Written) {
        assert!(w.error.is_none() && w.dropped == 0, "{w:?}");
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
                ok(f.write(all.as_bytes()));
                all.clear();
            }
        }
        ok(f.write(all.as_bytes()));
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
            ok(f.write(format!("{i}23456789\n").as_bytes()));
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
        ok(f.write(b"ab\n0123456789abcdef\ncd\n"));
        assert_eq!(read(&d.join("x.log.2")), "ab\n");
        assert_eq!(read(&d.join("x.log.1")), "0123456789abcdef\n");
        assert_eq!(read(&path), "cd\n");
    }

    #[test]
    fn no_backups_empties_in_place_and_zero_maxbytes_never_rotates() {
        let d = dir("inplace");
        let path = d.join("x.log");
        let mut f = LogFile::open(&path, 6, 0).unwrap();
        ok(f.write(b"12345\nabc\n"));
        assert_eq!(read(&path), "abc\n");
        let path2 = d.join("y.log");
        let mut g = LogFile::open(&path2, 0, 5).unwrap();
        ok(g.write(&[b'x'; 10_000]));
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
        ok(f.write(b"one line\nand another\n"));
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
        ok(f.write(b"before\n"));
        std::fs::rename(&path, d.join("moved.log")).unwrap();
        f.reopen().unwrap();
        ok(f.write(b"after\n"));
        assert_eq!(read(&d.join("moved.log")), "before\n");
        assert_eq!(read(&path), "after\n");
        f.clear().unwrap();
        assert_eq!(read(&path), "");
        ok(f.write(&[0, 255, 10]));
        assert_eq!(std::fs::read(&path).unwrap(), [0, 255, 10]);
    }

    /// A disk with `room` bytes free: a write takes what fits (a short write, as a full
    /// tmpfs does at a page boundary), and one that finds no room fails with ENOSPC.
    struct Disk {
        data: Vec<u8>,
        room: usize,
        /// Can the file be cut (a regular file nobody else writes)?
        cuttable: bool,
    }

    impl Sink for Disk {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(nix::libc::ENOSPC));
            }
            let n = data.len().min(self.room);
            self.room -= n;
            self.data.extend_from_slice(&data[..n]);
            Ok(n)
        }
        fn len(&self) -> io::Result<u64> {
            Ok(self.data.len() as u64)
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            if !self.cuttable {
                return Err(io::Error::from_raw_os_error(nix::libc::EINVAL));
            }
            self.room += self.data.len() - len as usize;
            self.data.truncate(len as usize);
            Ok(())
        }
    }

    /// What LogFile::write does, without rotation, on a fake disk.
    fn write_to(edge: &mut Edge, disk: &mut Disk, data: &[u8]) -> Written {
        let mut w = Written::default();
        let rest = edge.skip(data, &mut w);
        w.add(edge.put(disk, rest));
        w
    }

    fn numbered(from: usize, to: usize) -> Vec<u8> {
        (from..to)
            .flat_map(|i| format!("line {i:05} {}\n", "x".repeat(i % 23)).into_bytes())
            .collect()
    }

    /// Every line is one of `numbered`'s, whole and in order; returns their numbers.
    fn whole_lines(data: &[u8]) -> Vec<usize> {
        let text = std::str::from_utf8(data).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "ends mid-line: {text:?}");
        let mut seen = Vec::new();
        for l in text.lines() {
            let n: usize =
                l.get(5..10).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("torn: {l:?}"));
            assert_eq!(l, format!("line {n:05} {}", "x".repeat(n % 23)), "torn line");
            assert!(seen.last().is_none_or(|&p| p < n), "out of order: {n} after {seen:?}");
            seen.push(n);
        }
        seen
    }

    #[test]
    fn a_full_disk_drops_whole_lines_and_never_tears_one() {
        let all = numbered(0, 2000);
        // Fills up after any byte count, in writes of uneven sizes that cut lines anywhere.
        for room in [0, 1, 7, 100, 1234, 4096, 9999] {
            let mut disk = Disk { data: Vec::new(), room, cuttable: true };
            let mut edge = Edge::at(0, true);
            let (mut dropped, mut lines, mut errors) = (0, 0, 0);
            let mut chunks = all.chunks(333 + room % 17).enumerate();
            for (i, chunk) in chunks.by_ref() {
                if i == 60 {
                    disk.room = usize::MAX; // space freed
                }
                let w = write_to(&mut edge, &mut disk, chunk);
                dropped += w.dropped;
                lines += w.dropped_lines;
                errors += usize::from(w.error.is_some());
            }
            let seen = whole_lines(&disk.data);
            assert_eq!(disk.data.len() as u64 + dropped, all.len() as u64, "room {room}");
            assert_eq!(seen.len() as u64 + lines, 2000, "room {room}");
            assert!(errors > 0 && dropped > 0, "room {room}");
            // Once there is room, every line is there: the last 1000 or so at least.
            assert!(seen.ends_with(&(1000..2000).collect::<Vec<_>>()), "room {room}");
            // The lines that fitted before the disk was full are all there too.
            let fitted = all[..room.min(all.len())].iter().filter(|&&b| b == b'\n').count();
            assert_eq!(seen[..fitted], (0..fitted).collect::<Vec<_>>(), "room {room}");
        }
    }

    #[test]
    fn a_fragment_that_cannot_be_cut_is_ended_before_the_next_line() {
        let mut disk = Disk { data: Vec::new(), room: 14, cuttable: false };
        let mut edge = Edge::at(0, false);
        let w = write_to(&mut edge, &mut disk, b"line one\nline two\nline th");
        assert!(w.error.is_some());
        assert_eq!((w.dropped, w.dropped_lines), (11, 1), "{w:?}");
        assert_eq!(disk.data, b"line one\nline ");
        // The rest of the current line goes too, even once there is room.
        disk.room = usize::MAX;
        let w = write_to(&mut edge, &mut disk, b"ree\nline fo");
        assert!(w.error.is_none());
        assert_eq!((w.dropped, w.dropped_lines, w.bytes), (4, 1, 8), "{w:?}");
        ok(write_to(&mut edge, &mut disk, b"ur\n"));
        assert_eq!(disk.data, b"line one\nline \nline four\n");
    }

    #[test]
    fn a_line_begun_before_the_disk_filled_is_cut_off_whole() {
        let mut disk = Disk { data: Vec::new(), room: 18, cuttable: true };
        let mut edge = Edge::at(0, true);
        ok(write_to(&mut edge, &mut disk, b"whole\nbegun "));
        let w = write_to(&mut edge, &mut disk, b"but not ended\nnext\n");
        assert!(w.error.is_some());
        assert_eq!(disk.data, b"whole\n");
        assert_eq!((w.dropped, w.dropped_lines), (b"begun but not ended\nnext\n".len() as u64, 2));
        // Still full (something else took the space): nothing is torn either.
        disk.room = 0;
        let w = write_to(&mut edge, &mut disk, b"a");
        assert!(w.error.is_some() && w.bytes == 0);
        let w = write_to(&mut edge, &mut disk, b"b\n");
        assert!(w.error.is_none() && w.bytes == 0 && w.dropped == 2, "skipped, not tried: {w:?}");
        disk.room = 100;
        ok(write_to(&mut edge, &mut disk, b"after\n"));
        assert_eq!(disk.data, b"whole\nafter\n");
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
