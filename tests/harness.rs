//! The harness's own checks can fail: a test that leaves a process behind fails, naming it,
//! and the process is killed; a test that skips itself says so on the runner's output.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Stdio;

use crate::util::*;

/// What a panic carried, as text.
fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The pid of `sleep 1000` among the test's processes.
fn sleep_of(dir: &Dir) -> i32 {
    let mut pid = 0;
    wait_until("the program's sleep runs", DEADLINE, || {
        let found = dir.processes().into_iter().find(|p| p.cmdline == "sleep 1000");
        pid = found.map(|p| p.pid).unwrap_or(0);
        pid > 0
    });
    pid
}

/// Issue 12: the test suite left `sleep` grandchildren behind, and nothing noticed. A shell
/// that runs `sleep` without `exec` and without stopasgroup: the stop signal reaches the shell
/// only, its sleep survives the daemon, and dropping the test's guard must fail the test.
#[test]
fn issue_12_a_test_that_leaves_a_grandchild_behind_fails_and_the_grandchild_is_killed() {
    let d = Daemon::start(
        "leak-twin",
        "[programs.leaky]\ncommand = \"/bin/sh -c 'echo up; sleep 1000'\"\nstartsecs = 0\n",
    );
    d.wait_state("leaky", "RUNNING");
    let sleep = sleep_of(&d.dir);
    let path = d.dir.path.clone();
    let err = catch_unwind(AssertUnwindSafe(move || drop(d)))
        .expect_err("the leak check did not notice the sleep left behind");
    let msg = panic_text(err);
    assert!(msg.contains("left 1 process(es) behind"), "{msg}");
    assert!(msg.contains(&format!("{sleep} sleep 1000")), "{msg}");
    wait_until("the leftover sleep is killed", DEADLINE, || !alive(sleep));
    assert!(!path.exists(), "the test's directory is removed although the test failed");
}

/// The same program with stopasgroup = true leaves nothing behind: the check passes.
#[test]
fn issue_12_a_test_that_ends_its_grandchildren_passes_the_leak_check() {
    let d = Daemon::start(
        "leak-twin-clean",
        "[programs.tidy]\ncommand = \"/bin/sh -c 'echo up; sleep 1000'\"\nstartsecs = 0\n\
         stopasgroup = true\n",
    );
    d.wait_state("tidy", "RUNNING");
    let sleep = sleep_of(&d.dir);
    drop(d);
    assert!(!alive(sleep));
}

/// A process started outside any daemon, through the test's `Dir`, is found as well.
#[test]
fn issue_12_a_leftover_started_directly_by_the_test_is_found() {
    let dir = Dir::new("leak-direct");
    let mut child = dir
        .command("/bin/sh")
        .args(["-c", "sleep 1000 >/dev/null 2>&1 & echo $!"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    child.wait().unwrap();
    let sleep: i32 = out.trim().parse().unwrap();
    let err = catch_unwind(AssertUnwindSafe(move || drop(dir))).expect_err("not noticed");
    assert!(panic_text(err).contains(&format!("{sleep} sleep 1000")));
    wait_until("the leftover sleep is killed", DEADLINE, || !alive(sleep));
}

/// Issue 12: the scratch tests said `ok` where they could not run, and their reason, printed
/// with `println!`, was swallowed by the runner. Run one in a fresh runner without
/// KAHI_STATIC: the runner's output says `skipped:` and why; with KAHI_TEST_NO_SKIP it fails.
#[test]
fn issue_12_a_test_that_cannot_run_says_skipped_on_the_runners_output() {
    let test = "scratch::the_static_binary_is_static_and_small";
    let runner = |strict: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", test]).env_remove("KAHI_STATIC").env_remove("KAHI_TEST_NO_SKIP");
        if strict {
            cmd.env("KAHI_TEST_NO_SKIP", "1");
        }
        run(&mut cmd)
    };
    let out = runner(false);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("1 passed"), "{out:?}");
    let said = format!("skipped: {test}: KAHI_STATIC is not set");
    assert!(out.stderr.contains(&said), "the runner's output does not say {said:?}: {out:?}");

    let out = runner(true);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("KAHI_TEST_NO_SKIP is set"), "{out:?}");
}
