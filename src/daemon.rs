//! `kahi daemon`: the start-up checklist, in order, then the event loop.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::DaemonArgs;
use crate::config::check::Severity;
use crate::event_loop::EventLoop;
use crate::supervisor::Supervisor;
use crate::sys::detach::{self, Pidfile};
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
    prepare(args.verbose);

    // Read the configuration; nothing starts when it is bad.
    let path = config_path(args.config.clone());
    let format = match crate::supervisord::cli::format(&args.format) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kahi: {e}");
            return exit::CONFIG;
        }
    };
    let config = match crate::config::load_as(&path, format) {
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
        // What the daemon would only warn about: a command that does not resolve fails here.
        for note in &config.notes {
            eprintln!("{note}");
        }
        let errors = config.notes.iter().filter(|n| n.severity == Severity::Error).count();
        if errors > 0 {
            eprintln!("kahi: fatal: {errors} error(s) in the configuration; nothing was started");
            return exit::CONFIG;
        }
        let n = config.processes.len();
        if args.json {
            println!("{}", crate::supervisord::cli::table(&config));
            return exit::OK;
        }
        println!("{}: ok ({n} process{})", config.file.display(), if n == 1 { "" } else { "es" });
        return exit::OK;
    }
    serve(config, args)
}

/// What comes before the configuration is read: whatever fds Kahi was started with must not
/// reach its programs, nor any signal it was started with ignored; then the daemon's own log,
/// since loading the configuration may warn.
pub fn prepare(verbose: u8) {
    close_inherited_fds_on_exec();
    signals::default_ignored_signals();
    detach::take_notify_socket();
    init_logging();
    set_level(log::LevelFilter::Info, verbose);
}

/// Runs `config` (loaded after [`prepare`]) until shutdown; returns the exit status.
pub fn serve(config: crate::config::Config, args: DaemonArgs) -> i32 {
    // A missing command fails when its program is started, not the daemon: the others run.
    for note in &config.notes {
        log::warn!("{}", note.error);
    }

    // The daemon's own log, at the configured level.
    set_level(config.logging.level, args.verbose);
    JSON_LOG.store(
        config.logging.format == crate::logs::console::Format::Json,
        std::sync::atomic::Ordering::Relaxed,
    );

    // Open files: as many as Kahi may have, and at least minfds.
    match crate::sys::nofile::raise(config.server.minfds) {
        Ok(limit) => {
            let need = crate::sys::nofile::needed(config.processes.iter());
            if need > limit && !config.processes.is_empty() {
                log::warn!(
                    "the {} processes need about {need} open files, more than the limit of {limit}: \
                     starts will fail with EMFILE; raise the hard limit (ulimit -Hn, LimitNOFILE=) \
                     or give programs redirect_stderr = true",
                    config.processes.len()
                );
            }
        }
        Err(e) => {
            log::error!("{e}");
            return exit::FAILURE;
        }
    }

    // A running Kahi's pidfile refuses the start; then detach, before any thread exists.
    let pidfile = match args.pidfile.as_deref().map(Pidfile::claim).transpose() {
        Ok(p) => p,
        Err(e) => {
            log::error!("{e}");
            return exit::FAILURE;
        }
    };
    if args.logfile.is_some() && !args.daemonize {
        log::warn!("--logfile applies with --daemonize only; ignored");
    }
    let mut detached = None;
    if args.daemonize {
        if let Some(p) = &args.logfile {
            // Named before the daemon leaves its directory; `supervisor.clearLog` empties it.
            let path = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            crate::logs::daemon_log::set_file(path);
        }
        match detach::daemonize(args.logfile) {
            Ok(d) => detached = Some(d),
            Err(code) => return code,
        }
    }
    // A start-up failure: logged, and told to the command that was run when detached.
    let fail = |detached: &mut Option<detach::Detached>, e: &str| {
        log::error!("{e}");
        if let Some(d) = detached {
            d.failed(e);
        }
        exit::FAILURE
    };
    if let Some(d) = &mut detached
        && let Err(e) = d.redirect()
    {
        return fail(&mut detached, &e);
    }

    // Orphans: as PID 1 the kernel hands them to us; otherwise ask for them.
    let pid1 = signals::is_pid1();
    if !pid1 {
        signals::become_subreaper();
    }

    // The control socket.
    let taken = match config.format {
        crate::config::Format::Procfile => "stop it, or give this one another with kahi run -s",
        _ => "stop it, or set [server] socket",
    };
    let listener = match crate::control::bind(
        &config.server.socket,
        config.server.socket_mode,
        config.server.socket_group,
        taken,
    ) {
        Ok(l) => l,
        Err(e) => return fail(&mut detached, &e),
    };
    let socket = config.server.socket.clone();

    // What a previous Kahi, killed, left running (no other Kahi answers on the socket: the
    // bind above made sure).
    crate::sys::leftovers::handle(
        &socket,
        config.server.kill_orphans,
        std::time::Duration::from_secs(5),
    );

    // Go on.
    let count = config.processes.len();
    let event_loop = match EventLoop::new(Supervisor::new(config), listener, pid1, args.daemonize) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return fail(&mut detached, &format!("unable to set up the event loop: {e}"));
        }
    };
    if let Some(p) = &pidfile
        && let Err(e) = p.write()
    {
        let _ = std::fs::remove_file(&socket);
        return fail(&mut detached, &e);
    }
    log::info!(
        "kahi {} started with pid {}{}, {count} processes, control socket {}",
        crate::VERSION,
        std::process::id(),
        if pid1 { " (as PID 1)" } else { "" },
        socket.display()
    );
    // Ready: `kahi ctl` is answered from here on.
    detach::notify_manager(&format!("READY=1\nMAINPID={}", std::process::id()));
    if let Some(d) = &mut detached {
        d.ready();
    }
    let code = event_loop.run();
    if let Some(p) = &pidfile {
        p.remove();
    }
    code
}

fn config_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("KAHI_CONFIG").filter(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/etc/kahi/kahi.toml"))
}

/// Kahi's own log as JSON lines (`[logging] format = "json"`).
static JSON_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `TIMESTAMP LEVEL message` lines on stderr, the timestamp RFC 3339 in UTC. RUST_LOG, when
/// set, decides what is logged; otherwise [`set_level`] does.
fn init_logging() {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(log::LevelFilter::Trace);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(|buf, record| {
        let ts = crate::timefmt::rfc3339_now();
        if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
            // The same fields as the programs' console lines, so one parser reads both.
            let line = serde_json::json!({
                "ts": ts,
                "program": "kahi",
                "process": "kahi",
                "stream": "log",
                "level": record.level().as_str(),
                "line": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        } else {
            writeln!(buf, "{ts} {:<5} {}", record.level(), record.args())
        }
    });
    builder.target(env_logger::Target::Pipe(Box::new(crate::logs::daemon_log::Tee)));
    let _ = builder.try_init();
}

/// The level from the configuration, raised by -v (debug) or -vv (trace).
fn set_level(level: log::LevelFilter, verbose: u8) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    let level = match verbose {
        0 => level,
        1 => level.max(log::LevelFilter::Debug),
        _ => log::LevelFilter::Trace,
    };
    log::set_max_level(level);
}

/// Marks every fd above stderr close-on-exec. Kahi opens its own fds with CLOEXEC, but the
/// ones it inherited (from a shell, a test runner, a container runtime) would otherwise leak
/// into every program it starts, as supervisord also takes care to avoid.
fn close_inherited_fds_on_exec() {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::BorrowedFd;
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect(),
        // No /proc (a bare scratch image): try every possible fd.
        Err(_) => {
            let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(1024, |(soft, _)| soft.min(65536));
            (3..max as i32).collect()
        }
    };
    for fd in fds {
        // SAFETY: the fd is only used for this fcntl call; one that is not open (the
        // directory fd read_dir used, or a gap) fails with EBADF, which is fine.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFD) {
            let _ = fcntl(
                fd,
                FcntlArg::F_SETFD(FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC),
            );
        }
    }
}
