//! One test per rule of configparser as supervisord configures it; each expectation was
//! checked against Python 3.11's RawConfigParser(inline_comment_prefixes=(';','#'),
//! strict=False).

use super::*;

fn ini(text: &str) -> Ini {
    let mut ini = Ini { files: vec!["/etc/s.conf".into()], ..Ini::default() };
    ini.parse(0, text).unwrap();
    ini
}

fn get(ini: &Ini, section: &str, key: &str) -> Option<String> {
    let s = ini.section(section)?;
    ini.get(s, key).map(|v| v.text.clone())
}

#[test]
fn full_line_comments_also_indented() {
    let i = ini("; top\n# top\n[a]\n  ; indented\nk=v\n");
    assert_eq!(get(&i, "a", "k").as_deref(), Some("v"));
    assert_eq!(i.section("a").unwrap().keys.len(), 1);
}

#[test]
fn inline_comments_only_after_whitespace() {
    let i = ini("[a]\nx=b;c\ny=b ;c\nz=b\t#c\nw=b#c\ncmd=bash -c 'x ; y'\n");
    assert_eq!(get(&i, "a", "x").as_deref(), Some("b;c"));
    assert_eq!(get(&i, "a", "y").as_deref(), Some("b"));
    assert_eq!(get(&i, "a", "z").as_deref(), Some("b"));
    assert_eq!(get(&i, "a", "w").as_deref(), Some("b#c"));
    // Not quote-aware.
    assert_eq!(get(&i, "a", "cmd").as_deref(), Some("bash -c 'x"));
    // configparser's rounds: the first ';' and the first '#' are looked at before the second
    // ones, so a qualifying first '#' wins over an earlier qualifying second ';'.
    let i = ini("[a]\nk=a;b ;c #d\nj=x#y ;z\nm=p;q r;s #t ;u\n");
    assert_eq!(get(&i, "a", "k").as_deref(), Some("a;b ;c"));
    assert_eq!(get(&i, "a", "j").as_deref(), Some("x#y"));
    assert_eq!(get(&i, "a", "m").as_deref(), Some("p;q r;s"));
}

#[test]
fn a_value_knows_whether_an_inline_comment_cut_it() {
    let i = ini("[a]\nx=b;c\ny=b ;c\nz=b\n  c #d\nw=b\n  ; a comment line\n  c\nv=b ;c\nv=d\n");
    let cut = |k: &str| i.get(i.section("a").unwrap(), k).unwrap().cut;
    assert_eq!(
        [cut("x"), cut("y"), cut("z"), cut("w"), cut("v")],
        [false, true, true, false, false]
    );
}

#[test]
fn equals_or_colon_first_one_wins_keys_lowercased_and_stripped() {
    let i = ini("[a]\ncommand: /bin/x a=b\nURL = http://h:1/\n  COMMAND2  =  v  \nK2 :  v  \n");
    assert_eq!(get(&i, "a", "command").as_deref(), Some("/bin/x a=b"));
    // Indented deeper than its key: a continuation, not a key.
    assert_eq!(get(&i, "a", "url").as_deref(), Some("http://h:1/\nCOMMAND2  =  v"));
    assert_eq!(get(&i, "a", "k2").as_deref(), Some("v"));
}

#[test]
fn continuation_lines_joined_with_newlines_blank_lines_kept_inside() {
    let text = "[a]\nenvironment =\n    A=1,\n\n    B=2\n\n\nnext=x\n  ; comment\n  more\n";
    let i = ini(text);
    assert_eq!(get(&i, "a", "environment").as_deref(), Some("\nA=1,\n\nB=2"));
    // A comment line inside a value is dropped, and the value goes on.
    assert_eq!(get(&i, "a", "next").as_deref(), Some("x\nmore"));
    // Inline comments apply on continuation lines too.
    let i = ini("[a]\nk=one\n  two ;gone\n");
    assert_eq!(get(&i, "a", "k").as_deref(), Some("one\ntwo"));
}

#[test]
fn default_section_reaches_every_section() {
    let i = ini("[DEFAULT]\ncommand=/bin/x\n[program:a]\n[program:b]\ncommand=/bin/y\n");
    assert_eq!(get(&i, "program:a", "command").as_deref(), Some("/bin/x"));
    assert_eq!(get(&i, "program:b", "command").as_deref(), Some("/bin/y"));
    assert!(i.section("DEFAULT").is_none());
}

#[test]
fn duplicate_sections_merge_and_the_last_key_wins() {
    let i = ini("[a]\nk=1\nj=1\n[b]\n[a]\nk=2\n");
    assert_eq!(get(&i, "a", "k").as_deref(), Some("2"));
    assert_eq!(get(&i, "a", "j").as_deref(), Some("1"));
    assert_eq!(i.sections.len(), 2);
    // The place of a value is its last assignment.
    assert_eq!(i.get(i.section("a").unwrap(), "k").unwrap().line, 6);
}

#[test]
fn section_names_are_kept_as_written() {
    let i = ini("[Program:x]\ncommand=a\n[program: y ]\ncommand=b\n[a]b] junk\n");
    assert!(i.section("Program:x").is_some());
    assert!(i.section("program:x").is_none());
    assert!(i.section("program: y ").is_some());
    // Up to the last ']' of the line.
    assert!(i.section("a]b").is_some());
}

#[test]
fn parsing_errors_name_each_line() {
    let mut i = Ini { files: vec!["/etc/s.conf".into()], ..Ini::default() };
    let e = i.parse(0, "[a]\nok=1\nbogus\n=novalue\n").unwrap_err();
    assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4]);
    assert!(e[0].to_string().starts_with("/etc/s.conf:3:1: "), "{}", e[0]);
    let mut i = Ini { files: vec!["/etc/s.conf".into()], ..Ini::default() };
    let e = i.parse(0, "k=v\n[a]\n").unwrap_err();
    assert!(e[0].message.contains("no section headers"), "{}", e[0]);
}

#[test]
fn here_is_replaced_in_every_section_and_default_value() {
    let mut i = ini("[DEFAULT]\nd=%(here)s/d\n[a]\nk=%(here)s/x\n");
    i.expand_here("/etc");
    assert_eq!(get(&i, "a", "k").as_deref(), Some("/etc/x"));
    assert_eq!(get(&i, "a", "d").as_deref(), Some("/etc/d"));
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kahi-ini-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    d
}

#[test]
fn includes_are_relative_sorted_one_level_and_get_their_own_here() {
    let d = tempdir("inc");
    std::fs::write(d.join("conf.d/b.conf"), "[program:b]\ncommand=%(here)s/b\n").unwrap();
    std::fs::write(
        d.join("conf.d/a.conf"),
        "[program:a]\ncommand=a\n[include]\nfiles=never/*.conf\n",
    )
    .unwrap();
    std::fs::write(d.join("conf.d/.hidden.conf"), "[program:hidden]\ncommand=h\n").unwrap();
    let main = d.join("s.conf");
    let text = "[supervisord]\n[program:m]\ncommand=%(here)s/m\n[include]\nfiles = conf.d/*.conf nomatch/*.conf\n";
    std::fs::write(&main, text).unwrap();
    let got = read(&main, text, &super::super::format::Dict::default());
    let _ = std::fs::remove_dir_all(&d);
    let i = got.unwrap();
    let names: Vec<&str> = i.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["supervisord", "program:m", "include", "program:a", "program:b"]);
    let conf_d = d.join("conf.d");
    assert_eq!(get(&i, "program:m", "command"), Some(format!("{}/m", d.display())));
    assert_eq!(get(&i, "program:b", "command"), Some(format!("{}/b", conf_d.display())));
    // The included [include] was merged, not followed: files is the last value read.
    assert_eq!(get(&i, "include", "files").as_deref(), Some("never/*.conf"));
    assert_eq!(i.warnings.len(), 1);
    assert!(i.warnings[0].message.contains("No file matches via include"), "{:?}", i.warnings);
    assert_eq!(i.files.len(), 3);
}

#[test]
fn an_include_without_files_and_a_file_without_supervisord_are_refused() {
    let d = tempdir("refuse");
    let main = d.join("s.conf");
    let e = read(&main, "[supervisord]\n[include]\n", &Default::default()).unwrap_err();
    assert!(e[0].message.contains("no files setting"), "{e:?}");
    let e = read(&main, "[program:a]\ncommand=a\n", &Default::default()).unwrap_err();
    assert!(e[0].message.contains("does not include supervisord section"), "{e:?}");
    let _ = std::fs::remove_dir_all(&d);
}
