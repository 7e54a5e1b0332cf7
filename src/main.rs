//! Kahi: a process supervisor and container init. One binary: `kahi daemon`, `kahi ctl`,
//! `kahi run`, `kahi version`, ... This file only dispatches and turns the result into an exit code.
//!
//! `main` is the C library's: Rust's runtime start-up is skipped, and what Kahi needs of it
//! is done here (src/sys/start.rs says what and why).
// Under `cargo test` the test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

use std::ffi::{c_char, c_int};

use kahi::cli::{self, Command};
use kahi::run;

/// The static binary's allocator: musl's for a command, mimalloc for a daemon
/// (src/sys/allocator.rs).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: run::Allocator = run::Allocator;

#[cfg_attr(not(test), unsafe(no_mangle))]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    #[cfg(target_env = "musl")]
    // SAFETY: argv[1], where argc says there is one, is a C string; nothing has allocated
    // yet, and no other thread exists.
    unsafe {
        let command = (argc > 1).then(|| std::ffi::CStr::from_ptr(*argv.add(1)).to_bytes());
        if matches!(command, Some(b"daemon" | b"run")) {
            run::long_lived();
        }
    }
    run::open_standard_fds();
    // SAFETY: argc and argv as the C library passes them to main.
    let cli = cli::parse(unsafe { run::args(argc, argv) });
    match cli.cmd {
        // They must never die of a write to a pipe or socket whose reader has gone.
        Command::Daemon(_) | Command::Run(_) => run::ignore_sigpipe(),
        // Its command gets SIGPIPE at its default (`exec` sets it).
        Command::Exec(_) => {}
        // A client's output is for a terminal or a pipe: `kahi ctl status | head -1` must end
        // as `cat` would when `head` goes, not with an error or a "Broken pipe" message.
        _ => run::default_sigpipe(),
    }
    let code = match cli.cmd {
        Command::Daemon(args) => run::daemon(args),
        Command::Ctl(args) => run::ctl(args),
        Command::Exec(args) => run::exec(args.command),
        Command::HashPassword(args) => run::hash_password(args.cost),
        Command::Migrate(args) => run::migrate(args),
        Command::Run(args) => run::procfile(args),
        Command::Init(args) => run::init(args),
        Command::Completion(args) => run::completion(args),
        Command::Version(_) => {
            println!("kahi {}", kahi::VERSION);
            0
        }
    };
    // Flushes what Rust's stdout holds, which returning to the C library would not.
    std::process::exit(code);
}
