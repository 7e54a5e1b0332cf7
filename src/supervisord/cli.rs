//! `kahi migrate` (of a Procfile: `crate::procfile`), `kahi daemon --format`, and the process
//! table of `kahi daemon --check --json`.

use std::io::Write;

use crate::cli::MigrateArgs;
use crate::config::{Config, Format};

/// `--format`: auto, toml or supervisord.
pub fn format(s: &str) -> Result<Format, String> {
    match s {
        "auto" => Ok(Format::Auto),
        "toml" => Ok(Format::Toml),
        "supervisord" => Ok(Format::Supervisord),
        other => Err(format!("--format must be auto, toml or supervisord, not {other:?}")),
    }
}

/// The resolved process table as JSON: one object per process, in start order.
pub fn table(config: &Config) -> String {
    let rows: Vec<serde_json::Value> = config
        .processes
        .iter()
        .map(|p| {
            serde_json::json!({
                "group": p.group,
                "name": p.name,
                "command": p.argv,
                "user": p.user.as_ref().map(|u| u.name.clone()),
                "priority": p.priority,
                "autostart": p.autostart,
            })
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// `kahi migrate FILE [-o OUT] [--check]`: 0 written (or nothing to report with --check), 1
/// something could not be mapped (--check), 2 the file is refused.
pub fn migrate(args: MigrateArgs) -> i32 {
    match args.from.as_str() {
        "supervisord" => {}
        "procfile" => return crate::procfile::run::migrate(args),
        other => {
            eprintln!("kahi: --from must be supervisord or procfile, not {other:?}");
            return 2;
        }
    }
    if args.formation.is_some() || !args.env.is_empty() || args.port.is_some() {
        eprintln!("kahi: -m, -e and -p apply with --from procfile only");
        return 2;
    }
    let file = std::path::absolute(&args.file).unwrap_or_else(|_| args.file.clone());
    let text = match crate::config::read::text(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kahi: unable to read {}: {e}", file.display());
            return 2;
        }
    };
    let refused = |errors: &[crate::config::ConfigError]| {
        for e in errors {
            eprintln!("{e}");
        }
        eprintln!("kahi: {} error(s): nothing was written", errors.len());
        2
    };
    let mut m = match super::convert(&file, &text, &super::process_env(), false) {
        Ok(m) => m,
        Err(errors) => return refused(&errors),
    };
    // What the daemon would refuse, refused here: the TOML is loaded as the daemon loads it;
    // but for users and directories, which are this host's and may be another's there.
    let env = |name: &str| std::env::var(name).ok();
    if let Err(errors) = crate::config::load_text(&file, &m.toml, &env) {
        let (here, placed): (Vec<_>, Vec<_>) =
            errors.into_iter().map(|e| m.place(e)).partition(of_this_host);
        if !placed.is_empty() {
            return refused(&placed);
        }
        for mut error in here {
            error.message = format!(
                "on this host, {}: written as it is (kahi daemon refuses it on a host without it)",
                error.message
            );
            m.notes.push(super::Note::warning(error));
        }
    }
    for note in &m.notes {
        eprintln!("{note}");
    }
    let unmapped = m.notes.iter().filter(|n| n.unmapped).count();
    if args.check {
        if unmapped > 0 {
            eprintln!("kahi: {unmapped} setting(s) could not be mapped");
            return 1;
        }
        return 0;
    }
    let mut toml = m.toml.clone();
    if !m.notes.is_empty() {
        toml.push_str("\n# What kahi migrate noted:\n");
        for note in &m.notes {
            toml.push_str(&format!("# {}\n", note.to_string().replace('\n', " ")));
        }
    }
    write(args.output.as_deref(), &toml)
}

/// Whether Kahi's loader refused what it found on this host: a user, or the directory of a log
/// file or socket. (The values were written by the migration, of the right types, so an error
/// on these keys is one of those checks.)
fn of_this_host(e: &crate::config::ConfigError) -> bool {
    const KEYS: &[&str] = &[
        "user",
        "stdout_logfile",
        "stderr_logfile",
        "childlogdir",
        "socket_owner",
        "socket_group",
    ];
    KEYS.contains(&e.key.rsplit('.').next().unwrap_or(""))
}

/// Writes `toml` to `output`, or stdout: 0, or 2 with the error told.
pub fn write(output: Option<&std::path::Path>, toml: &str) -> i32 {
    let written = match output {
        Some(path) => std::fs::write(path, toml)
            .map_err(|e| format!("unable to write {}: {e}", path.display())),
        None => std::io::stdout()
            .lock()
            .write_all(toml.as_bytes())
            .map_err(|e| format!("unable to write: {e}")),
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kahi: {e}");
            2
        }
    }
}
