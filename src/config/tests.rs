//! Unit tests of the configuration loader: real files in a private directory, read by
//! [`super::load_with`] with an environment the test chooses.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::*;

/// A private directory under the system temp dir, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("kahi-config-tests-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TempDir { path }
    }

    /// Writes `text` to `name` (which may contain directories) and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("create parent");
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// The path of `name` as a string, for the expected text of messages.
    fn show(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `path` with an environment holding only `vars`.
fn load_env(path: &Path, vars: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
    let env = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    load_with(path, &env)
}

/// Loads `path`, which must be valid.
fn ok_file(path: &Path) -> Config {
    load_with(path, &no_env).unwrap_or_else(|errors| panic!("{}", render(&errors)))
}

/// Writes `text` as `kahi.toml` in a new directory and loads it; it must be valid.
fn ok(text: &str) -> Config {
    let dir = TempDir::new();
    ok_file(&dir.write("kahi.toml", text))
}

/// Loads `path`, which must be invalid; returns the errors.
fn errors_file(path: &Path) -> Vec<ConfigError> {
    match load_with(path, &no_env) {
        Ok(c) => panic!("expected errors, loaded {} processes", c.processes.len()),
        Err(errors) => {
            assert!(!errors.is_empty(), "an Err holds at least one error");
            errors
        }
    }
}

/// Writes `text` as `kahi.toml` in a new directory and loads it; it must be invalid.
fn errors(text: &str) -> Vec<ConfigError> {
    let dir = TempDir::new();
    errors_file(&dir.write("kahi.toml", text))
}

/// The single error of `text`.
fn one_error(text: &str) -> ConfigError {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "exactly one error expected:\n{}", render(&errors));
    errors.into_iter().next().unwrap()
}

fn render(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("{e}\n")).collect()
}

fn process<'c>(config: &'c Config, name: &str) -> &'c ProcessSpec {
    config
        .processes
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no process {name} in {:?}", names(config)))
}

fn names(config: &Config) -> Vec<String> {
    config.processes.iter().map(ProcessSpec::namespec).collect()
}

/// `(line, column, key)` of each error: where it points, without the wording.
fn places(errors: &[ConfigError]) -> Vec<(usize, usize, &str)> {
    errors.iter().map(|e| (e.line, e.column, e.key.as_str())).collect()
}

// ---- defaults ----

#[test]
fn program_defaults_are_supervisords() {
    let config = ok("[programs.web]\ncommand = \"/bin/web\"\n");
    let p = process(&config, "web");
    assert_eq!(p.name, "web");
    assert_eq!(p.group, "web");
    assert_eq!(p.program, "web");
    assert_eq!(p.namespec(), "web");
    assert_eq!(p.argv, ["/bin/web"]);
    assert_eq!(p.startsecs, Duration::from_secs(1));
    assert_eq!(p.startretries, 3);
    assert_eq!(p.autorestart, AutoRestart::Unexpected);
    assert_eq!(p.exitcodes, [0]);
    assert_eq!(p.stopsignal, Signal::SIGTERM);
    assert_eq!(p.stopwaitsecs, Duration::from_secs(10));
    assert_eq!(p.priority, 999);
    assert!(p.autostart);
    assert!(!p.stopasgroup);
    assert!(!p.killasgroup);
    assert_eq!(p.user, None);
    assert_eq!(p.directory, None);
    assert_eq!(p.umask, None);
    assert!(p.environment.is_empty());
    assert!(!p.clean_environment);
    assert!(!p.redirect_stderr);
    assert_eq!(p.stdout_capture_maxbytes, 1 << 20);
    assert_eq!(p.stderr_capture_maxbytes, 1 << 20);
    assert_eq!(
        config.programs,
        [ProgramInfo {
            name: "web".into(),
            group: "web".into(),
            autostart: true,
            priority: 999,
            numprocs: 1
        }]
    );
}

#[test]
fn killasgroup_defaults_to_stopasgroup() {
    let config = ok("[programs.a]\ncommand = \"a\"\nstopasgroup = true\n\
         [programs.b]\ncommand = \"b\"\nstopasgroup = false\n");
    assert!(process(&config, "a").stopasgroup);
    assert!(process(&config, "a").killasgroup, "stopasgroup = true implies killasgroup");
    assert!(!process(&config, "b").killasgroup);
    // killasgroup alone does not turn on stopasgroup.
    let config = ok("[programs.c]\ncommand = \"c\"\nkillasgroup = true\n");
    assert!(!process(&config, "c").stopasgroup);
    assert!(process(&config, "c").killasgroup);
}

#[test]
fn server_and_logging_defaults() {
    let dir = TempDir::new();
    let path = dir.write("kahi.toml", "");
    let config = ok_file(&path);
    assert_eq!(config.file, path);
    assert_eq!(config.server.socket_mode, 0o700);
    assert_eq!(config.server.socket, default_socket());
    assert_eq!(config.logging.level, log::LevelFilter::Info);
    assert!(config.processes.is_empty());
    assert!(config.programs.is_empty());
}

#[test]
fn server_and_logging_keys() {
    let config = ok("[server]\nsocket = \"/run/x/kahi.sock\"\nsocket_mode = \"0660\"\n\
         [logging]\nlevel = \"DEBUG\"\n");
    assert_eq!(config.server.socket, PathBuf::from("/run/x/kahi.sock"));
    assert_eq!(config.server.socket_mode, 0o660);
    assert_eq!(config.logging.level, log::LevelFilter::Debug);
    let config = ok("[server]\nsocket_mode = 0o600\n[logging]\nlevel = \"warn\"\n");
    assert_eq!(config.server.socket_mode, 0o600);
    assert_eq!(config.logging.level, log::LevelFilter::Warn);
}

// ---- every key ----

#[test]
fn every_program_key_is_parsed() {
    let config = ok(r#"
[programs.web]
command = ["/usr/bin/env", "a b", "c"]
priority = 10
autostart = false
startsecs = 2.5
startretries = 7
autorestart = true
exitcodes = [0, 2, 255]
stopsignal = "HUP"
stopwaitsecs = 30
stopasgroup = true
killasgroup = true
directory = "/srv/web"
umask = "022"
environment = { PORT = "8000", DEBUG = true, WORKERS = 4, RATIO = 0.5 }
clean_environment = true
redirect_stderr = true
stdout_capture_maxbytes = "64KB"
stderr_capture_maxbytes = 4096
"#);
    let p = process(&config, "web");
    assert_eq!(p.argv, ["/usr/bin/env", "a b", "c"], "an array is argv as it is");
    assert_eq!(p.priority, 10);
    assert!(!p.autostart);
    assert_eq!(p.startsecs, Duration::from_millis(2500));
    assert_eq!(p.startretries, 7);
    assert_eq!(p.autorestart, AutoRestart::Always);
    assert_eq!(p.exitcodes, [0, 2, 255]);
    assert_eq!(p.stopsignal, Signal::SIGHUP);
    assert_eq!(p.stopwaitsecs, Duration::from_secs(30));
    assert!(p.stopasgroup && p.killasgroup);
    assert_eq!(p.directory, Some(PathBuf::from("/srv/web")));
    assert_eq!(p.umask, Some(0o22));
    let mut env = p.environment.clone();
    env.sort();
    let expected: Vec<(String, String)> =
        [("DEBUG", "true"), ("PORT", "8000"), ("RATIO", "0.5"), ("WORKERS", "4")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(env, expected);
    assert!(p.clean_environment);
    assert!(p.redirect_stderr);
    assert_eq!(p.stdout_capture_maxbytes, 64 * 1024);
    assert_eq!(p.stderr_capture_maxbytes, 4096);
    assert_eq!(config.programs[0].priority, 10);
    assert!(!config.programs[0].autostart);
}

#[test]
fn string_command_is_split_like_a_shell() {
    let config = ok(r#"
[programs.web]
command = "/bin/sh -c 'echo \"hi there\"; exit 3'  x\\ y"
"#);
    assert_eq!(process(&config, "web").argv, ["/bin/sh", "-c", "echo \"hi there\"; exit 3", "x y"]);
}

#[test]
fn umask_as_octal_string_and_toml_octal() {
    for (value, expected) in [("\"022\"", 0o22), ("\"0o027\"", 0o27), ("0o22", 0o22), ("0o0", 0)] {
        let config = ok(&format!("[programs.web]\ncommand = \"x\"\numask = {value}\n"));
        assert_eq!(process(&config, "web").umask, Some(expected), "umask = {value}");
    }
}

#[test]
fn sizes_in_bytes_kb_mb_gb() {
    for (value, expected) in [
        ("\"64KB\"", 64 << 10),
        ("\"1MB\"", 1 << 20),
        ("\"2gb\"", 2 << 30),
        ("\"50 MB\"", 50 << 20),
        ("1024", 1024),
        ("0", 0),
    ] {
        let config =
            ok(&format!("[programs.web]\ncommand = \"x\"\nstdout_capture_maxbytes = {value}\n"));
        assert_eq!(process(&config, "web").stdout_capture_maxbytes, expected, "{value}");
    }
}

#[test]
fn stopsignal_by_name_prefix_or_number() {
    for (value, expected) in [
        ("\"HUP\"", Signal::SIGHUP),
        ("\"SIGINT\"", Signal::SIGINT),
        ("\"quit\"", Signal::SIGQUIT),
        ("\"USR2\"", Signal::SIGUSR2),
        ("9", Signal::SIGKILL),
        ("\"15\"", Signal::SIGTERM),
    ] {
        let config = ok(&format!("[programs.web]\ncommand = \"x\"\nstopsignal = {value}\n"));
        assert_eq!(process(&config, "web").stopsignal, expected, "stopsignal = {value}");
    }
}

#[test]
fn autorestart_true_false_unexpected() {
    for (value, expected) in [
        ("true", AutoRestart::Always),
        ("false", AutoRestart::Never),
        ("\"unexpected\"", AutoRestart::Unexpected),
    ] {
        let config = ok(&format!("[programs.web]\ncommand = \"x\"\nautorestart = {value}\n"));
        assert_eq!(process(&config, "web").autorestart, expected, "autorestart = {value}");
    }
}

#[test]
fn seconds_as_integer_or_float() {
    let config = ok("[programs.web]\ncommand = \"x\"\nstartsecs = 0\nstopwaitsecs = 0.25\n");
    let p = process(&config, "web");
    assert_eq!(p.startsecs, Duration::ZERO);
    assert_eq!(p.stopwaitsecs, Duration::from_millis(250));
}

#[test]
fn user_as_numeric_uid_gid_of_the_current_user() {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let config = ok(&format!("[programs.web]\ncommand = \"x\"\nuser = \"{uid}:{gid}\"\n"));
    let user = process(&config, "web").user.clone().expect("a user");
    assert_eq!((user.uid, user.gid), (uid, gid));
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    assert_eq!(user.name, name);
    assert!(user.groups.is_empty(), "numbers need no group database");
}

#[test]
fn user_other_than_the_daemons_needs_root() {
    // A uid that no account is likely to hold: numbers need no /etc/passwd.
    let text = "[programs.web]\ncommand = \"x\"\nuser = \"54321:54322\"\n";
    if nix::unistd::geteuid().is_root() {
        let config = ok(text);
        let user = process(&config, "web").user.clone().expect("a user");
        assert_eq!((user.uid, user.gid), (54321, 54322));
    } else {
        let e = one_error(text);
        assert_eq!(e.key, "programs.web.user");
        assert!(e.message.contains("only root can switch to another user"), "{e}");
    }
}

#[test]
fn unknown_user_name_is_an_error() {
    let e = one_error("[programs.web]\ncommand = \"x\"\nuser = \"no-such-user-kahi\"\n");
    assert_eq!((e.line, e.column, e.key.as_str()), (3, 8, "programs.web.user"));
    assert!(e.message.contains("no such user \"no-such-user-kahi\""), "{e}");
}

// ---- numprocs ----

#[test]
fn numprocs_names_each_process_from_the_template() {
    let config = ok(r#"
[programs.web]
command = "/bin/web --port 80%(process_num)02d --of %(numprocs)d"
process_name = "%(program_name)s_%(process_num)02d"
directory = "/srv/%(process_num)d"
numprocs = 3
numprocs_start = 5
"#);
    assert_eq!(names(&config), ["web:web_05", "web:web_06", "web:web_07"]);
    let p = process(&config, "web_06");
    assert_eq!(p.group, "web");
    assert_eq!(p.program, "web");
    assert_eq!(p.namespec(), "web:web_06");
    assert_eq!(p.argv, ["/bin/web", "--port", "8006", "--of", "3"]);
    assert_eq!(p.directory, Some(PathBuf::from("/srv/6")));
    assert_eq!(config.programs.len(), 1, "avail lists the program once");
    assert_eq!(config.programs[0].numprocs, 3);
}

#[test]
fn numprocs_one_may_use_process_num() {
    let config = ok(r#"
[programs.web]
command = "x"
process_name = "%(program_name)s_%(process_num)02d"
"#);
    assert_eq!(names(&config), ["web:web_00"]);
}

#[test]
fn numprocs_above_one_needs_process_num_in_the_name() {
    let dir = TempDir::new();
    let path = dir.write("kahi.toml", "[programs.web]\ncommand = \"x\"\nnumprocs = 2\n");
    let errors = errors_file(&path);
    assert_eq!(
        render(&errors),
        format!(
            "{}:1:1: programs.web.process_name: must contain %(process_num) when numprocs > 1, \
             so that each process gets its own name (for example \"%(program_name)s_%(process_num)02d\")\n",
            dir.show("kahi.toml")
        )
    );
    // With a template that forgets it, the error points at the template.
    let e = one_error(
        "[programs.web]\ncommand = \"x\"\nnumprocs = 2\nprocess_name = \"%(program_name)s\"\n",
    );
    assert_eq!((e.line, e.column, e.key.as_str()), (4, 16, "programs.web.process_name"));
}

#[test]
fn numprocs_out_of_range() {
    let e = one_error("[programs.web]\ncommand = \"x\"\nnumprocs = 0\n");
    assert_eq!(e.key, "programs.web.numprocs");
    assert_eq!(e.message, "expected an integer from 1 to 100000, found integer 0");
}

#[test]
fn processes_are_ordered_by_priority_then_group_then_name() {
    let config = ok(r#"
[programs.c]
command = "x"
priority = 1
[programs.b]
command = "x"
[programs.a]
command = "x"
[programs.z]
command = "x"
priority = 5
"#);
    assert_eq!(names(&config), ["c", "z", "a", "b"]);
    let programs: Vec<&str> = config.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(programs, ["a", "b", "c", "z"], "avail is sorted by name");
}

// ---- expansion ----

#[test]
fn dollar_variables_from_the_daemon_environment() {
    let dir = TempDir::new();
    let path = dir.write(
        "kahi.toml",
        r#"
[server]
socket = "${RUN}/kahi.sock"
[programs.web]
command = "${BIN}/web --level ${LEVEL:-info} --name ${NAME:-anon} $$HOME"
environment = { HOME_COPY = "${HOME}" }
"#,
    );
    let config =
        load_env(&path, &[("BIN", "/opt/bin"), ("RUN", "/run/k"), ("NAME", "x"), ("HOME", "/h")])
            .unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(config.server.socket, PathBuf::from("/run/k/kahi.sock"));
    let p = process(&config, "web");
    assert_eq!(p.argv, ["/opt/bin/web", "--level", "info", "--name", "x", "$HOME"]);
    assert_eq!(p.environment, [("HOME_COPY".to_string(), "/h".to_string())]);
}

#[test]
fn unset_dollar_variable_names_key_and_place() {
    let dir = TempDir::new();
    let path = dir.write("kahi.toml", "[programs.web]\n# the binary\ncommand = \"${BIN}/web\"\n");
    let errors = load_env(&path, &[]).unwrap_err();
    assert_eq!(
        render(&errors),
        format!(
            "{}:3:11: programs.web.command: environment variable BIN is not set \
             (write ${{BIN:-}} for an empty default)\n",
            dir.show("kahi.toml")
        )
    );
    // Negative twin: the same file loads once BIN is set.
    let config = load_env(&path, &[("BIN", "/b")]).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(process(&config, "web").argv, ["/b/web"]);
}

#[test]
fn here_is_the_directory_of_the_defining_file() {
    let dir = TempDir::new();
    let main = dir.write(
        "kahi.toml",
        "include = [\"conf.d/*.toml\"]\n[programs.main]\ncommand = \"%(here)s/bin/main\"\n",
    );
    dir.write("conf.d/extra.toml", "[programs.extra]\ncommand = \"%(here)s/bin/extra\"\n");
    let config = ok_file(&main);
    assert_eq!(process(&config, "main").argv, [format!("{}/bin/main", dir.path.display())]);
    assert_eq!(process(&config, "extra").argv, [format!("{}/bin/extra", dir.show("conf.d"))]);
}

#[test]
fn env_names_from_the_program_environment_and_the_daemon() {
    let dir = TempDir::new();
    let path = dir.write(
        "kahi.toml",
        r#"
[programs.web]
command = "/bin/web --port %(ENV_PORT)s --user %(ENV_LOGNAME)s"
environment = { PORT = "8080" }
"#,
    );
    // PORT is also in the daemon's environment: the program's own value wins.
    let config = load_env(&path, &[("PORT", "1"), ("LOGNAME", "ops")])
        .unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(process(&config, "web").argv, ["/bin/web", "--port", "8080", "--user", "ops"]);
    // Without LOGNAME anywhere the name cannot be expanded.
    let e = load_env(&path, &[]).unwrap_err();
    assert_eq!(places(&e), [(3, 11, "programs.web.command")]);
    assert_eq!(e[0].message, "environment variable LOGNAME is not set (in %(ENV_LOGNAME)s)");
}

#[test]
fn environment_values_may_use_process_num() {
    let config = ok(r#"
[programs.w]
command = "x"
process_name = "w%(process_num)d"
numprocs = 2
environment = { SLOT = "%(process_num)d", NAME = "%(program_name)s" }
"#);
    let mut env = process(&config, "w1").environment.clone();
    env.sort();
    assert_eq!(env, [("NAME".to_string(), "w".to_string()), ("SLOT".to_string(), "1".to_string())]);
}

#[test]
fn group_name_host_node_name_and_program_name() {
    let config = ok(r#"
[programs.web]
command = "/bin/echo %(group_name)s %(program_name)s %(host_node_name)s"
[programs.solo]
command = "/bin/echo %(group_name)s"
[groups.backend]
programs = ["web"]
"#);
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    assert_eq!(process(&config, "web").argv, ["/bin/echo", "backend", "web", host.as_str()]);
    assert_eq!(process(&config, "solo").argv, ["/bin/echo", "solo"], "ungrouped: its own name");
}

#[test]
fn process_num_is_not_available_outside_the_per_process_keys() {
    let e = one_error("[programs.web]\ncommand = \"x\"\nuser = \"%(process_num)d\"\n");
    assert_eq!(e.key, "programs.web.user");
    assert!(e.message.starts_with("%(process_num) cannot be expanded here"), "{e}");
}

// ---- groups ----

#[test]
fn group_members_get_the_group_name() {
    let config = ok(r#"
[programs.web]
command = "x"
[programs.worker]
command = "x"
process_name = "worker%(process_num)d"
numprocs = 2
[programs.cron]
command = "x"
[groups.backend]
programs = ["web", "worker"]
"#);
    assert_eq!(process(&config, "web").group, "backend");
    assert_eq!(process(&config, "web").namespec(), "backend:web");
    assert_eq!(process(&config, "worker1").namespec(), "backend:worker1");
    assert_eq!(process(&config, "cron").namespec(), "cron");
    let info = config.programs.iter().find(|p| p.name == "worker").unwrap();
    assert_eq!(info.group, "backend");
}

#[test]
fn group_priority_is_the_default_of_its_members() {
    let config = ok(r#"
[programs.web]
command = "x"
[programs.worker]
command = "x"
priority = 7
[programs.cron]
command = "x"
[groups.backend]
programs = ["web", "worker"]
priority = 100
"#);
    assert_eq!(process(&config, "web").priority, 100, "inherits the group's");
    assert_eq!(process(&config, "worker").priority, 7, "its own wins");
    assert_eq!(process(&config, "cron").priority, 999, "not in the group");
    assert_eq!(names(&config), ["backend:worker", "backend:web", "cron"]);
}

#[test]
fn group_with_the_name_of_its_only_member() {
    let config = ok("[programs.web]\ncommand = \"x\"\n[groups.web]\nprograms = [\"web\"]\n");
    assert_eq!(names(&config), ["web"]);
}

#[test]
fn unknown_group_member_suggests_a_near_name() {
    let dir = TempDir::new();
    let path = dir.write(
        "kahi.toml",
        "[programs.worker]\ncommand = \"x\"\n[groups.g]\nprograms = [\"wokrer\"]\n",
    );
    assert_eq!(
        render(&errors_file(&path)),
        format!(
            "{}:4:12: groups.g.programs: unknown program \"wokrer\"; did you mean \"worker\"?\n",
            dir.show("kahi.toml")
        )
    );
    let e = one_error("[programs.web]\ncommand = \"x\"\n[groups.g]\nprograms = [\"wbe\"]\n");
    assert!(e.message.ends_with("did you mean \"web\"?"), "{e}");
    let e = one_error("[programs.web]\ncommand = \"x\"\n[groups.g]\nprograms = [\"database\"]\n");
    assert_eq!(e.message, "unknown program \"database\"", "no hint when nothing is near");
}

#[test]
fn a_program_in_two_groups_is_an_error() {
    let e = one_error(
        "[programs.web]\ncommand = \"x\"\n\
         [groups.a]\nprograms = [\"web\"]\n[groups.b]\nprograms = [\"web\"]\n",
    );
    assert_eq!((e.line, e.column, e.key.as_str()), (6, 12, "groups.b.programs"));
    assert_eq!(e.message, "program \"web\" is already in group \"a\"");
}

#[test]
fn group_errors() {
    let e = one_error("[groups.g]\npriority = 1\n");
    assert_eq!((e.line, e.key.as_str()), (1, "groups.g"));
    assert_eq!(e.message, "missing required key \"programs\"");

    let e = one_error("[programs.web]\ncommand = \"x\"\n[groups.g]\nprograms = \"web\"\n");
    assert_eq!(e.key, "groups.g.programs");
    assert_eq!(e.message, "expected an array, found string \"web\"");

    let errors = errors("[programs.web]\ncommand = \"x\"\n[groups.g]\nprogram = [\"web\"]\n");
    assert_eq!(places(&errors), [(3, 1, "groups.g"), (4, 1, "groups.g.program")]);
    assert_eq!(errors[1].message, "unknown key; did you mean \"programs\"?");

    let e = one_error(
        "[programs.web]\ncommand = \"x\"\n[programs.api]\ncommand = \"x\"\n\
         [groups.web]\nprograms = [\"api\"]\n",
    );
    assert_eq!(e.key, "groups.web.programs");
    assert_eq!(e.message, "group \"web\" has the name of a program that is not in it");
}

// ---- includes ----

#[test]
fn includes_are_relative_to_the_main_file_and_read_in_sorted_order() {
    let dir = TempDir::new();
    let main = dir.write(
        "etc/kahi.toml",
        "include = [\"conf.d/*.toml\", \"more/*.toml\"]\n[programs.main]\ncommand = \"x\"\n",
    );
    // Written out of order: the glob's matches are sorted before reading.
    dir.write(
        "etc/conf.d/b.toml",
        "[programs.b]\ncommand = \"x\"\n[groups.g]\nprograms = [\"a\"]\n",
    );
    dir.write("etc/conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    dir.write("etc/conf.d/notes.txt", "not toml at all [");
    dir.write("etc/more/c.toml", "[programs.c]\ncommand = \"x\"\n");
    let config = ok_file(&main);
    // Sorted by (priority, group, name); `a` is in group `g`.
    assert_eq!(names(&config), ["b", "c", "g:a", "main"]);

    // The order is visible in duplicate errors: the later file is the one blamed.
    dir.write("etc/conf.d/z.toml", "[programs.a]\ncommand = \"y\"\n");
    let errors = errors_file(&main);
    assert_eq!(
        render(&errors),
        format!(
            "{}:1:1: programs.a: program defined twice; first at {}:1:1\n",
            dir.show("etc/conf.d/z.toml"),
            dir.show("etc/conf.d/a.toml")
        )
    );
}

#[test]
fn load_text_checks_as_load_does_but_reads_no_include() {
    let dir = TempDir::new();
    let text = "include = [\"conf.d/*.toml\"]\n[programs.main]\ncommand = \"%(here)s/main\"\n";
    let main = dir.write("kahi.toml", text);
    dir.write("conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    assert_eq!(names(&ok_file(&main)), ["a", "main"]);
    let config = load_text(&main, text, &no_env).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(names(&config), ["main"]);
    assert_eq!(process(&config, "main").argv, [dir.show("main")]);
    // Errors name the notional file and their place, as they do for a real one.
    let errors = load_text(Path::new("/nowhere/kahi.toml"), "include = [1]\n", &no_env);
    assert_eq!(
        render(&errors.unwrap_err()),
        "/nowhere/kahi.toml:1:11: include: expected a string, found integer 1\n"
    );
}

#[test]
fn include_patterns_are_read_in_the_order_written() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"z/*.toml\", \"a/*.toml\"]\n");
    dir.write("z/x.toml", "[programs.dup]\ncommand = \"x\"\n");
    dir.write("a/x.toml", "[programs.dup]\ncommand = \"x\"\n");
    let errors = errors_file(&main);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].file, dir.path.join("a/x.toml"));
    assert!(errors[0].message.ends_with(&format!("first at {}:1:1", dir.show("z/x.toml"))));
}

#[test]
fn duplicate_across_main_and_included_file_names_both() {
    let dir = TempDir::new();
    let main = dir
        .write("kahi.toml", "include = [\"conf.d/*.toml\"]\n\n[programs.web]\ncommand = \"x\"\n");
    dir.write("conf.d/web.toml", "# again\n[programs.web]\ncommand = \"y\"\n");
    let errors = errors_file(&main);
    assert_eq!(
        render(&errors),
        format!(
            "{}:2:1: programs.web: program defined twice; first at {}:3:1\n",
            dir.show("conf.d/web.toml"),
            dir.show("kahi.toml")
        )
    );
}

#[test]
fn duplicate_group_across_files() {
    let dir = TempDir::new();
    let main = dir.write(
        "kahi.toml",
        "include = [\"g.toml\"]\n[programs.web]\ncommand = \"x\"\n[groups.g]\nprograms = [\"web\"]\n",
    );
    dir.write("g.toml", "[groups.g]\nprograms = []\n");
    let errors = errors_file(&main);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].file, dir.path.join("g.toml"));
    assert_eq!(
        errors[0].message,
        format!("group defined twice; first at {}:4:1", dir.show("kahi.toml"))
    );
}

#[test]
fn an_included_file_may_not_set_server_logging_or_include() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*.toml\"]\n");
    dir.write(
        "conf.d/a.toml",
        "include = [\"x\"]\n[programs.a]\ncommand = \"x\"\n[server]\nsocket = \"/s\"\n\
         [logging]\nlevel = \"debug\"\n",
    );
    let errors = errors_file(&main);
    assert_eq!(
        places(&errors),
        [(1, 11, "include"), (4, 1, "server"), (6, 1, "logging")],
        "{}",
        render(&errors)
    );
    for e in &errors {
        assert_eq!(e.file, dir.path.join("conf.d/a.toml"));
        assert!(e.message.starts_with("only the main file may set this"), "{e}");
    }
    // Negative twin: the same [server] table in the main file is fine.
    let main = dir.write("kahi.toml", "[server]\nsocket = \"/s\"\n");
    assert_eq!(ok_file(&main).server.socket, PathBuf::from("/s"));
}

#[test]
fn a_pattern_matching_nothing_is_not_an_error() {
    let dir = TempDir::new();
    let main = dir.write(
        "kahi.toml",
        "include = [\"nothing/*.toml\", \"none.toml\"]\n[programs.web]\ncommand = \"x\"\n",
    );
    assert_eq!(names(&ok_file(&main)), ["web"]);
}

#[test]
fn include_matching_the_main_file_does_not_read_it_twice() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"*.toml\"]\n[programs.web]\ncommand = \"x\"\n");
    dir.write("worker.toml", "[programs.worker]\ncommand = \"x\"\n");
    assert_eq!(names(&ok_file(&main)), ["web", "worker"]);
}

#[test]
fn a_file_matched_by_two_patterns_is_read_once() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*.toml\", \"conf.d/a.toml\"]\n");
    dir.write("conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    assert_eq!(names(&ok_file(&main)), ["a"]);
}

#[test]
fn include_patterns_are_expanded() {
    let dir = TempDir::new();
    dir.write("conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    let main = dir.write("kahi.toml", "include = [\"%(here)s/conf.d/*.toml\"]\n");
    assert_eq!(names(&ok_file(&main)), ["a"], "%(here)s, as supervisord's [include] files");
    let main = dir.write("kahi.toml", "include = [\"${CONF}/*.toml\"]\n");
    let config =
        load_env(&main, &[("CONF", "conf.d")]).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(names(&config), ["a"], "${{CONF}} from the daemon's environment");
}

#[test]
fn here_in_the_socket_path() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "[server]\nsocket = \"%(here)s/kahi.sock\"\n");
    assert_eq!(ok_file(&main).server.socket, dir.path.join("kahi.sock"));
}

#[test]
fn decimal_integer_modes_are_refused() {
    let errors =
        errors("[server]\nsocket_mode = 700\n[programs.web]\ncommand = \"x\"\numask = 22\n");
    assert_eq!(
        places(&errors),
        [(2, 15, "server.socket_mode"), (5, 9, "programs.web.umask")],
        "{}",
        render(&errors)
    );
    for e in &errors {
        assert!(e.message.contains("octal"), "{e}");
    }
}

#[test]
fn include_must_be_an_array_of_strings() {
    let e = one_error("include = \"conf.d/*.toml\"\n");
    assert_eq!((e.line, e.column, e.key.as_str()), (1, 11, "include"));
    assert_eq!(e.message, "expected an array, found string \"conf.d/*.toml\"");
}

#[test]
fn errors_in_included_files_name_that_file() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*.toml\"]\n");
    dir.write("conf.d/web.toml", "[programs.web]\ncommand = \"x\"\nstartsecs = \"abc\"\n");
    let errors = errors_file(&main);
    assert_eq!(
        render(&errors),
        format!(
            "{}:3:13: programs.web.startsecs: expected a number of seconds >= 0, \
             found string \"abc\"\n",
            dir.show("conf.d/web.toml")
        )
    );
}

#[test]
fn unreadable_included_file_is_an_error() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*\"]\n");
    std::fs::create_dir_all(dir.path.join("conf.d/sub")).unwrap();
    let errors = errors_file(&main);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].file, dir.path.join("conf.d/sub"));
    assert_eq!(errors[0].line, 0);
    assert!(errors[0].message.starts_with("unable to read included file: "), "{}", errors[0]);
}

// ---- errors ----

#[test]
fn unknown_key_suggests_the_near_one() {
    let dir = TempDir::new();
    let path = dir.write("kahi.toml", "[programs.web]\ncommand = \"x\"\nstartsec = 5\n");
    assert_eq!(
        render(&errors_file(&path)),
        format!(
            "{}:3:1: programs.web.startsec: unknown key; did you mean \"startsecs\"?\n",
            dir.show("kahi.toml")
        )
    );
    let e = one_error("[programs.web]\ncommand = \"x\"\nfrobnicate = 5\n");
    assert_eq!(e.message, "unknown key", "no hint when nothing is near");
    let e = one_error("[server]\nsokcet = \"/s\"\n");
    assert_eq!(
        (e.key.as_str(), e.message.as_str()),
        ("server.sokcet", "unknown key; did you mean \"socket\"?")
    );
    let e = one_error("[program.web]\ncommand = \"x\"\n");
    assert_eq!(e.key, "program");
    assert_eq!(e.message, "unknown table or key; did you mean \"programs\"?");
}

#[test]
fn wrong_type_names_key_and_expectation() {
    let dir = TempDir::new();
    let text =
        "# Kahi\n\n[programs.web]\ncommand = \"/bin/web\"\n\n\n\n\n\n\n\nstartsecs = \"abc\"\n";
    let path = dir.write("kahi.toml", text);
    let errors = errors_file(&path);
    assert_eq!(
        render(&errors),
        format!(
            "{}:12:13: programs.web.startsecs: expected a number of seconds >= 0, \
             found string \"abc\"\n",
            dir.show("kahi.toml")
        )
    );
    assert_eq!(
        errors[0],
        ConfigError {
            file: path.clone(),
            line: 12,
            column: 13,
            key: "programs.web.startsecs".into(),
            message: "expected a number of seconds >= 0, found string \"abc\"".into(),
        }
    );
}

#[test]
fn wrong_types_and_values() {
    let cases: &[(&str, &str, &str)] = &[
        ("autostart = \"yes\"", "autostart", "expected true or false, found string \"yes\""),
        ("priority = 1.5", "priority", "expected an integer, found float 1.5"),
        (
            "priority = 9223372036854775808",
            "priority",
            "expected a 64-bit integer, found integer 9223372036854775808",
        ),
        ("startsecs = -1", "startsecs", "expected a number of seconds >= 0, found integer -1"),
        ("startretries = -1", "startretries", "expected an integer >= 0, found integer -1"),
        (
            "autorestart = \"always\"",
            "autorestart",
            "expected true, false or \"unexpected\", found string \"always\"",
        ),
        ("exitcodes = 0", "exitcodes", "expected an array, found integer 0"),
        (
            "exitcodes = [0, 256]",
            "exitcodes",
            "expected an integer from 0 to 255, found integer 256",
        ),
        ("stopsignal = true", "stopsignal", "expected a signal name or number, found boolean true"),
        (
            "stopwaitsecs = \"10s\"",
            "stopwaitsecs",
            "expected a number of seconds >= 0, found string \"10s\"",
        ),
        (
            "umask = \"rwx\"",
            "umask",
            "expected an octal mode such as \"022\", found string \"rwx\"",
        ),
        ("umask = \"8\"", "umask", "expected an octal mode such as \"022\", found string \"8\""),
        (
            "stdout_capture_maxbytes = \"1TB\"",
            "stdout_capture_maxbytes",
            "expected a size such as 1048576 or \"1MB\", found string \"1TB\"",
        ),
        (
            "stderr_capture_maxbytes = -1",
            "stderr_capture_maxbytes",
            "expected a size such as 1048576 or \"1MB\", found integer -1",
        ),
        ("environment = \"A=1\"", "environment", "expected a table, found string \"A=1\""),
        ("environment = { A = [1] }", "environment.A", "expected a string, found an array"),
        (
            "environment = { \"A=B\" = \"1\" }",
            "environment.\"A=B\"",
            "a variable name cannot be empty or contain '=' or NUL",
        ),
        ("redirect_stderr = 1", "redirect_stderr", "expected true or false, found integer 1"),
        ("directory = 5", "directory", "expected a string, found integer 5"),
    ];
    for (line, key, message) in cases {
        let text = format!("[programs.web]\ncommand = \"x\"\n{line}\n");
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{line}:\n{}", render(&errors));
        let e = &errors[0];
        assert_eq!(e.line, 3, "{line}");
        assert_eq!(e.key, format!("programs.web.{key}"), "{line}");
        assert_eq!(e.message, *message, "{line}");
    }
}

#[test]
fn unknown_signal_says_what_is_expected() {
    for value in ["\"NOPE\"", "99"] {
        let e = one_error(&format!("[programs.web]\ncommand = \"x\"\nstopsignal = {value}\n"));
        assert_eq!((e.line, e.column, e.key.as_str()), (3, 14, "programs.web.stopsignal"));
        assert!(e.message.starts_with("unknown signal"), "{e}");
    }
}

#[test]
fn server_and_logging_errors() {
    let errors =
        errors("[server]\nsocket = 5\nsocket_mode = \"rw\"\n[logging]\nlevel = \"loud\"\n");
    assert_eq!(
        places(&errors),
        [(2, 10, "server.socket"), (3, 15, "server.socket_mode"), (5, 9, "logging.level")]
    );
    assert_eq!(errors[0].message, "expected a string, found integer 5");
    assert_eq!(
        errors[2].message,
        "unknown level \"loud\"; expected error, warn, info, debug or trace"
    );
    let e = one_error("server = 5\n");
    assert_eq!(
        (e.key.as_str(), e.message.as_str()),
        ("server", "expected a table, found integer 5")
    );
}

#[test]
fn command_errors() {
    let e = one_error("[programs.web]\nautostart = true\n");
    assert_eq!((e.line, e.column, e.key.as_str()), (1, 1, "programs.web"));
    assert_eq!(e.message, "missing required key \"command\"");

    let e = one_error("[programs.web]\ncommand = 5\n");
    assert_eq!(e.key, "programs.web.command");
    assert_eq!(e.message, "expected a string or an array of strings, found integer 5");

    for empty in ["\"\"", "\"   \"", "[]", "[\"\"]"] {
        let e = one_error(&format!("[programs.web]\ncommand = {empty}\n"));
        assert_eq!((e.key.as_str(), e.message.as_str()), ("programs.web.command", "is empty"));
    }

    // execve(2) would cut the word at the NUL: refused here (issue 13), not at each spawn.
    for nul in ["\"/bin/true\\u0000x\"", "[\"/bin/true\", \"a\\u0000\"]"] {
        let e = one_error(&format!("[programs.web]\ncommand = {nul}\n"));
        assert_eq!((e.line, e.column, e.key.as_str()), (2, 11, "programs.web.command"));
        assert_eq!(e.message, "a NUL byte is not allowed in a command");
    }
    let e = one_error(
        "[programs.web]\ncommand = \"/bin/true\"\n[programs.web.environment]\nA = \"\\u0000\"\n",
    );
    assert_eq!((e.line, e.column, e.key.as_str()), (4, 5, "programs.web.environment.A"));
    assert_eq!(e.message, "a NUL byte is not allowed in an environment value");

    let e = one_error("[programs.web]\ncommand = \"sh -c 'open\"\n");
    assert_eq!(e.message, "cannot split into words: unterminated single quote");

    let e = one_error("[programs.web]\ncommand = [\"sh\", 5]\n");
    assert_eq!(e.message, "expected a string, found integer 5");
}

#[test]
fn toml_syntax_errors_have_line_and_column() {
    let dir = TempDir::new();
    let path = dir.write("kahi.toml", "[programs.web]\ncommand = \"x\"\nstartsecs = \n");
    let errors = errors_file(&path);
    assert_eq!(places(&errors), [(3, 13, "")]);
    assert!(errors[0].message.starts_with("invalid TOML: "), "{}", errors[0]);
    assert!(
        render(&errors).starts_with(&format!("{}:3:13: invalid TOML: ", dir.show("kahi.toml")))
    );

    // A table or a key defined twice names the key and both its lines (issue 12).
    let e = one_error("[programs.web]\ncommand = \"x\"\n\n[programs.web]\ncommand = \"y\"\n");
    assert_eq!((e.line, e.key.as_str()), (4, "programs.web"), "{e}");
    assert_eq!(e.message, "duplicate key (first at line 1)");
    let e = one_error("[programs.web]\ncommand = \"x\"\nstartsecs = 1\ncommand = \"y\"\n");
    assert_eq!(
        e.to_string(),
        format!("{}:4:1: programs.web.command: duplicate key (first at line 2)", e.file.display())
    );
}

#[test]
fn syntax_errors_in_several_files_are_all_reported() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"*.d/*.toml\"]\n");
    dir.write("a.d/one.toml", "[programs.one]\ncommand = \"x\"\n\n[programs.one\n");
    dir.write("b.d/two.toml", "[programs.two]\ncommand = 'x\n");
    let errors = errors_file(&main);
    let files: Vec<&Path> = errors.iter().map(|e| e.file.as_path()).collect();
    assert_eq!(files, [dir.path.join("a.d/one.toml"), dir.path.join("b.d/two.toml")]);
    assert_eq!(errors[0].line, 4);
    assert_eq!(errors[1].line, 2);
}

#[test]
fn stopasgroup_without_killasgroup_is_an_error() {
    let e = one_error("[programs.web]\ncommand = \"x\"\nstopasgroup = true\nkillasgroup = false\n");
    assert_eq!((e.line, e.column, e.key.as_str()), (4, 15, "programs.web.killasgroup"));
    assert!(e.message.starts_with("cannot be false when stopasgroup is true"), "{e}");
    // Negative twin: the other way round is allowed.
    let config = ok("[programs.web]\ncommand = \"x\"\nstopasgroup = false\nkillasgroup = true\n");
    assert!(process(&config, "web").killasgroup);
}

#[test]
fn bad_names() {
    let dir = TempDir::new();
    let path = dir.write(
        "kahi.toml",
        "[programs.\"web app\"]\ncommand = \"x\"\n[programs.\"a:b\"]\ncommand = \"x\"\n\
         [programs.\"a/b\"]\ncommand = \"x\"\n[programs.all]\ncommand = \"x\"\n\
         [groups.\"my group\"]\nprograms = []\n",
    );
    let errors = errors_file(&path);
    assert_eq!(
        places(&errors),
        [
            (1, 1, "programs.\"web app\""),
            (3, 1, "programs.\"a:b\""),
            (5, 1, "programs.\"a/b\""),
            (7, 1, "programs.all"),
            (9, 1, "groups.\"my group\""),
        ],
        "{}",
        render(&errors)
    );
    let f = dir.show("kahi.toml");
    assert_eq!(
        errors[0].to_string(),
        format!(
            "{f}:1:1: programs.\"web app\": name \"web app\" contains ' '; \
             names may contain only ASCII letters, digits, '_', '-' and '.'"
        )
    );
    assert_eq!(
        errors[3].to_string(),
        format!("{f}:7:1: programs.all: \"all\" is reserved: kahi ctl uses it for every process")
    );
}

#[test]
fn names_are_identifiers_issue_13() {
    // They were accepted: a glob, a directory, an instance name, invisible and bidi
    // characters, controls, and a name longer than any file name.
    let long = "a".repeat(129);
    for (name, what) in [
        ("*", "contains '*'"),
        ("..", "\"..\" is not a name"),
        (".", "\".\" is not a name"),
        ("web@1", "contains '@'"),
        ("a,b", "contains ','"),
        ("web\\u200b", "contains '\\u{200b}'"),
        ("\\u202eweb", "contains '\\u{202e}'"),
        ("a\\tb", "contains '\\t'"),
        ("caf\\u00e9", "contains '\u{e9}'"),
        (long.as_str(), "at most 128 characters; this one has 129"),
    ] {
        for section in ["programs", "groups"] {
            let text = match section {
                "programs" => format!("[programs.\"{name}\"]\ncommand = \"x\"\n"),
                _ => format!(
                    "[programs.web]\ncommand = \"x\"\n[groups.\"{name}\"]\nprograms = [\"web\"]\n"
                ),
            };
            let e = one_error(&text);
            assert!(e.key.starts_with(&format!("{section}.")), "{e}");
            assert!(e.message.contains(what), "{name:?}: {e}");
            assert!(e.line > 0 && e.column == 1, "{e}");
        }
    }
    let e = one_error("[programs.web]\ncommand = \"x\"\nprocess_name = \"web@%(process_num)d\"\n");
    assert_eq!((e.line, e.column, e.key.as_str()), (3, 16, "programs.web.process_name"));
    assert!(e.message.contains("contains '@'"), "{e}");
    // What supervisord configs commonly use stays valid, up to 128 characters.
    let ok_names = ["web", "web.1", "my-app_2", "A.b-c", "..a", &"b".repeat(128)];
    let text: String =
        ok_names.iter().map(|n| format!("[programs.\"{n}\"]\ncommand = \"x\"\n")).collect();
    assert_eq!(ok(&text).processes.len(), ok_names.len());
}

#[test]
fn empty_name_is_quoted_in_the_key_path() {
    let e = one_error("[programs.\"\"]\ncommand = \"x\"\n");
    assert_eq!((e.line, e.column), (1, 1));
    assert_eq!(e.message, "a name cannot be empty");
    assert_eq!(e.key, "programs.\"\"");
}

#[test]
fn expanded_process_name_is_checked() {
    let e = one_error(
        "[programs.web]\ncommand = \"x\"\nprocess_name = \"web %(process_num)d\"\nnumprocs = 2\n",
    );
    assert_eq!(e.key, "programs.web.process_name");
    assert!(e.message.contains("contains ' '"), "{e}");
}

#[test]
fn two_programs_defining_the_same_process_name() {
    let dir = TempDir::new();
    let path = dir.write(
        "kahi.toml",
        "[programs.a]\ncommand = \"x\"\nprocess_name = \"same\"\n\
         [programs.b]\ncommand = \"x\"\nprocess_name = \"same\"\n\
         [groups.g]\nprograms = [\"a\", \"b\"]\n",
    );
    let errors = errors_file(&path);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(
        errors[0].message,
        "programs \"a\" and \"b\" both define a process named \"g:same\""
    );
}

#[test]
fn every_error_is_reported_with_its_line() {
    let dir = TempDir::new();
    let path = dir.write(
        "kahi.toml",
        r#"[programs.web]
command = "/bin/web"
startsecs = "abc"

[programs.worker]
command = "/bin/worker"
stopsignal = "NOPE"

[programs.cron]
command = "/bin/cron"
autorestrat = true
"#,
    );
    let errors = errors_file(&path);
    assert_eq!(
        places(&errors),
        [
            (3, 13, "programs.web.startsecs"),
            (7, 14, "programs.worker.stopsignal"),
            (11, 1, "programs.cron.autorestrat"),
        ],
        "{}",
        render(&errors)
    );
    assert_eq!(errors[2].message, "unknown key; did you mean \"autorestart\"?");
}

#[test]
fn errors_across_tables_and_files_come_in_reading_order() {
    let dir = TempDir::new();
    let main = dir.write(
        "kahi.toml",
        "include = [\"conf.d/*.toml\"]\nbogus = 1\n[server]\nsocket_mode = \"x\"\n\
         [programs.z]\ncommand = \"x\"\npriority = \"high\"\n\
         [programs.a]\ncommand = \"x\"\nautostart = 1\n\
         [groups.g]\nprograms = [\"nope\"]\n",
    );
    dir.write("conf.d/a.toml", "[programs.b]\nstartsecs = true\n");
    let errors = errors_file(&main);
    let got: Vec<(PathBuf, usize, &str)> =
        errors.iter().map(|e| (e.file.clone(), e.line, e.key.as_str())).collect();
    let m = main.clone();
    let inc = dir.path.join("conf.d/a.toml");
    assert_eq!(
        got,
        [
            (m.clone(), 2, "bogus"),
            (m.clone(), 4, "server.socket_mode"),
            (m.clone(), 7, "programs.z.priority"),
            (m.clone(), 10, "programs.a.autostart"),
            (m.clone(), 12, "groups.g.programs"),
            (inc.clone(), 1, "programs.b"),
            (inc, 2, "programs.b.startsecs"),
        ],
        "{}",
        render(&errors)
    );
}

#[test]
fn column_counts_characters_not_bytes() {
    let e =
        one_error("[programs.web]\ncommand = \"x\"\nenvironment = { \"NAMÉ\" = \"é\", B = [] }\n");
    assert_eq!(e.key, "programs.web.environment.B");
    // `environment = { "NAMÉ" = "é", B = ` is 34 characters (36 bytes).
    assert_eq!((e.line, e.column), (3, 35));
}

#[test]
fn expansion_errors_are_reported_alongside_other_errors() {
    let errors = errors("[programs.web]\ncommand = \"${NOPE}\"\nstartsecs = \"abc\"\n");
    assert_eq!(
        places(&errors),
        [(2, 11, "programs.web.command"), (3, 13, "programs.web.startsecs")],
        "{}",
        render(&errors)
    );
}

#[test]
fn every_expansion_error_of_a_program_is_reported() {
    let errors = errors(
        "[programs.web]\ncommand = [\"${A}\", \"${B}\"]\nprocess_name = \"${C}\"\n\
         environment = { X = \"${D}\", Y = \"${E}\" }\n",
    );
    let found: Vec<&str> = errors.iter().filter_map(|e| e.message.split(' ').nth(2)).collect();
    assert_eq!(found, ["A", "B", "C", "D", "E"], "{}", render(&errors));
}

#[test]
fn missing_file_names_the_path() {
    let dir = TempDir::new();
    let path = dir.path.join("nope.toml");
    let errors = errors_file(&path);
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].key.as_str()), (0, ""));
    assert_eq!(
        errors[0].to_string(),
        format!("{}: unable to read: No such file or directory (os error 2)", path.display())
    );
}

#[test]
fn display_omits_what_is_missing() {
    let e = ConfigError {
        file: PathBuf::from("/etc/kahi.toml"),
        line: 12,
        column: 13,
        key: "programs.web.startsecs".into(),
        message: "expected a number of seconds >= 0, found string \"abc\"".into(),
    };
    assert_eq!(
        e.to_string(),
        "/etc/kahi.toml:12:13: programs.web.startsecs: expected a number of seconds >= 0, \
         found string \"abc\""
    );
    let e = ConfigError { key: String::new(), ..e };
    assert!(e.to_string().starts_with("/etc/kahi.toml:12:13: expected"));
    let e = ConfigError { line: 0, column: 0, ..e };
    assert!(e.to_string().starts_with("/etc/kahi.toml: expected"));
}

// ---- socket activation ----

#[test]
fn socket_programs_list_what_they_listen_on() {
    let c = ok("[programs.echo]\ncommand = \"echo\"\ntype = \"socket\"\n\
                listen = [\"tcp://127.0.0.1:8080\", \"tcp://[::1]:8080\", \"unix:///run/echo.sock\"]\n");
    let p = process(&c, "echo");
    assert_eq!(p.kind, Kind::Socket);
    let shown: Vec<String> = p.listen.iter().map(|l| l.to_string()).collect();
    assert_eq!(shown, ["tcp://127.0.0.1:8080", "tcp://[::1]:8080", "unix:///run/echo.sock"]);
}

#[test]
fn socket_program_errors_name_the_key() {
    let e = one_error("[programs.echo]\ncommand = \"echo\"\ntype = \"socket\"\n");
    assert_eq!((e.line, e.key.as_str()), (3, "programs.echo.type"), "{e}");
    assert!(e.message.contains("needs listen"), "{e}");
    let e = one_error("[programs.echo]\ncommand = \"echo\"\nlisten = [\"tcp://127.0.0.1:1\"]\n");
    assert_eq!((e.line, e.key.as_str()), (3, "programs.echo.listen"), "{e}");
    assert!(e.message.contains("type = \"socket\" only"), "{e}");
    for (bad, says) in [
        ("tcp://localhost:80", "IP address"),
        ("unix://run/x.sock", "absolute path"),
        ("udp://127.0.0.1:53", "tcp://ADDRESS:PORT or unix:///PATH"),
    ] {
        let e = one_error(&format!(
            "[programs.echo]\ncommand = \"echo\"\ntype = \"socket\"\nlisten = [\"{bad}\"]\n"
        ));
        assert_eq!((e.line, e.key.as_str()), (4, "programs.echo.listen"), "{e}");
        assert!(e.message.contains(says), "{bad}: {e}");
    }
    let e = one_error("[programs.echo]\ncommand = \"echo\"\naccept = true\n");
    assert_eq!((e.line, e.key.as_str()), (3, "programs.echo.accept"), "{e}");
    let c = ok("[programs.echo]\ncommand = \"echo\"\ntype = \"socket\"\naccept = true\n\
                max_instances = 5\nlisten = [\"tcp://127.0.0.1:1\"]\n");
    assert!(process(&c, "echo").accept);
    assert_eq!(process(&c, "echo").max_instances, 5);
    let e = one_error(
        "[programs.echo]\ncommand = \"echo\"\ntype = \"socket\"\nlisten = [\"tcp://127.0.0.1:1\"]\n\
         numprocs = 2\nprocess_name = \"e%(process_num)d\"\n",
    );
    assert!(e.message.contains("numprocs must be 1"), "{e}");
}

#[test]
fn cgroup_limits_parse_and_max_means_none() {
    let c = ok("[programs.a]\ncommand = \"x\"\n[programs.a.limits]\nmemory_max = \"64MB\"\n\
                cpu_max = 0.5\npids_max = 100\nnofile = 10\n\
                [programs.b]\ncommand = \"x\"\n[programs.b.limits]\ncpu_max = \"150%\"\nmemory_max = \"max\"\n\
                [programs.c]\ncommand = \"x\"\n[programs.c.limits]\ncpu_max = 2\n");
    let a = process(&c, "a");
    assert_eq!(a.cgroup.memory_max, Some(64 << 20));
    assert_eq!(a.cgroup.cpu_quota_us, Some(50_000));
    assert_eq!(a.cgroup.pids_max, Some(100));
    assert_eq!(a.limits, vec![(Limit::Nofile, Some(10))]);
    let b = process(&c, "b");
    assert_eq!((b.cgroup.cpu_quota_us, b.cgroup.memory_max), (Some(150_000), None));
    assert_eq!(process(&c, "c").cgroup.cpu_quota_us, Some(200_000));
    assert!(process(&c, "c").cgroup.memory_max.is_none());

    for (bad, says) in [
        ("cpu_max = \"fast\"", "number of CPUs"),
        ("cpu_max = 0", "number of CPUs"),
        ("pids_max = 0", ">= 1"),
        ("memory_max = true", "size"),
    ] {
        let e = one_error(&format!("[programs.a]\ncommand = \"x\"\n[programs.a.limits]\n{bad}\n"));
        assert_eq!(e.line, 4, "{bad}: {e}");
        assert!(e.message.contains(says), "{bad}: {e}");
    }
}
