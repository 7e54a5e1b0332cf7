//! Each expectation is what supervisord 4.2.5's datatypes.py answers for the same text.

use super::*;

fn env(s: &str) -> Result<Vec<(String, String)>, String> {
    environment(s).map(|(pairs, _)| pairs)
}

fn pairs(list: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
    Ok(list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[test]
fn environment_pairs_as_dict_of_key_value_pairs_reads_them() {
    assert_eq!(env(""), pairs(&[]));
    assert_eq!(env("foo=bar,baz=qux"), pairs(&[("foo", "bar"), ("baz", "qux")]));
    assert_eq!(env(" foo = bar , baz = qux "), pairs(&[("foo", "bar"), ("baz", "qux")]));
    assert_eq!(env("foo\n=\nbar\n,\nbaz\n=\nqux"), pairs(&[("foo", "bar"), ("baz", "qux")]));
    assert_eq!(env("A=x,A=y"), pairs(&[("A", "y")]));
    assert_eq!(env("A=\"x y\",B='c,d'"), pairs(&[("A", "x y"), ("B", "c,d")]));
    assert_eq!(env("foo=\"\""), pairs(&[("foo", "")]));
    assert_eq!(env("a=1,"), pairs(&[("a", "1")]));
    assert_eq!(env("Q=*"), pairs(&[("Q", "*")]));
    assert_eq!(
        env("HOME=/home/a,FOO=/.foo+(1.2)-_/,URL=http://127.0.0.1:9001"),
        pairs(&[("HOME", "/home/a"), ("FOO", "/.foo+(1.2)-_/"), ("URL", "http://127.0.0.1:9001")])
    );
    // A quote inside a word is kept; a word after a quoted string is a token of its own.
    assert_eq!(env("A=x\"y"), pairs(&[("A", "x\"y")]));
    assert_eq!(env("A=\"q\"r"), pairs(&[("A", "q")]));
}

#[test]
fn environment_values_cut_short_silently_as_supervisord_cuts_them() {
    assert_eq!(env("A=b;C=d"), pairs(&[("A", "b"), ("C", "d")]));
    assert_eq!(env("URL=http://h:9/x?y=1"), pairs(&[("URL", "http://h:9/x"), ("y", "1")]));
    let (p, lost) = environment("PASS=abc#def,B=2").unwrap();
    assert_eq!(Ok(p), pairs(&[("PASS", "abc")]));
    assert!(!lost.is_empty(), "the lost part is reported");
    let (_, lost) = environment("URL=http://h:9/x?y=1").unwrap();
    assert!(!lost.is_empty());
}

/// Each silent loss is reported, also beside a quoted value, and a quoted `#`, `$`, `?` or `;`
/// is no loss.
#[test]
fn every_silent_loss_is_reported_and_only_those() {
    for (text, kept) in [
        ("A=\"x\",PASS=abc#def,B=2", &[("A", "x"), ("PASS", "abc")][..]),
        ("A=1,#B=2", &[("A", "1")]),
        ("A=x#y\nz,B=1", &[("A", "xz"), ("B", "1")]),
        ("P=$PATH:/x", &[("P", "$")]),
        ("B='q',URL=http://h:9/x?y=1", &[("B", "q"), ("URL", "http://h:9/x"), ("y", "1")]),
        ("A=b;C=d", &[("A", "b"), ("C", "d")]),
    ] {
        let (p, lost) = environment(text).unwrap();
        assert_eq!(Ok(p), pairs(kept), "{text:?}");
        assert!(!lost.is_empty(), "{text:?}: the loss is reported");
    }
    for text in ["A=\"x#y\",B='$P?q;r'", "A=1,\nB=2", "A=%,B=1 ,C=2"] {
        let (_, lost) = environment(text).unwrap_or_default();
        assert!(lost.is_empty(), "{text:?}: {lost:?}");
    }
}

/// supervisord 4.2.5 (Debian's, the reference) reads `environment=` with a non-POSIX
/// `shlex`: quotes are stripped from the ends of a token only, no backslash escapes, no
/// concatenation of quoted pieces (supervisord's later POSIX reading differs on these).
#[test]
fn environment_quoting_is_non_posix_as_in_supervisord_4_2_5() {
    assert_eq!(env("A='it''s'"), pairs(&[("A", "it")]));
    assert_eq!(env("A=\"a\\\"b\""), pairs(&[("A", "a\\")]));
    assert_eq!(env("P=\"$PATH:/x\""), pairs(&[("P", "$PATH:/x")]));
    assert_eq!(env("A=ü"), pairs(&[("A", "ü")]));
    // A percent sign is a token of its own: unquoted, it ends the value.
    assert!(env("A=100%,B=x").is_err());
    assert_eq!(env("A=\"100%\",B=x"), pairs(&[("A", "100%"), ("B", "x")]));
}

#[test]
fn environment_errors() {
    for bad in ["A=b@c", "foo", "foo=", "foo=bar,baz", "A=b\nB=c", "KEY1=val1,KEY2=val2,KEY3"] {
        assert_eq!(
            env(bad),
            Err(format!("Unexpected end of key/value pairs in value '{bad}'")),
            "{bad:?}"
        );
    }
    assert_eq!(env("foo=\"bar"), Err("No closing quotation".into()));
}

#[test]
fn scalars() {
    assert_eq!(integer("1_000"), Ok(1000));
    assert_eq!(integer(" 12 "), Ok(12));
    assert_eq!(integer("-3"), Ok(-3));
    for bad in ["1__0", "_1", "0x10", "", "1.5"] {
        assert!(integer(bad).is_err(), "{bad:?}");
    }
    assert_eq!(byte_size("50 MB"), Ok(50 << 20));
    assert_eq!(byte_size("1KB"), Ok(1024));
    assert_eq!(byte_size("1000MB"), Ok(1000 << 20));
    assert_eq!(byte_size("-1MB"), Ok(-(1 << 20)));
    assert_eq!(byte_size("2gb"), Ok(2 << 30));
    for bad in ["1.5MB", "50M", "50B", "1TB", "1KiB"] {
        assert!(byte_size(bad).is_err(), "{bad:?}");
    }
    assert_eq!(octal("022"), Ok(0o22));
    assert_eq!(octal("22"), Ok(0o22));
    assert_eq!(octal("0o22"), Ok(0o22));
    assert_eq!(octal("8"), Err("8 can not be converted to an octal type".into()));
    for (s, b) in
        [("true", true), ("YES", true), ("on", true), ("1", true), ("Off", false), ("0", false)]
    {
        assert_eq!(boolean(s), Ok(b), "{s}");
    }
    for bad in ["t", "y", ""] {
        assert!(boolean(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn signals_as_signal_number_reads_them() {
    assert_eq!(signal_number("TERM"), Ok(15));
    assert_eq!(signal_number("sigquit"), Ok(3));
    assert_eq!(signal_number(" hup "), Ok(1));
    assert_eq!(signal_number("15"), Ok(15));
    assert_eq!(signal_number("IOT"), Ok(6));
    // Quirks: 0 and SIG_DFL pass, because SIGNUMS holds every SIG* attribute.
    assert_eq!(signal_number("0"), Ok(0));
    assert_eq!(signal_number("SIG_DFL"), Ok(0));
    assert_eq!(
        signal_number("RTMIN+1"),
        Err("value \"RTMIN+1\" is not a valid signal name".into())
    );
    assert_eq!(signal_number("32"), Err("value \"32\" is not a valid signal number".into()));
}

#[test]
fn lists_restarts_names_levels_addresses() {
    assert_eq!(exitcodes("0,2"), Ok(vec![0, 2]));
    assert_eq!(exitcodes(" 1 , 4"), Ok(vec![1, 4]));
    assert_eq!(exitcodes(""), Ok(vec![]));
    for bad in ["256", "-1", "0,,2"] {
        assert!(exitcodes(bad).is_err(), "{bad:?}");
    }
    assert_eq!(list_of_strings("a, b,"), vec!["a", "b", ""]);
    assert_eq!(list_of_strings(""), Vec::<String>::new());
    assert_eq!(auto_restart("Unexpected"), Ok(AutoRestart::Unexpected));
    assert_eq!(auto_restart("true"), Ok(AutoRestart::Always));
    assert_eq!(auto_restart("off"), Ok(AutoRestart::Never));
    assert!(auto_restart("always").is_err());
    assert_eq!(name(" a "), Ok("a".into()));
    assert!(name("a b").is_err());
    assert!(name("a:b").is_err());
    assert!(name("a/b").is_err());
    assert_eq!(logging_level("BLATHER"), Ok("trace"));
    assert!(logging_level("warning").is_err());
    assert_eq!(inet_address("9001"), Ok((String::new(), 9001)));
    assert_eq!(inet_address("*:9001"), Ok((String::new(), 9001)));
    assert_eq!(inet_address("LocalHost:9001"), Ok(("localhost".into(), 9001)));
    for bad in ["a:", "a", "0", ":70000"] {
        assert!(inet_address(bad).is_err(), "{bad:?}");
    }
}
