//! A program's environment: the daemon's own (unless `clean_environment`), then the
//! `SUPERVISOR_*` variables, then the program's `environment`, later ones replacing earlier.
//!
//! Each variable is kept as the `NAME=value\0` bytes that execve takes. The daemon's own are
//! read once and borrowed by every start, not copied for each: with 10,000 programs, reading
//! them into owned strings and joining them again (five allocations a variable, at every
//! start) was a fifth of the daemon's time while they started.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::libc;

use crate::config::ProcessSpec;

/// Where a program finds its supervisor's XML-RPC interface (`SUPERVISOR_SERVER_URL`), once
/// the HTTP listener is bound; unset without one.
static SERVER_URL: OnceLock<String> = OnceLock::new();

/// Sets `SUPERVISOR_SERVER_URL` for every program started from now on (once, at start-up).
pub(crate) fn set_server_url(url: String) {
    let _ = SERVER_URL.set(url);
}

/// The daemon's environment as it was when first asked for, each variable `NAME=value\0`. The
/// daemon takes NOTIFY_SOCKET out of it at start-up, before it starts anything, and changes it
/// no more.
fn inherited() -> &'static [Vec<u8>] {
    static VARS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    VARS.get_or_init(|| {
        std::env::vars_os().map(|(k, v)| joined(k.as_bytes(), v.as_bytes())).collect()
    })
}

fn joined(name: &[u8], value: &[u8]) -> Vec<u8> {
    [name, b"=", value, b"\0"].concat()
}

/// The environment one start of a program gets.
pub struct Environment {
    vars: Vec<Cow<'static, [u8]>>,
    /// A name or value set with a NUL byte in it, which no C string can hold.
    nul: bool,
}

impl Environment {
    /// What `spec` starts with, before what its start adds (NOTIFY_SOCKET, LISTEN_FDS, ...).
    pub fn for_program(spec: &ProcessSpec) -> Environment {
        let inherited: &[Vec<u8>] = if spec.clean_environment { &[] } else { inherited() };
        let mut env = Environment {
            vars: inherited.iter().map(|v| Cow::Borrowed(v.as_slice())).collect(),
            nul: false,
        };
        env.set("SUPERVISOR_ENABLED", b"1");
        env.set("SUPERVISOR_PROCESS_NAME", spec.name.as_bytes());
        env.set("SUPERVISOR_GROUP_NAME", spec.group.as_bytes());
        // As supervisord sets it from its serverurl: tools that run under it (superlance's
        // httpok and memmon, supervisor.childutils) call back through it.
        if let Some(url) = SERVER_URL.get() {
            env.set("SUPERVISOR_SERVER_URL", url.as_bytes());
        }
        for (k, v) in &spec.environment {
            env.set(k, v.as_bytes());
        }
        env
    }

    fn find(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        self.vars.iter().position(|v| v.starts_with(name) && v.get(name.len()) == Some(&b'='))
    }

    /// Sets `name` to `value`, in the place it had or at the end.
    pub fn set(&mut self, name: &str, value: &[u8]) {
        self.nul |= name.as_bytes().contains(&0) || value.contains(&0);
        let var = Cow::Owned(joined(name.as_bytes(), value));
        match self.find(name) {
            Some(i) => self.vars[i] = var,
            None => self.vars.push(var),
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        let v = &self.vars[self.find(name)?];
        Some(OsStr::from_bytes(&v[name.len() + 1..v.len() - 1]))
    }

    /// Where the value of `name` starts, for writing into (the child writes LISTEN_PID's digits
    /// into the room set for them): a buffer of this start's own.
    pub fn value_ptr_mut(&mut self, name: &str) -> Option<*mut u8> {
        let i = self.find(name)?;
        Some(self.vars[i].to_mut().as_mut_ptr().wrapping_add(name.len() + 1))
    }

    /// The NULL-terminated array execve takes, pointing into this environment.
    pub fn envp(&self) -> Result<Vec<*const libc::c_char>, Errno> {
        if self.nul {
            return Err(Errno::EINVAL);
        }
        Ok(self.vars.iter().map(|v| v.as_ptr().cast()).chain([std::ptr::null()]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(environment: &[(&str, &str)], clean: bool) -> ProcessSpec {
        ProcessSpec {
            name: "web".into(),
            group: "web".into(),
            program: "web".into(),
            argv: vec!["/bin/true".into()],
            environment: environment.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            clean_environment: clean,
            ..ProcessSpec::default()
        }
    }

    fn vars(env: &Environment) -> Vec<String> {
        env.vars.iter().map(|v| String::from_utf8_lossy(&v[..v.len() - 1]).into_owned()).collect()
    }

    #[test]
    fn the_programs_own_come_last_and_replace_the_supervisors() {
        let env =
            Environment::for_program(&spec(&[("A", "1"), ("SUPERVISOR_ENABLED", "no")], true));
        assert_eq!(
            vars(&env),
            [
                "SUPERVISOR_ENABLED=no",
                "SUPERVISOR_PROCESS_NAME=web",
                "SUPERVISOR_GROUP_NAME=web",
                "A=1"
            ]
        );
        assert_eq!(env.get("A"), Some(OsStr::new("1")));
        // A name that only begins another's is not it.
        assert_eq!(env.get("SUPERVISOR"), None);
    }

    #[test]
    fn the_daemons_own_are_there_unless_clean_and_replaced_in_place() {
        let path = std::env::var("PATH").expect("the tests run with a PATH");
        let env = Environment::for_program(&spec(&[], false));
        assert_eq!(env.get("PATH"), Some(OsStr::new(&path)));
        let mut env = Environment::for_program(&spec(&[("PATH", "/opt/bin")], false));
        let at = vars(&env).iter().position(|v| v.starts_with("PATH=")).unwrap();
        assert!(at < vars(&env).iter().position(|v| v.starts_with("SUPERVISOR_")).unwrap());
        assert_eq!(env.get("PATH"), Some(OsStr::new("/opt/bin")));
        assert_eq!(Environment::for_program(&spec(&[], true)).get("PATH"), None);
        // envp points at every variable, NUL-terminated, and ends with NULL.
        let envp = env.envp().unwrap();
        assert_eq!(envp.len(), env.vars.len() + 1);
        assert!(envp.last().unwrap().is_null());
        // SAFETY: each pointer is to a NUL-terminated variable of env.
        let first = unsafe { std::ffi::CStr::from_ptr(envp[at]) };
        assert_eq!(first.to_bytes(), b"PATH=/opt/bin");
        // A value written into through its pointer is this start's own copy.
        let p = env.value_ptr_mut("PATH").unwrap();
        // SAFETY: the value holds 8 bytes.
        unsafe { *p = b'X' };
        assert_eq!(env.get("PATH"), Some(OsStr::new("Xopt/bin")));
        assert_eq!(
            Environment::for_program(&spec(&[], false)).get("PATH"),
            Some(OsStr::new(&path))
        );
    }

    #[test]
    fn a_nul_byte_is_refused_at_the_start() {
        let mut env = Environment::for_program(&spec(&[], true));
        env.set("A", b"x\0y");
        assert_eq!(env.envp(), Err(Errno::EINVAL));
    }
}
