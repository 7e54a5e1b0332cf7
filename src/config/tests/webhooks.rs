//! `[webhooks.NAME]`: where events are POSTed, checked at load with errors at their place.

use super::*;
use crate::config::WebhookFormat;
use crate::events::EventType;

const PROGRAM: &str = "[programs.web]\ncommand = \"x\"\n\n";

#[test]
fn a_webhook_has_its_keys_and_their_defaults() {
    let config = ok(&format!(
        r#"{PROGRAM}[webhooks.ops]
url = "https://hooks.example.com/T0/B1?x=1"
events = ["PROCESS_STATE_FATAL", "KAHI_HEALTH", "KAHI_DEPENDENCY", "KAHI_UPDATE", "TICK"]
headers = {{ Authorization = "Bearer ${{TOKEN:-t}}", "X-Team" = "ops" }}
secret = "${{TOKEN:-t}}"
format = "slack"
timeout = 2.5
retries = 0
retry_backoff = 0.5
queue_size = 5

[webhooks.audit]
url = "http://127.0.0.1:8080"
events = ["EVENT"]
"#
    ));
    let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["audit", "ops"], "sorted by name");
    let audit = &config.webhooks[0];
    assert_eq!((audit.url.https, audit.url.port, audit.url.path.as_str()), (false, 8080, "/"));
    assert_eq!(audit.events, [EventType::Event]);
    assert_eq!(
        (audit.timeout, audit.retries, audit.queue_size),
        (Duration::from_secs(10), 3, 1000)
    );
    assert_eq!((audit.retry_backoff, audit.format), (Duration::from_secs(1), WebhookFormat::Json));
    assert!(audit.secret.is_none() && audit.headers.is_empty() && audit.ca_file.is_none());
    let ops = &config.webhooks[1];
    assert_eq!((ops.url.host.as_str(), ops.url.path.as_str()), ("hooks.example.com", "/T0/B1?x=1"));
    assert_eq!(ops.events.len(), 5);
    assert_eq!((ops.format, ops.retries, ops.queue_size), (WebhookFormat::Slack, 0, 5));
    assert_eq!(
        (ops.timeout, ops.retry_backoff),
        (Duration::from_millis(2500), Duration::from_millis(500))
    );
    assert_eq!(ops.headers[1], ("X-Team".to_string(), "ops".to_string()));
    // The secret never shows in Debug.
    assert!(!format!("{ops:?}").contains("Bearer"), "{ops:?}");
}

#[test]
fn secrets_and_headers_come_from_the_environment() {
    let dir = TempDir::new();
    let path = dir.write(
        "kahi.toml",
        &format!(
            "{PROGRAM}[webhooks.ops]\nurl = \"http://h/\"\nevents = [\"EVENT\"]\nsecret = \"${{S}}\"\nheaders = {{ Authorization = \"Bearer ${{T}}\" }}\n"
        ),
    );
    let config = load_env(&path, &[("S", "s3cret"), ("T", "tok")]).unwrap();
    let ops = &config.webhooks[0];
    assert_eq!(ops.secret.as_deref(), Some("s3cret"));
    assert_eq!(ops.headers, [("Authorization".to_string(), "Bearer tok".to_string())]);
}

#[test]
fn bad_values_are_errors_at_their_place() {
    let errors = errors(&format!(
        r#"{PROGRAM}[webhooks.ops]
url = "ftp://example.com/"
events = ["PROCESS_STATE_FATL"]
retries = 101
timeout = 0
format = "xml"
headers = {{ "Content-Length" = "1", "Bad Name" = "x", Ok = "a\nb" }}
secret = ""
queue_size = 0
ca_file = "no-such-ca.pem"
"#
    ));
    let got: Vec<(usize, &str, &str)> =
        errors.iter().map(|e| (e.line, e.key.as_str(), e.message.as_str())).collect();
    let expect = [
        (
            5,
            "webhooks.ops.url",
            "expected an http:// or https:// URL, found \"ftp://example.com/\"",
        ),
        (
            6,
            "webhooks.ops.events",
            "unknown event type \"PROCESS_STATE_FATL\"; did you mean \"PROCESS_STATE_FATAL\"?",
        ),
        (7, "webhooks.ops.retries", "expected an integer from 0 to 100, found integer 101"),
        (8, "webhooks.ops.timeout", "must be more than 0"),
        (9, "webhooks.ops.format", "expected \"json\" or \"slack\", found \"xml\""),
        (10, "webhooks.ops.headers.Content-Length", "Kahi writes this header itself"),
        (
            10,
            "webhooks.ops.headers.\"Bad Name\"",
            "not a header name (letters, digits and !#$%&'*+-.^_`|~)",
        ),
        (10, "webhooks.ops.headers.Ok", "a header value holds no line break or NUL"),
        (11, "webhooks.ops.secret", "an empty secret signs nothing: leave the key out"),
        (12, "webhooks.ops.queue_size", "expected an integer from 1 to 1000000, found integer 0"),
    ];
    for e in expect {
        assert!(got.contains(&e), "{e:?} not in\n{}", render(&errors));
    }
    let ca = errors.iter().find(|e| e.key == "webhooks.ops.ca_file").expect("ca_file");
    assert!(
        ca.message.starts_with("unable to read ") && ca.message.contains("no-such-ca.pem"),
        "{ca}"
    );
    assert_eq!(errors.len(), expect.len() + 1, "{}", render(&errors));
}

#[test]
fn what_a_webhook_needs_and_may_not_repeat() {
    let errors = errors(&format!(
        "{PROGRAM}[webhooks.a]\nevents = [\"EVENT\"]\n\n[webhooks.b]\nurl = \"http://h/\"\nevents = []\ntimout = 3\n"
    ));
    let got: Vec<(&str, &str)> =
        errors.iter().map(|e| (e.key.as_str(), e.message.as_str())).collect();
    assert_eq!(
        got,
        [
            ("webhooks.a", "missing required key \"url\""),
            ("webhooks.b.events", "must name at least one event type"),
            ("webhooks.b.timout", "unknown key; did you mean \"timeout\"?"),
        ],
        "{}",
        render(&errors)
    );
    // https names its host: the certificate is checked against a name.
    let e = one_error(&format!(
        "{PROGRAM}[webhooks.a]\nurl = \"https://10.0.0.1/\"\nevents = [\"EVENT\"]\n"
    ));
    assert!(e.message.contains("needs a host name"), "{e}");
    // A ca_file without a certificate.
    let dir = TempDir::new();
    dir.write("empty.pem", "nothing here\n");
    let path = dir.write(
        "kahi.toml",
        &format!("{PROGRAM}[webhooks.a]\nurl = \"https://h/\"\nevents = [\"EVENT\"]\nca_file = \"empty.pem\"\n"),
    );
    let e = &errors_file(&path)[0];
    assert_eq!(e.key, "webhooks.a.ca_file");
    assert_eq!(
        e.message,
        format!(
            "{}: no certificate (-----BEGIN CERTIFICATE-----) in the file",
            dir.show("empty.pem")
        )
    );
}

#[test]
fn a_webhook_defined_twice_across_files_is_an_error() {
    let dir = TempDir::new();
    dir.write("conf.d/a.toml", "[webhooks.ops]\nurl = \"http://a/\"\nevents = [\"EVENT\"]\n");
    let path = dir.write(
        "kahi.toml",
        &format!("include = [\"conf.d/*.toml\"]\n{PROGRAM}[webhooks.ops]\nurl = \"http://b/\"\nevents = [\"EVENT\"]\n"),
    );
    let errors = errors_file(&path);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].key, "webhooks.ops");
    assert!(errors[0].message.starts_with("webhook defined twice; first at "), "{}", errors[0]);
    // Alone, the included one is read.
    std::fs::remove_file(&path).unwrap();
    let path = dir.write("kahi.toml", &format!("include = [\"conf.d/*.toml\"]\n{PROGRAM}"));
    assert_eq!(ok_file(&path).webhooks[0].url.host, "a");
}
