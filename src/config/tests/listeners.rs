//! `[eventlisteners.NAME]`: a program with `events` and `buffer_size`.

use super::*;
use crate::events::EventType;

#[test]
fn a_listener_is_a_program_with_events() {
    let config = ok(r#"
[eventlisteners.mon]
command = "/bin/mon"
events = ["PROCESS_STATE", "TICK_60", "PROCESS_STATE"]
numprocs = 2
process_name = "%(program_name)s_%(process_num)d"
autorestart = true
priority = 5
"#);
    assert_eq!(names(&config), ["mon:mon_0", "mon:mon_1"]);
    let p = process(&config, "mon_1");
    let l = p.listener.as_ref().expect("a listener");
    assert_eq!(l.events, [EventType::ProcessState, EventType::Tick60], "each type once");
    assert_eq!(l.buffer_size, 10, "supervisord's default");
    // The ordinary program keys, and the stdin pipe the protocol needs.
    assert_eq!((p.priority, p.autorestart, p.stdin_pipe), (5, AutoRestart::Always, true));
    assert_eq!(p.group, "mon");
    // buffer_size.
    let config = ok("[eventlisteners.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\nbuffer_size = 3\n");
    assert_eq!(process(&config, "m").listener.as_ref().unwrap().buffer_size, 3);
    // A program is not a listener.
    assert_eq!(process(&ok("[programs.web]\ncommand = \"x\"\n"), "web").listener, None);
}

#[test]
fn events_are_checked_against_the_types() {
    let e = one_error("[eventlisteners.m]\ncommand = \"x\"\nevents = [\"PROCESS_STATE_EXITT\"]\n");
    assert_eq!(e.key, "eventlisteners.m.events");
    assert_eq!(
        e.message,
        "unknown event type \"PROCESS_STATE_EXITT\"; did you mean \"PROCESS_STATE_EXITED\"?"
    );
    assert_eq!((e.line, e.column), (3, 10));
    let e = one_error("[eventlisteners.m]\ncommand = \"x\"\n");
    assert_eq!(e.key, "eventlisteners.m");
    assert!(e.message.starts_with("missing required key \"events\""), "{e}");
    let e = one_error("[eventlisteners.m]\ncommand = \"x\"\nevents = []\n");
    assert_eq!(e.message, "must name at least one event type");
    let e =
        one_error("[eventlisteners.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\nbuffer_size = 0\n");
    assert_eq!(e.key, "eventlisteners.m.buffer_size");
    // Its negative twin: the keys of a listener are unknown to a program.
    let e = one_error("[programs.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\n");
    assert_eq!((e.key.as_str(), e.message.as_str()), ("programs.m.events", "unknown key"));
}

#[test]
fn what_carries_the_protocol_is_not_the_listeners_to_set() {
    for key in [
        "stdin_pipe = true",
        "stdout_logfile = \"AUTO\"",
        "type = \"notify\"",
        "redirect_stderr = true",
    ] {
        let e = one_error(&format!(
            "[eventlisteners.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\n{key}\n"
        ));
        assert_eq!(e.line, 4, "{key}: {e}");
        assert!(e.message.contains("event listener"), "{key}: {e}");
    }
    // stderr is the listener's own to log.
    let dir = TempDir::new();
    let config = ok_file(&dir.write(
        "kahi.toml",
        "[eventlisteners.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\nstderr_logfile = \"AUTO\"\nredirect_stderr = false\n",
    ));
    assert!(process(&config, "m").stderr_log.is_some());
}

#[test]
fn listeners_and_programs_share_one_namespace_and_groups_hold_programs() {
    let errors = errors(
        "[programs.m]\ncommand = \"x\"\n[eventlisteners.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\n",
    );
    let shared = |e: &ConfigError| {
        e.key == "programs.m" && e.message.starts_with("the name is also [eventlisteners.m], at ")
    };
    assert!(errors.iter().any(shared), "{}", render(&errors));
    let e = one_error(
        "[eventlisteners.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\n[groups.g]\nprograms = [\"m\"]\n",
    );
    assert!(e.message.contains("is an event listener"), "{e}");
}

/// supervisord's result_handler is a Python dotted path: its default is the only one Kahi
/// has, so a configuration that names it loads, and any other is refused with what to do.
#[test]
fn result_handler_is_supervisords_default_or_refused() {
    let base = "[eventlisteners.m]\ncommand = \"x\"\nevents = [\"EVENT\"]\n";
    ok(&format!("{base}result_handler = \"supervisor.dispatchers:default_handler\"\n"));
    let e = one_error(&format!("{base}result_handler = \"mypkg.handlers:alert\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("eventlisteners.m.result_handler", 4));
    assert!(
        e.message.starts_with(
            "only supervisord's default, \"supervisor.dispatchers:default_handler\", is available"
        ) && e.message.contains("act on the event in the listener"),
        "{e}"
    );
    let e = one_error(&format!("{base}result_handler = 1\n"));
    assert_eq!(e.key, "eventlisteners.m.result_handler");
}
