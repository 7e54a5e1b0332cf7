//! Errors: each names its file, line, column and key path, and says what was expected.

use super::*;

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
        (
            "type = \"daemon\"",
            "type",
            "expected \"simple\", \"oneshot\", \"notify\" or \"socket\", found \"daemon\"",
        ),
        (
            "on_dependency_failure = \"kill\"",
            "on_dependency_failure",
            "expected \"stop\", \"restart\" or \"ignore\", found \"kill\"",
        ),
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
fn a_program_that_waits_for_itself_is_one_error_at_its_line() {
    let e = one_error("[programs.a]\ncommand = \"x\"\ndepends_on = [\"a\"]\n");
    assert_eq!((e.line, e.key.as_str()), (3, "programs.a.depends_on.0"));
    assert_eq!(e.message, "\"a\" cannot wait for itself");
    // A real cycle is still one.
    let e = one_error(
        "[programs.a]\ncommand = \"x\"\nafter = [\"b\"]\n[programs.b]\ncommand = \"x\"\nafter = [\"a\"]\n",
    );
    assert_eq!(e.message, "dependency cycle: a -> b -> a");
}

#[test]
fn a_control_socket_in_a_missing_directory_is_a_warning_at_its_key() {
    let config = ok(
        "[server]\nsocket = \"/nonexistent-kahi-dir/kahi.sock\"\n[programs.a]\ncommand = \"/bin/true\"\n",
    );
    let notes: Vec<&check::Note> =
        config.notes.iter().filter(|n| n.error.key == "server.socket").collect();
    assert_eq!(notes.len(), 1, "{:?}", config.notes);
    assert_eq!((notes[0].severity, notes[0].error.line), (check::Severity::Warning, 2));
    assert!(
        notes[0].error.message.starts_with("/nonexistent-kahi-dir is not a directory"),
        "{:?}",
        notes[0]
    );
}

#[test]
fn open_files_cannot_be_unlimited() {
    let e = one_error(
        "[programs.a]\ncommand = \"/bin/true\"\n[programs.a.limits]\nnofile = \"unlimited\"\n",
    );
    assert_eq!((e.line, e.key.as_str()), (4, "programs.a.limits.nofile"));
    assert!(
        e.message
            .starts_with("open files cannot be unlimited: the kernel allows at most fs.nr_open ("),
        "{e}"
    );
    let config =
        ok("[programs.a]\ncommand = \"/bin/true\"\n[programs.a.limits]\ncore = \"unlimited\"\n");
    assert_eq!(config.processes[0].limits, [(Limit::Core, None)]);
}

#[test]
fn a_condition_its_dependency_can_never_meet_is_refused_at_its_place() {
    let with = |db: &str, condition: &str| {
        format!(
            "[programs.db]\ncommand = \"/bin/true\"\n{db}\n[programs.web]\ncommand = \"/bin/true\"\n\
             depends_on = [{{ name = \"db\", condition = \"{condition}\" }}]\n"
        )
    };
    let e = one_error(&with("", "completed"));
    assert_eq!(e.key, "programs.web.depends_on.0", "{e}");
    assert_eq!(
        e.message,
        "condition \"completed\" needs \"db\" to be type = \"oneshot\", whose exit is its success; use \"started\""
    );
    let e = one_error(&with("", "healthy"));
    assert!(e.message.starts_with("condition \"healthy\" needs \"db\" to have a"), "{e}");
    ok(&with("type = \"oneshot\"", "completed"));
    ok(&with("type = \"notify\"", "healthy"));
}

#[test]
fn unknown_condition_says_what_is_expected() {
    let text = "[programs.db]\ncommand = \"x\"\n[programs.web]\ncommand = \"x\"\n\
                depends_on = [{ name = \"db\", condition = \"ready\" }]\n";
    let e = one_error(text);
    assert_eq!((e.line, e.column, e.key.as_str()), (5, 42, "programs.web.depends_on.0.condition"));
    assert_eq!(e.message, "expected \"started\", \"healthy\" or \"completed\", found \"ready\"");
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
fn the_http_listener_takes_unix_sockets_beside_tcp_addresses() {
    let c = ok("[server.http]\nlisten = [\"127.0.0.1:9876\", \"unix:///run/kahi-http.sock\"]\n\
                socket_mode = \"0660\"\nsocket_owner = \"0:0\"\npeer_credentials = false\n");
    let h = &c.server.http;
    let shown: Vec<String> = h.listen.iter().map(Listen::http).collect();
    assert_eq!(shown, ["127.0.0.1:9876", "unix:///run/kahi-http.sock"]);
    assert_eq!((h.socket_mode, h.socket_owner, h.peer_credentials), (0o660, Some((0, 0)), false));
    let h = ok("[server.http]\nlisten = \"unix:///run/k.sock\"\n").server.http;
    assert_eq!((h.socket_mode, h.socket_owner, h.peer_credentials), (0o700, None, true));
    // A Unix socket is local: no users needed.
    assert_eq!(h.listen, [Listen::Unix(PathBuf::from("/run/k.sock"))]);
    for (bad, says) in [
        ("listen = \"unix://run/k.sock\"", "absolute path"),
        ("listen = [\"unix:///k.sock\", \"unix:///k.sock\"]", "listed twice"),
        ("listen = \"nowhere\"", "unix:///run/kahi-http.sock"),
        ("socket_owner = \"no-such-user-here\"", "no such user"),
    ] {
        let e = one_error(&format!("[server.http]\n{bad}\n"));
        assert_eq!(e.line, 2, "{e}");
        assert!(e.key.starts_with("server.http.") && e.message.contains(says), "{bad}: {e}");
    }
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
