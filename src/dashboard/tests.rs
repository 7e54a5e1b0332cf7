//! The dashboard's routes and pages, without a socket.

use super::*;

#[test]
fn pages_and_forms_route_to_what_they_ask_with_its_role() {
    let r = |m: &str, url: &str, body: &str| crate::http::route(m, url, body.as_bytes());
    assert_eq!(r("GET", "/", ""), Route::Dashboard(Page::Index { q: "".into(), state: "".into() }));
    assert_eq!(
        r("GET", "/?q=we+b&state=RUNNING", ""),
        Route::Dashboard(Page::Index { q: "we b".into(), state: "RUNNING".into() })
    );
    assert_eq!(r("GET", "/ui/p/g%3Aweb", ""), Route::Dashboard(Page::Process("g:web".into())));
    assert_eq!(r("GET", "/ui/kahi.js?v=1", ""), Route::Dashboard(Page::Asset(Asset::Js)));
    assert_eq!(r("POST", "/ui/kahi.js", ""), Route::MethodNotAllowed("GET"));
    let Route::Api(req, Shape::Form(form)) = r("POST", "/ui/p/web", "do=restart&csrf=T") else {
        panic!("not an action")
    };
    assert_eq!(req, Request::Restart { names: vec!["web".into()], wait: false });
    assert_eq!(form, Form { back: "/".into(), json: false, token: "T".into(), preview: false });
    let Route::Api(req, Shape::Form(form)) =
        r("POST", "/ui/g/be", "do=signal&signal=HUP&as=json&back=%2Fui%2Fdaemon")
    else {
        panic!("not an action")
    };
    assert_eq!(req, Request::Signal { signal: "HUP".into(), names: vec!["be:*".into()] });
    assert!(form.json && form.back == "/ui/daemon");
    // A way off the site is not a way back.
    let Route::Api(_, Shape::Form(form)) = r("POST", "/ui/p/web", "do=stop&back=%2F%2Fevil") else {
        panic!()
    };
    assert_eq!(form.back, "/");
    assert!(matches!(r("POST", "/ui/p/web", "do=explode"), Route::Invalid { .. }));
    let role = |m: &str, url: &str| crate::http::required_role(m, url, false);
    assert_eq!(role("GET", "/"), Some(Role::Viewer));
    assert_eq!(role("GET", "/ui/kahi.css"), Some(Role::Viewer));
    assert_eq!(role("POST", "/ui/p/web"), Some(Role::Operator));
    assert_eq!(role("POST", "/ui/g/web"), Some(Role::Operator));
    assert_eq!(role("POST", "/ui/restart-failed"), Some(Role::Operator));
    assert_eq!(role("POST", "/ui/daemon/reread"), Some(Role::Admin));
    assert_eq!(role("POST", "/ui/daemon/update"), Some(Role::Admin));
    assert_eq!(r("GET", "/ui/nothing", ""), Route::NotFound);
}

#[test]
fn text_from_outside_is_escaped() {
    assert_eq!(html::esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    assert_eq!(html::dur(59.9), "59s");
    assert_eq!(html::dur(3725.0), "1h 2m");
    assert_eq!(html::dur(90061.0), "1d 1h");
}

#[test]
fn a_form_goes_back_when_all_went_well_and_says_why_when_not() {
    use crate::api::{NameResult, Outcome};
    let form = Form { back: "/ui/p/web".into(), json: false, token: "T".into(), preview: false };
    let ok = |outcome| {
        Ok(Reply::Results {
            results: vec![NameResult { name: "web".into(), outcome, detail: None }],
        })
    };
    let a = form_answer(&form, ok(Outcome::Started));
    assert_eq!(a.status, 303);
    assert!(a.headers.contains(&("Location", "/ui/p/web".into())));
    let a = form_answer(&form, ok(Outcome::SpawnError));
    assert_eq!(a.status, 409);
    let body = String::from_utf8(a.body.into_bytes()).unwrap();
    assert!(body.contains("web: ERROR (spawn error)"), "{body}");
    let json = Form { json: true, ..form };
    let a = form_answer(&json, ok(Outcome::Started));
    assert_eq!(a.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&a.body.into_bytes()).unwrap();
    assert_eq!(v[0]["outcome"], "started");
}

/// Regression (issue 13): "restart all failed" took an EXITED process killed by SIGTERM for
/// one that ended as meant when `exitcodes` held 143 (the shell's 128 + 15), where the state
/// machine calls it unexpected: a death by a signal never is expected.
#[test]
fn an_exit_failed_as_the_state_machine_says() {
    use crate::process::{ExitStatus, State};
    let text = "[programs.web]\ncommand = \"/bin/true\"\nexitcodes = [0, 143]\n";
    let config =
        crate::config::load_text(std::path::Path::new("/etc/kahi/kahi.toml"), text, &|_| None)
            .unwrap();
    let mut sup = Supervisor::new(config);
    let id = sup.resolve("web").unwrap()[0];
    let mut exited = |status| {
        let e = sup.get_mut(id).unwrap();
        e.proc.state = State::Exited;
        e.proc.exit_status = Some(status);
        failed(e)
    };
    assert!(exited(ExitStatus::Signaled { signal: 15, core_dumped: false }));
    assert!(exited(ExitStatus::Exited(1)));
    assert!(!exited(ExitStatus::Exited(143)));
    assert!(!exited(ExitStatus::Exited(0)));
}
