//! Included files: which are read, in what order, and what they may hold.

use super::*;

#[test]
fn includes_are_relative_to_the_main_file_and_read_in_sorted_order() {
    let dir = TempDir::new();
    let main = dir.write(
        "etc/kahi.toml",
        "include = [\"conf.d/*.toml\", \"more/*.toml\"]\n[programs.main]\ncommand = \"x\"\n",
    );
    // Written out of order: the glob's matches are sorted before reading.
    dir.write(
        "etc/conf.d/b.toml",
        "[programs.b]\ncommand = \"x\"\n[groups.g]\nprograms = [\"a\"]\n",
    );
    dir.write("etc/conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    dir.write("etc/conf.d/notes.txt", "not toml at all [");
    dir.write("etc/more/c.toml", "[programs.c]\ncommand = \"x\"\n");
    let config = ok_file(&main);
    // Sorted by (priority, group, name); `a` is in group `g`.
    assert_eq!(names(&config), ["b", "c", "g:a", "main"]);

    // The order is visible in duplicate errors: the later file is the one blamed.
    dir.write("etc/conf.d/z.toml", "[programs.a]\ncommand = \"y\"\n");
    let errors = errors_file(&main);
    assert_eq!(
        render(&errors),
        format!(
            "{}:1:1: programs.a: program defined twice; first at {}:1:1\n",
            dir.show("etc/conf.d/z.toml"),
            dir.show("etc/conf.d/a.toml")
        )
    );
}

#[test]
fn an_include_that_matches_nothing_is_a_warning_at_its_line() {
    let dir = TempDir::new();
    let main = dir.write(
        "kahi.toml",
        "include = [\n  \"conf.d/*.toml\",\n  \"missing.toml\",\n]\n[programs.main]\ncommand = \"x\"\n",
    );
    dir.write("conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    let config = ok_file(&main);
    assert_eq!(names(&config), ["a", "main"]);
    let notes: Vec<String> = config
        .notes
        .iter()
        .filter(|n| n.error.key == "include")
        .map(|n| n.error.to_string())
        .collect();
    assert_eq!(
        notes,
        [format!("{}:3:3: include: no file matches \"missing.toml\"", dir.show("kahi.toml"))]
    );
}

#[test]
fn load_text_checks_as_load_does_but_reads_no_include() {
    let dir = TempDir::new();
    let text = "include = [\"conf.d/*.toml\"]\n[programs.main]\ncommand = \"%(here)s/main\"\n";
    let main = dir.write("kahi.toml", text);
    dir.write("conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    assert_eq!(names(&ok_file(&main)), ["a", "main"]);
    let config = load_text(&main, text, &no_env).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(names(&config), ["main"]);
    assert_eq!(process(&config, "main").argv, [dir.show("main")]);
    // Errors name the notional file and their place, as they do for a real one.
    let errors = load_text(Path::new("/nowhere/kahi.toml"), "include = [1]\n", &no_env);
    assert_eq!(
        render(&errors.unwrap_err()),
        "/nowhere/kahi.toml:1:11: include: expected a string, found integer 1\n"
    );
}

#[test]
fn include_patterns_are_read_in_the_order_written() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"z/*.toml\", \"a/*.toml\"]\n");
    dir.write("z/x.toml", "[programs.dup]\ncommand = \"x\"\n");
    dir.write("a/x.toml", "[programs.dup]\ncommand = \"x\"\n");
    let errors = errors_file(&main);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].file, dir.path.join("a/x.toml"));
    assert!(errors[0].message.ends_with(&format!("first at {}:1:1", dir.show("z/x.toml"))));
}

#[test]
fn duplicate_across_main_and_included_file_names_both() {
    let dir = TempDir::new();
    let main = dir
        .write("kahi.toml", "include = [\"conf.d/*.toml\"]\n\n[programs.web]\ncommand = \"x\"\n");
    dir.write("conf.d/web.toml", "# again\n[programs.web]\ncommand = \"y\"\n");
    let errors = errors_file(&main);
    assert_eq!(
        render(&errors),
        format!(
            "{}:2:1: programs.web: program defined twice; first at {}:3:1\n",
            dir.show("conf.d/web.toml"),
            dir.show("kahi.toml")
        )
    );
}

#[test]
fn duplicate_group_across_files() {
    let dir = TempDir::new();
    let main = dir.write(
        "kahi.toml",
        "include = [\"g.toml\"]\n[programs.web]\ncommand = \"x\"\n[groups.g]\nprograms = [\"web\"]\n",
    );
    dir.write("g.toml", "[groups.g]\nprograms = []\n");
    let errors = errors_file(&main);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].file, dir.path.join("g.toml"));
    assert_eq!(
        errors[0].message,
        format!("group defined twice; first at {}:4:1", dir.show("kahi.toml"))
    );
}

#[test]
fn an_included_file_may_not_set_server_logging_or_include() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*.toml\"]\n");
    dir.write(
        "conf.d/a.toml",
        "include = [\"x\"]\n[programs.a]\ncommand = \"x\"\n[server]\nsocket = \"/s\"\n\
         [logging]\nlevel = \"debug\"\n",
    );
    let errors = errors_file(&main);
    assert_eq!(
        places(&errors),
        [(1, 11, "include"), (4, 1, "server"), (6, 1, "logging")],
        "{}",
        render(&errors)
    );
    for e in &errors {
        assert_eq!(e.file, dir.path.join("conf.d/a.toml"));
        assert!(e.message.starts_with("only the main file may set this"), "{e}");
    }
    // Negative twin: the same [server] table in the main file is fine.
    let main = dir.write("kahi.toml", "[server]\nsocket = \"/s\"\n");
    assert_eq!(ok_file(&main).server.socket, PathBuf::from("/s"));
}

#[test]
fn a_pattern_matching_nothing_is_not_an_error() {
    let dir = TempDir::new();
    let main = dir.write(
        "kahi.toml",
        "include = [\"nothing/*.toml\", \"none.toml\"]\n[programs.web]\ncommand = \"x\"\n",
    );
    assert_eq!(names(&ok_file(&main)), ["web"]);
}

#[test]
fn include_matching_the_main_file_does_not_read_it_twice() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"*.toml\"]\n[programs.web]\ncommand = \"x\"\n");
    dir.write("worker.toml", "[programs.worker]\ncommand = \"x\"\n");
    assert_eq!(names(&ok_file(&main)), ["web", "worker"]);
}

#[test]
fn a_file_matched_by_two_patterns_is_read_once() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*.toml\", \"conf.d/a.toml\"]\n");
    dir.write("conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    assert_eq!(names(&ok_file(&main)), ["a"]);
}

#[test]
fn include_patterns_are_expanded() {
    let dir = TempDir::new();
    dir.write("conf.d/a.toml", "[programs.a]\ncommand = \"x\"\n");
    let main = dir.write("kahi.toml", "include = [\"%(here)s/conf.d/*.toml\"]\n");
    assert_eq!(names(&ok_file(&main)), ["a"], "%(here)s, as supervisord's [include] files");
    let main = dir.write("kahi.toml", "include = [\"${CONF}/*.toml\"]\n");
    let config =
        load_env(&main, &[("CONF", "conf.d")]).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(names(&config), ["a"], "${{CONF}} from the daemon's environment");
}

#[test]
fn here_in_the_socket_path() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "[server]\nsocket = \"%(here)s/kahi.sock\"\n");
    assert_eq!(ok_file(&main).server.socket, dir.path.join("kahi.sock"));
}

#[test]
fn decimal_integer_modes_are_refused() {
    let errors =
        errors("[server]\nsocket_mode = 700\n[programs.web]\ncommand = \"x\"\numask = 22\n");
    assert_eq!(
        places(&errors),
        [(2, 15, "server.socket_mode"), (5, 9, "programs.web.umask")],
        "{}",
        render(&errors)
    );
    for e in &errors {
        assert!(e.message.contains("octal"), "{e}");
    }
}

#[test]
fn include_must_be_an_array_of_strings() {
    let e = one_error("include = \"conf.d/*.toml\"\n");
    assert_eq!((e.line, e.column, e.key.as_str()), (1, 11, "include"));
    assert_eq!(e.message, "expected an array, found string \"conf.d/*.toml\"");
}

#[test]
fn errors_in_included_files_name_that_file() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*.toml\"]\n");
    dir.write("conf.d/web.toml", "[programs.web]\ncommand = \"x\"\nstartsecs = \"abc\"\n");
    let errors = errors_file(&main);
    assert_eq!(
        render(&errors),
        format!(
            "{}:3:13: programs.web.startsecs: expected a number of seconds >= 0, \
             found string \"abc\"\n",
            dir.show("conf.d/web.toml")
        )
    );
}

#[test]
fn unreadable_included_file_is_an_error() {
    let dir = TempDir::new();
    let main = dir.write("kahi.toml", "include = [\"conf.d/*\"]\n");
    std::fs::create_dir_all(dir.path.join("conf.d/sub")).unwrap();
    let errors = errors_file(&main);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].file, dir.path.join("conf.d/sub"));
    assert_eq!(errors[0].line, 0);
    assert!(errors[0].message.starts_with("unable to read included file: "), "{}", errors[0]);
}
