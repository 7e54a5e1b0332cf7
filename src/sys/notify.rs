//! The sd_notify socket: programs of `type = "notify"` find its path in NOTIFY_SOCKET and send
//! datagrams such as `READY=1\nSTATUS=listening`, as systemd's sd_notify(3) defines. The
//! kernel attaches the sender's credentials (SO_PASSCRED), so a message is taken only from the
//! main pid of a supervised process (systemd's NotifyAccess=main); anything else is ignored.

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, setsockopt, sockopt};

use crate::process::machine::Notice;

/// The largest message read; sd_notify messages are a few short lines.
const MAX_MESSAGE: usize = 4096;

pub struct NotifySocket {
    pub sock: mio::net::UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `PATH.notify` next to the control socket `control` (which Kahi owns, so a stale
    /// file there is Kahi's own and is replaced).
    pub fn bind(control: &Path) -> io::Result<NotifySocket> {
        let mut name = control.as_os_str().to_os_string();
        name.push(".notify");
        let path = PathBuf::from(name);
        let _ = std::fs::remove_file(&path);
        let sock = mio::net::UnixDatagram::bind(&path)?;
        setsockopt(&sock, sockopt::PassCred, &true).map_err(io::Error::from)?;
        // Programs running as other users may send too: the credentials say who sent what.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        Ok(NotifySocket { sock, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next message and its sender's pid; None once nothing is waiting. Messages without
    /// credentials are skipped.
    pub fn recv(&self) -> Option<(i32, Vec<Notice>)> {
        loop {
            let mut buf = [0u8; MAX_MESSAGE];
            let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<UnixAddr>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            };
            let pid = msg.cmsgs().ok()?.find_map(|c| match c {
                ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                _ => None,
            });
            let len = msg.bytes;
            let Some(pid) = pid else { continue };
            return Some((pid, parse(&buf[..len])));
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The notices of one message: one `KEY=VALUE` per line; keys Kahi does not act on are
/// ignored, as systemd ignores unknown ones.
pub fn parse(msg: &[u8]) -> Vec<Notice> {
    let text = String::from_utf8_lossy(msg);
    text.lines()
        .filter_map(|line| match line.split_once('=') {
            Some(("READY", "1")) => Some(Notice::Ready),
            Some(("WATCHDOG", "1")) => Some(Notice::Watchdog),
            Some(("STOPPING", "1")) => Some(Notice::Stopping),
            Some(("STATUS", text)) => Some(Notice::Status(text.to_string())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_read_line_by_line() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=Listening on :80\nMAINPID=7\nWATCHDOG=1\nREADY=0"),
            [Notice::Ready, Notice::Status("Listening on :80".into()), Notice::Watchdog]
        );
        assert_eq!(parse(b"STOPPING=1"), [Notice::Stopping]);
        assert_eq!(parse(b"garbage\xff"), []);
    }
}
