//! Reading a configuration file (the main one, an include, a TLS file): regular files only, and
//! at most [`MAX_BYTES`]. An include that matches a named pipe would otherwise block the event
//! loop on `update` until something wrote to it, and one linked to /dev/zero would fill memory.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest configuration file Kahi reads: far more than any real one.
pub const MAX_BYTES: u64 = 16 << 20;

/// The text of the regular file `path`, or why it cannot be had.
pub fn text(path: &Path) -> Result<String, String> {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer; it is refused below.
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("not a regular file ({})", kind(&meta)));
    }
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "{} bytes, more than a configuration file may hold ({} MiB)",
            meta.len(),
            MAX_BYTES >> 20
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The size may have grown since: never more than the limit.
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("more than a configuration file may hold ({} MiB)", MAX_BYTES >> 20));
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_a_device_and_a_directory_are_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("kahi-config-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.toml");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fifo_said = text(&fifo);
        let file = dir.join("ok.toml");
        std::fs::write(&file, "a = 1\n").unwrap();
        let file_said = text(&file);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(fifo_said, Err("not a regular file (a named pipe)".into()));
        assert_eq!(
            text(Path::new("/dev/zero")),
            Err("not a regular file (a character device)".into())
        );
        assert_eq!(text(Path::new("/")), Err("not a regular file (a directory)".into()));
        assert_eq!(file_said, Ok("a = 1\n".into()));
    }
}
