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

mod errors;
mod fcgi;
mod includes;
mod listeners;
mod webhooks;
