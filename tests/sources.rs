//! Where a configuration comes from: a reload reads the file as the start did (`--format`).

use crate::util::*;

const SIGHUP: i32 = 1;

/// The names `kahi ctl status` lists.
fn names(d: &Daemon) -> Vec<String> {
    d.status().iter().filter_map(|p| p["name"].as_str().map(String::from)).collect()
}

#[test]
fn a_reload_reads_the_file_in_the_format_the_start_was_told() {
    // TOML whose text has a line that looks like supervisord's: told by its content alone,
    // it would be read as a supervisord.conf.
    let dir = Dir::new("format-reload");
    let socket = dir.join("kahi.sock");
    let text = |more: &str| {
        format!(
            "[server]\nsocket = \"{}\"\n\n[programs.a]\ncommand = \"sleep 1000\"\n\n\
             [programs.a.environment]\nNOTE = \"\"\"\n[supervisord]\n\"\"\"\n{more}",
            socket.display()
        )
    };
    let config = dir.write("kahi.toml", &text(""));
    let mut cmd = dir.command(KAHI);
    cmd.arg("daemon").arg("--format").arg("toml").arg("-c").arg(&config).arg("-v");
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    let d = Daemon::spawn(dir, config.clone(), socket.clone(), cmd);
    d.wait_state("a", "RUNNING");

    std::fs::write(&config, text("\n[programs.b]\ncommand = \"sleep 1000\"\n")).unwrap();
    d.signal(SIGHUP);
    wait_until("b is added by the reload", DEADLINE, || names(&d).contains(&"b".to_string()));
    d.wait_state("b", "RUNNING");
    assert!(!d.log().contains("supervisord"), "read as TOML again:\n{}", d.log());
}
