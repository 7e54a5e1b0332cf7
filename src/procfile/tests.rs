use super::*;

/// A directory of its own with these files, removed when dropped.
struct Files(PathBuf);

impl Files {
    fn new(name: &str, files: &[(&str, &str)]) -> Files {
        let dir = std::env::temp_dir().join(format!("kahi-procfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in files {
            std::fs::write(dir.join(f), text).unwrap();
        }
        Files(dir)
    }

    fn procfile(&self) -> PathBuf {
        self.0.join("Procfile")
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PROCFILE: &str = "web: serve --port $PORT\nworker: work 100%\nclock: tick\n";

fn ports(stack: &Stack) -> Vec<(&str, u32)> {
    stack.processes.iter().map(|p| (p.name.as_str(), p.port)).collect()
}

#[test]
fn ports_as_foreman_gives_them() {
    let f = Files::new("ports", &[("Procfile", PROCFILE)]);
    let stack = Stack::read(&f.procfile(), &Options::default(), None).unwrap();
    assert_eq!(ports(&stack), [("web.1", 5000), ("worker.1", 5100), ("clock.1", 5200)]);
    let options = Options { formation: Some("web=2,clock=3".into()), ..Default::default() };
    let stack = Stack::read(&f.procfile(), &options, Some("7000")).unwrap();
    assert_eq!(
        ports(&stack),
        [("web.1", 7000), ("web.2", 7001), ("clock.1", 7200), ("clock.2", 7201), ("clock.3", 7202)]
    );
    let options =
        Options { port: Some(9000), formation: Some("all=2,web=0".into()), ..Default::default() };
    let stack = Stack::read(&f.procfile(), &options, Some("7000")).unwrap();
    assert_eq!(
        ports(&stack),
        [("worker.1", 9100), ("worker.2", 9101), ("clock.1", 9200), ("clock.2", 9201)]
    );
    assert_eq!(stack.root, f.0);
}

#[test]
fn the_env_file_gives_variables_and_the_base_port() {
    let f = Files::new(
        "env",
        &[("Procfile", PROCFILE), (".env", "PORT=6000\nA='x'\n"), ("other.env", "A=y\nB=2\n")],
    );
    let stack = Stack::read(&f.procfile(), &Options::default(), Some("7000")).unwrap();
    assert_eq!(stack.base_port, 6000);
    assert_eq!(stack.env, [("PORT".to_string(), "6000".to_string()), ("A".into(), "x".into())]);
    // Files given replace the default; a later one wins.
    let options =
        Options { env_files: vec![f.0.join(".env"), f.0.join("other.env")], ..Default::default() };
    let stack = Stack::read(&f.procfile(), &options, None).unwrap();
    let a: Vec<&str> =
        stack.env.iter().filter(|(k, _)| k == "A").map(|(_, v)| v.as_str()).collect();
    assert_eq!(a, ["y"]);
    let options = Options { env_files: vec![f.0.join("missing.env")], ..Default::default() };
    let errors = Stack::read(&f.procfile(), &options, None).unwrap_err();
    assert!(errors[0].to_string().contains("missing.env"), "{}", errors[0]);
}

#[test]
fn what_is_refused() {
    let f = Files::new("refused", &[("Procfile", PROCFILE)]);
    let read = |formation: Option<&str>, port: Option<u32>, env_port: Option<&str>| {
        let options =
            Options { formation: formation.map(String::from), port, ..Default::default() };
        Stack::read(&f.procfile(), &options, env_port).unwrap_err()[0].to_string()
    };
    assert!(read(Some("web=1,wbe=2"), None, None).contains("\"wbe\""));
    assert!(read(Some("all=0"), None, None).contains("runs no process"));
    assert!(read(None, Some(65400), None).contains("up to 65600"));
    assert!(read(None, None, Some("http")).contains("not a port number"));
    let missing = Stack::read(&f.0.join("Nope"), &Options::default(), None).unwrap_err();
    assert!(missing[0].to_string().contains("Nope"), "{}", missing[0]);
}

#[test]
fn the_toml_loads_with_each_process_as_foreman_runs_it() {
    let f = Files::new("toml", &[("Procfile", PROCFILE), (".env", "A=$HOME %(x)s\nPS=no\n")]);
    let options = Options { formation: Some("web=2,worker=1".into()), ..Default::default() };
    let stack = Stack::read(&f.procfile(), &options, None).unwrap();
    let env = |_: &str| Some("expanded".to_string());
    for run in [None, Some(Path::new("/run/x.sock"))] {
        let out = stack.toml(run);
        let config = crate::config::load_text(&stack.procfile, &out.text, &env)
            .unwrap_or_else(|e| panic!("{e:?}\n{}", out.text));
        let names: Vec<String> = config.processes.iter().map(|p| p.namespec()).collect();
        assert_eq!(names, ["web:web.1", "web:web.2", "worker:worker.1"]);
        let worker = &config.processes[2];
        assert_eq!(worker.argv, ["/bin/sh", "-c", "work 100%"]);
        assert_eq!(worker.directory.as_deref(), Some(f.0.as_path()));
        let web2 = &config.processes[1];
        let env: Vec<(&str, &str)> =
            web2.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, [("A", "$HOME %(x)s"), ("PORT", "5001"), ("PS", "web.2")]);
        assert!(web2.stopasgroup && web2.redirect_stderr);
        assert_eq!(web2.critical, run.is_some());
        if let Some(socket) = run {
            assert_eq!(config.server.socket, socket);
        }
    }
}
