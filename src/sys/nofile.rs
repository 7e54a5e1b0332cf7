//! The open-file limit (RLIMIT_NOFILE): raised at start to what Kahi may have, as supervisord's
//! `minfds` does, so that a few hundred programs (two pipes each) do not run into the usual soft
//! limit of 1024.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft limit to the hard one, and the hard one to `min` when it is lower and the
/// system allows it (root). Returns the new soft limit, or why it stays below `min`.
pub fn raise(min: u64) -> Result<u64, String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("unable to read the open-file limit: {e}"))?;
    let hard = if hard < min {
        match setrlimit(Resource::RLIMIT_NOFILE, min, min) {
            Ok(()) => min,
            Err(e) => {
                return Err(format!(
                    "minfds = {min}, but the hard open-file limit is {hard} and cannot be raised ({e}); \
                     raise it (ulimit -Hn, LimitNOFILE= in a systemd unit) or lower minfds"
                ));
            }
        }
    } else {
        hard
    };
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| {
            format!("unable to raise the open-file limit from {soft} to {hard}: {e}")
        })?;
    }
    Ok(hard.max(soft))
}

/// About how many file descriptors the daemon holds for `programs`: two pipes each (one with
/// redirect_stderr), a stdin pipe where asked, log files, and a reserve for sockets and clients.
pub fn needed<'a>(programs: impl Iterator<Item = &'a crate::config::ProcessSpec>) -> u64 {
    let mut n = 64;
    for p in programs {
        n += if p.redirect_stderr { 1 } else { 2 };
        n += u64::from(p.stdin_pipe);
        n += u64::from(p.stdout_log.is_some()) + u64::from(p.stderr_log.is_some());
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(raise(0), Ok(hard));
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, hard);
        if hard < u64::MAX / 2 && !nix::unistd::Uid::effective().is_root() {
            let said = raise(hard * 2).unwrap_err();
            assert!(said.contains(&format!("hard open-file limit is {hard}")), "{said}");
        }
    }
}
