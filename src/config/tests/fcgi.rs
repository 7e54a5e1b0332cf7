//! `[fcgi_programs.NAME]`: a program whose processes share one socket as stdin.

use super::*;

#[test]
fn a_fastcgi_program_is_a_program_with_a_socket() {
    let config = ok(r#"
[fcgi_programs.php]
command = "/usr/bin/php-cgi"
socket = "tcp://localhost:9000"
numprocs = 3
process_name = "%(program_name)s_%(process_num)d"
autorestart = true
socket_backlog = 64
"#);
    assert_eq!(names(&config), ["php:php_0", "php:php_1", "php:php_2"]);
    let p = process(&config, "php_2");
    let s = p.fcgi.as_ref().expect("a FastCGI socket");
    // A host name is looked up at load.
    match &s.addr {
        Listen::Tcp(a) => assert!(a.ip().is_loopback() && a.port() == 9000, "{a}"),
        other => panic!("{other:?}"),
    }
    assert_eq!((s.owner, s.backlog), (None, Some(64)));
    // The ordinary program keys; the socket is stdin, so there is no stdin pipe.
    assert_eq!((p.autorestart, p.stdin_pipe, p.kind), (AutoRestart::Always, false, Kind::Simple));
    // Every process has the same socket.
    assert!(config.processes.iter().all(|q| q.fcgi == p.fcgi));
    // A program is no FastCGI program.
    assert_eq!(process(&ok("[programs.web]\ncommand = \"x\"\n"), "web").fcgi, None);
}

#[test]
fn a_unix_socket_has_supervisords_mode_and_the_keys_given() {
    let me = nix::unistd::geteuid().as_raw();
    let config = ok(&format!(
        "[fcgi_programs.php]\ncommand = \"x\"\nsocket = \"unix:///run/%(program_name)s.sock\"\n\
         [fcgi_programs.other]\ncommand = \"x\"\nsocket = \"unix:///run/o.sock\"\n\
         socket_mode = \"0660\"\nsocket_owner = \"{me}:5\"\n"
    ));
    let s = process(&config, "php").fcgi.clone().unwrap();
    assert_eq!((s.addr, s.mode, s.owner), (Listen::Unix("/run/php.sock".into()), 0o700, None));
    let s = process(&config, "other").fcgi.clone().unwrap();
    assert_eq!((s.mode, s.owner), (0o660, Some((me, Some(5)))));
    let config = ok(&format!(
        "[fcgi_programs.p]\ncommand = \"x\"\nsocket = \"unix:///run/p.sock\"\nsocket_owner = \"{me}\"\n"
    ));
    assert_eq!(process(&config, "p").fcgi.as_ref().unwrap().owner, Some((me, None)));
}

#[test]
fn socket_errors_name_file_line_and_key() {
    for (value, line, says) in [
        ("socket = \"udp://127.0.0.1:53\"", 3, "expected tcp://HOST:PORT or unix:///PATH"),
        ("socket = \"unix://run/php.sock\"", 3, "expected an absolute path"),
        ("socket = \"tcp://127.0.0.1\"", 3, "not a HOST:PORT address"),
        ("socket = \"tcp://no-such-host.invalid:9000\"", 3, "no-such-host.invalid"),
        ("socket = \"unix:///run/%(process_num)d.sock\"", 3, "process_num"),
        ("socket = 9000", 3, "expected a string"),
        (&format!("socket = \"unix:///{}\"", "x".repeat(107)), 3, "107 bytes at most"),
    ] {
        let e = one_error(&format!("[fcgi_programs.php]\ncommand = \"x\"\n{value}\n"));
        assert_eq!((e.line, e.key.as_str()), (line, "fcgi_programs.php.socket"), "{e}");
        assert!(e.message.contains(says), "{value}: {e}");
        assert!(e.to_string().contains(&format!("kahi.toml:{line}:")), "{e}");
    }
    let e = one_error("[fcgi_programs.php]\ncommand = \"x\"\n");
    assert_eq!((e.line, e.key.as_str()), (1, "fcgi_programs.php"), "{e}");
    assert!(e.message.starts_with("missing required key \"socket\""), "{e}");
}

#[test]
fn socket_mode_owner_and_backlog_errors_name_their_key() {
    let unix = "[fcgi_programs.php]\ncommand = \"x\"\nsocket = \"unix:///run/php.sock\"\n";
    for (value, says) in [
        ("socket_mode = \"0968\"", "expected an octal mode"),
        ("socket_mode = 660", "660 is decimal; write a mode in octal"),
        ("socket_mode = \"rw-rw----\"", "expected an octal mode"),
        ("socket_owner = \"no-such-user-kahi\"", "no such user"),
        ("socket_owner = \"0:no-such-group-kahi\"", "no such group"),
        ("socket_backlog = 0", "expected an integer from 1 to 65535"),
        ("socket_backlog = 70000", "expected an integer from 1 to 65535"),
    ] {
        let e = one_error(&format!("{unix}{value}\n"));
        let key = value.split(' ').next().unwrap();
        assert_eq!((e.line, e.key.clone()), (4, format!("fcgi_programs.php.{key}")), "{e}");
        assert!(e.message.contains(says), "{value}: {e}");
    }
    // Owner and mode are a Unix socket's, as in supervisord.
    let tcp = "[fcgi_programs.php]\ncommand = \"x\"\nsocket = \"tcp://127.0.0.1:9000\"\n";
    for key in ["socket_mode = \"0600\"", "socket_owner = \"0\""] {
        let e = one_error(&format!("{tcp}{key}\n"));
        assert_eq!(e.line, 4, "{e}");
        assert_eq!(e.message, "applies to a Unix socket (unix:///PATH) only");
    }
    // Its negative twin: the socket keys are unknown to a program.
    let e = one_error("[programs.php]\ncommand = \"x\"\nsocket = \"tcp://127.0.0.1:9000\"\n");
    assert_eq!((e.key.as_str(), e.message.as_str()), ("programs.php.socket", "unknown key"));
}

#[test]
fn what_the_socket_takes_is_not_the_programs_to_set() {
    for key in [
        "stdin_pipe = true",
        "type = \"notify\"",
        "listen = [\"tcp://127.0.0.1:1\"]",
        "accept = true",
        "max_instances = 2",
    ] {
        let errors = errors(&format!(
            "[fcgi_programs.php]\ncommand = \"x\"\nsocket = \"tcp://127.0.0.1:9000\"\n{key}\n"
        ));
        assert!(
            errors.iter().any(
                |e| e.line == 4 && e.message.starts_with("does not apply to a FastCGI program")
            ),
            "{key}: {}",
            render(&errors)
        );
    }
}

#[test]
fn fastcgi_programs_share_the_programs_namespace_and_groups() {
    let config = ok("[fcgi_programs.php]\ncommand = \"x\"\nsocket = \"tcp://127.0.0.1:9000\"\n\
                     [groups.web]\nprograms = [\"php\"]\n");
    assert_eq!(names(&config), ["web:php"]);
    let e = one_error(
        "[fcgi_programs.php]\ncommand = \"x\"\nsocket = \"tcp://127.0.0.1:9000\"\n\
                       [programs.php]\ncommand = \"y\"\n",
    );
    // Both named, each by its section: the fcgi table is read first (by name), not the first.
    assert_eq!(e.key, "programs.php", "{e}");
    assert_eq!(e.line, 4, "{e}");
    assert!(
        e.message.starts_with("the name is also [fcgi_programs.php], at ")
            && e.message.ends_with(
                ":1:1: programs, event listeners and FastCGI programs share one set of names"
            ),
        "{e}"
    );
}

#[test]
fn two_fastcgi_programs_cannot_share_a_socket() {
    let e = one_error(
        "[fcgi_programs.a]\ncommand = \"x\"\nsocket = \"tcp://127.0.0.1:9000\"\n\
         [fcgi_programs.b]\ncommand = \"x\"\nsocket = \"tcp://127.0.0.1:9000\"\n",
    );
    assert!(e.message.contains("\"a\" and \"b\" both have the socket tcp://127.0.0.1:9000"), "{e}");
}
