//! `kahi daemon`: the start-up checklist, in order, then the event loop.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::DaemonArgs;
use crate::event_loop::EventLoop;
use crate::supervisor::Supervisor;
use crate::sys::signals;

/// Exit codes of `kahi daemon`.
pub mod exit {
    /// Every program stopped with its stop signal.
    pub const OK: i32 = 0;
    /// A program had to be killed with SIGKILL at shutdown, or start-up failed at run time.
    pub const FAILURE: i32 = 1;
    /// The configuration is invalid (every error is printed).
    pub const CONFIG: i32 = 2;
}

pub fn run(args: DaemonArgs) -> i32 {
    // Read the configuration; nothing starts when it is bad.
    let path = config_path(args.config);
    let config = match crate::config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "kahi: fatal: {} error(s) in the configuration; nothing was started",
                errors.len()
            );
            return exit::CONFIG;
        }
    };
    if args.check {
        println!("{}: ok ({} processes)", config.file.display(), config.processes.len());
        return exit::OK;
    }

    // The daemon's own log.
    init_logging(config.logging.level, args.verbose);

    // Orphans: as PID 1 the kernel hands them to us; otherwise ask for them.
    let pid1 = signals::is_pid1();
    if !pid1 {
        signals::become_subreaper();
    }

    // The control socket.
    let listener = match crate::control::bind(&config.server.socket, config.server.socket_mode) {
        Ok(l) => l,
        Err(e) => {
            log::error!("{e}");
            return exit::FAILURE;
        }
    };
    let socket = config.server.socket.clone();

    // Go on.
    let count = config.processes.len();
    let event_loop = match EventLoop::new(Supervisor::new(config), listener, pid1) {
        Ok(l) => l,
        Err(e) => {
            log::error!("unable to set up the event loop: {e}");
            let _ = std::fs::remove_file(&socket);
            return exit::FAILURE;
        }
    };
    log::info!(
        "kahi {} started with pid {}{}, {count} processes, control socket {}",
        crate::VERSION,
        std::process::id(),
        if pid1 { " (as PID 1)" } else { "" },
        socket.display()
    );
    event_loop.run()
}

fn config_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("KAHI_CONFIG").filter(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/etc/kahi/kahi.toml"))
}

/// `LEVEL message` lines on stderr, with an RFC 3339 UTC timestamp.
fn init_logging(level: log::LevelFilter, verbose: u8) {
    let level = match verbose {
        0 => level,
        1 => level.max(log::LevelFilter::Debug),
        _ => log::LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(|buf, record| {
        writeln!(buf, "{} {:<5} {}", crate::timefmt::rfc3339_now(), record.level(), record.args())
    });
    builder.target(env_logger::Target::Stderr);
    let _ = builder.try_init();
}
