//! Users and groups by name or number, as the C library knows them, and in a static binary
//! also as `getent` knows them.
//!
//! The glibc build asks NSS, which reads /etc/passwd and /etc/group and whatever else
//! nsswitch.conf names (LDAP, sssd, systemd's userdb). A static binary cannot: musl reads the
//! two files (and asks nscd where it runs), and a statically linked glibc cannot load NSS's
//! modules. So where the static binary finds no such user or group, it asks the host's
//! `getent`, the C library's own command, which does load them; where there is none (a
//! scratch image), the answer stays "no such user". `getent` runs only for names the files
//! lack, so a host whose users are all in /etc/passwd never starts it.

use std::ffi::CStr;

use nix::unistd::{Gid, Group, Uid, User};

/// The user of that name.
pub fn user_by_name(name: &str) -> nix::Result<Option<User>> {
    Ok(User::from_name(name)?.or_else(|| fallback::passwd(name)))
}

/// The user of that uid.
pub fn user_by_uid(uid: Uid) -> nix::Result<Option<User>> {
    Ok(User::from_uid(uid)?.or_else(|| fallback::passwd(&uid.to_string())))
}

/// The group of that name.
pub fn group_by_name(name: &str) -> nix::Result<Option<Group>> {
    Ok(Group::from_name(name)?.or_else(|| fallback::group(name)))
}

/// The groups `user` belongs to, `gid` (its primary group) first, as initgroups(3) would set
/// them.
pub fn group_list(user: &CStr, gid: Gid) -> nix::Result<Vec<Gid>> {
    // A user the files lack has its groups from the same place as itself.
    let name = user.to_str().ok().filter(|_| fallback::ACTIVE);
    let unknown = name.filter(|n| matches!(User::from_name(n), Ok(None)));
    if let Some(groups) = unknown.and_then(fallback::initgroups) {
        let others = groups.into_iter().filter(|g| *g != gid);
        return Ok(std::iter::once(gid).chain(others).collect());
    }
    nix::unistd::getgrouplist(user, gid)
}

/// What `getent` prints, read back.
#[cfg(any(target_env = "musl", target_feature = "crt-static", test))]
mod parse {
    use std::ffi::CString;
    use std::path::PathBuf;

    use nix::unistd::{Gid, Group, Uid, User};

    /// A line of the passwd database: `name:password:uid:gid:gecos:home:shell`.
    pub fn passwd(line: &str) -> Option<User> {
        let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
        let [name, passwd, uid, gid, gecos, dir, shell] = f[..] else { return None };
        Some(User {
            name: name.to_string(),
            passwd: CString::new(passwd).ok()?,
            uid: Uid::from_raw(uid.parse().ok()?),
            gid: Gid::from_raw(gid.parse().ok()?),
            gecos: CString::new(gecos).ok()?,
            dir: PathBuf::from(dir),
            shell: PathBuf::from(shell),
        })
    }

    /// A line of the group database: `name:password:gid:member,member,...`.
    pub fn group(line: &str) -> Option<Group> {
        let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
        let [name, passwd, gid, members] = f[..] else { return None };
        Some(Group {
            name: name.to_string(),
            passwd: CString::new(passwd).ok()?,
            gid: Gid::from_raw(gid.parse().ok()?),
            mem: members.split(',').filter(|m| !m.is_empty()).map(str::to_string).collect(),
        })
    }

    /// `getent initgroups NAME`: the name, then the numbers of its groups.
    pub fn initgroups(line: &str) -> Option<Vec<Gid>> {
        let mut f = line.split_whitespace();
        f.next()?;
        f.map(|g| g.parse().ok().map(Gid::from_raw)).collect()
    }
}

#[cfg(any(target_env = "musl", target_feature = "crt-static"))]
mod fallback {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::unistd::{Gid, Group, User};

    use super::parse;

    pub const ACTIVE: bool = true;

    /// How long `getent` may take: a directory server that does not answer must not hold the
    /// daemon's loop longer.
    const TIMEOUT: Duration = Duration::from_secs(5);

    pub fn passwd(key: &str) -> Option<User> {
        getent("passwd", key).as_deref().and_then(parse::passwd)
    }

    pub fn group(key: &str) -> Option<Group> {
        getent("group", key).as_deref().and_then(parse::group)
    }

    pub fn initgroups(name: &str) -> Option<Vec<Gid>> {
        getent("initgroups", name).as_deref().and_then(parse::initgroups)
    }

    /// The first line `getent DATABASE KEY` prints, where it finds the key; None where it
    /// does not, is not installed, or takes longer than [`TIMEOUT`] (it is then killed).
    fn getent(database: &str, key: &str) -> Option<String> {
        if key.is_empty() || key.starts_with('-') {
            return None;
        }
        let mut child = Command::new("getent")
            .args([database, key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut out = child.stdout.take()?;
        let deadline = Instant::now() + TIMEOUT;
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        let complete = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                .unwrap_or(PollTimeout::ZERO);
            let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) => break false,
                Ok(_) => match out.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) if text.len() < 1 << 16 => text.extend_from_slice(&chunk[..n]),
                    Ok(_) => break false,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break false,
                },
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break false,
            }
        };
        if !complete {
            let _ = child.kill();
            log::warn!(
                "getent {database} {key} gave no complete answer within {} s",
                TIMEOUT.as_secs()
            );
        }
        let status = child.wait().ok()?;
        let text = String::from_utf8(text).ok()?;
        (complete && status.success()).then(|| text.lines().next().unwrap_or("").to_string())
    }
}

/// The glibc build asks NSS itself: nothing to fall back on.
#[cfg(not(any(target_env = "musl", target_feature = "crt-static")))]
mod fallback {
    use nix::unistd::{Gid, Group, User};

    pub const ACTIVE: bool = false;

    pub fn passwd(_: &str) -> Option<User> {
        None
    }

    pub fn group(_: &str) -> Option<Group> {
        None
    }

    pub fn initgroups(_: &str) -> Option<Vec<Gid>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use nix::unistd::Gid;

    #[test]
    fn getents_lines_are_read_back() {
        let u = parse::passwd("ldapuser:*:70001:70000:LDAP User,,,:/home/ldapuser:/bin/bash\n")
            .unwrap();
        assert_eq!((u.name.as_str(), u.uid.as_raw(), u.gid.as_raw()), ("ldapuser", 70001, 70000));
        assert_eq!(u.dir.to_str(), Some("/home/ldapuser"));
        assert!(parse::passwd("short:x:1:2").is_none());
        assert!(parse::passwd("bad:x:one:2:g:/h:/s").is_none());

        let g = parse::group("devs:*:70002:ldapuser,other").unwrap();
        assert_eq!((g.name.as_str(), g.gid.as_raw()), ("devs", 70002));
        assert_eq!(g.mem, ["ldapuser", "other"]);
        assert!(parse::group("empty:x:5:").unwrap().mem.is_empty());

        let gids = |v: &[u32]| v.iter().copied().map(Gid::from_raw).collect::<Vec<_>>();
        assert_eq!(parse::initgroups("ldapuser              70002 27"), Some(gids(&[70002, 27])));
        assert_eq!(parse::initgroups("loner"), Some(vec![]));
        assert_eq!(parse::initgroups("x 1 two"), None);
    }
}
