//! One `/RPC2` request: its calls, answered in order, and the response they make. A call that
//! needs the supervisor is asked as an `api::Request` through the dispatcher, with the
//! exchange as its responder; the next call waits for its reply (a `startProcess` that waits
//! for RUNNING holds a multicall's next call, as in supervisord). Pure.

use std::collections::VecDeque;

use super::codec::{self, Value};
use super::methods::{Convert, Fault, Plan, faults, plan};
use crate::api::{ApiError, Now, Reply, Request};
use crate::config::Role;
use crate::supervisor::Supervisor;

/// Calls in one `system.multicall`, at most: supervisorctl sends a few.
pub const MAX_CALLS: usize = 1000;

/// One request's calls and their answers so far.
#[derive(Debug)]
pub struct Exchange<R> {
    /// Who gets the response (the HTTP request).
    pub to: R,
    /// A `system.multicall`: the answer is an array of every call's.
    multi: bool,
    /// Calls not yet made.
    queue: VecDeque<Plan>,
    /// The call asked and not yet answered: how its reply becomes its value.
    asked: Option<Convert>,
    answers: Vec<Result<Value, Fault>>,
}

/// What an exchange needs next.
pub enum Next {
    /// Ask this request; its reply goes to [`Exchange::answer`].
    Ask(Request),
    /// Every call is answered: the response, to be written (off the loop).
    Done(Response),
}

/// A response, made into bytes where it is written: a large one (every process's info) costs
/// its formatting to the HTTP front's thread, not the loop.
pub struct Response {
    answers: Vec<Result<Value, Fault>>,
    multi: bool,
}

impl Response {
    pub fn into_bytes(self) -> Vec<u8> {
        if self.multi {
            let items = self
                .answers
                .into_iter()
                .map(|a| match a {
                    Ok(v) => Value::Array(vec![v]),
                    Err(f) => codec::fault_struct(f.code, &f.text),
                })
                .collect();
            return codec::response(&Value::Array(items));
        }
        match self.answers.into_iter().next() {
            Some(Ok(v)) => codec::response(&v),
            Some(Err(f)) => codec::fault(f.code, &f.text),
            None => codec::fault(faults::FAILED, "FAILED: no call"),
        }
    }
}

impl<R> Exchange<R> {
    /// Reads a request's body; a body that is no call is answered with a fault.
    pub fn new(to: R, body: &[u8], sup: &Supervisor) -> Exchange<R> {
        let mut x =
            Exchange { to, multi: false, queue: VecDeque::new(), asked: None, answers: Vec::new() };
        let call = match codec::parse_call(body) {
            Ok(call) => call,
            Err(e) => {
                let why = format!("malformed XML-RPC call: {}", e.0);
                x.queue.push_back(Plan::Now(Err(Fault::new(faults::INCORRECT_PARAMETERS, &why))));
                return x;
            }
        };
        match plan(&call.method, &call.params, sup) {
            Plan::Multi(calls) if calls.len() > MAX_CALLS => {
                let why = format!("more than {MAX_CALLS} calls in one system.multicall");
                x.queue.push_back(Plan::Now(Err(Fault::new(faults::INCORRECT_PARAMETERS, &why))));
            }
            Plan::Multi(calls) => {
                x.multi = true;
                for c in calls {
                    x.queue.push_back(match c {
                        Ok(c) => plan(&c.method, &c.params, sup),
                        Err(f) => Plan::Now(Err(f)),
                    });
                }
            }
            p => x.queue.push_back(p),
        }
        x
    }

    /// The role a client needs for every call of it: a client that may not make one of them
    /// gets none of them made.
    pub fn role(&self) -> Role {
        self.queue.iter().map(Plan::role).max().unwrap_or(Role::Viewer)
    }

    /// The next request to ask, or the response once every call is answered.
    pub fn next(&mut self) -> Next {
        while let Some(p) = self.queue.pop_front() {
            match p {
                Plan::Now(v) => self.answers.push(v),
                Plan::Ask(req, convert) => {
                    self.asked = Some(convert);
                    return Next::Ask(req);
                }
                // A multicall within one was refused when it was read.
                Plan::Multi(_) => self.answers.push(Err(Fault::new(
                    faults::INCORRECT_PARAMETERS,
                    "Recursive system.multicall forbidden",
                ))),
            }
        }
        Next::Done(self.body())
    }

    /// The reply to the request asked.
    pub fn answer(&mut self, reply: Result<Reply, ApiError>, sup: &Supervisor, now: Now) {
        let v = match self.asked.take() {
            Some(convert) => convert.apply(reply, sup, now),
            None => Err(Fault::new(faults::FAILED, "a reply nobody asked for")),
        };
        self.answers.push(v);
    }

    fn body(&mut self) -> Response {
        Response { answers: std::mem::take(&mut self.answers), multi: self.multi }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::*;
    use crate::api::{Encoding, NameResult, Outcome};
    use crate::supervisor::Stream;

    fn sup() -> Supervisor {
        let text = r#"
[programs.web]
command = "/bin/true"
[programs.worker]
command = "/bin/true"
numprocs = 2
process_name = "%(program_name)s_%(process_num)02d"
"#;
        let config =
            crate::config::load_text(std::path::Path::new("/etc/kahi/kahi.toml"), text, &|_| None)
                .unwrap();
        Supervisor::new(config)
    }

    fn now() -> Now {
        Now { mono: Instant::now(), wall: SystemTime::now() }
    }

    fn call(method: &str, params: &[&str]) -> Vec<u8> {
        let mut s = format!("<methodCall><methodName>{method}</methodName><params>");
        for p in params {
            s.push_str(&format!("<param><value>{p}</value></param>"));
        }
        (s + "</params></methodCall>").into_bytes()
    }

    fn done(x: &mut Exchange<()>) -> String {
        match x.next() {
            Next::Done(b) => String::from_utf8(b.into_bytes()).unwrap(),
            Next::Ask(r) => panic!("asks {r:?}"),
        }
    }

    fn asks(x: &mut Exchange<()>) -> Request {
        match x.next() {
            Next::Ask(r) => r,
            Next::Done(b) => panic!("done: {}", String::from_utf8_lossy(&b.into_bytes())),
        }
    }

    #[test]
    fn calls_become_requests_and_replies_become_values() {
        let sup = sup();
        let mut x = Exchange::new((), &call("supervisor.startProcess", &["web"]), &sup);
        assert_eq!(x.role(), Role::Operator);
        assert_eq!(asks(&mut x), Request::Start { names: vec!["web".into()], wait: true });
        let started = |name: &str, outcome| NameResult { name: name.into(), outcome, detail: None };
        x.answer(
            Ok(Reply::Results { results: vec![started("web", Outcome::Started)] }),
            &sup,
            now(),
        );
        assert!(done(&mut x).contains("<boolean>1</boolean>"));

        // A fault with supervisord's code and text.
        let mut x = Exchange::new(
            (),
            &call("supervisor.stopProcess", &["web", "<boolean>0</boolean>"]),
            &sup,
        );
        assert_eq!(asks(&mut x), Request::Stop { names: vec!["web".into()], wait: false });
        x.answer(
            Ok(Reply::Results { results: vec![started("web", Outcome::NotRunning)] }),
            &sup,
            now(),
        );
        let out = done(&mut x);
        assert!(out.contains("<int>70</int>") && out.contains("NOT_RUNNING: web"), "{out}");

        // A group: one struct per process, the ones already up left out.
        let mut x = Exchange::new((), &call("supervisor.startProcessGroup", &["worker"]), &sup);
        assert_eq!(asks(&mut x), Request::Start { names: vec!["worker:*".into()], wait: true });
        x.answer(
            Ok(Reply::Results {
                results: vec![
                    started("worker:worker_00", Outcome::AlreadyStarted),
                    started("worker:worker_01", Outcome::SpawnError),
                ],
            }),
            &sup,
            now(),
        );
        let out = done(&mut x);
        assert!(!out.contains("worker_00"), "{out}");
        assert!(
            out.contains("<string>worker_01</string>") && out.contains("<int>50</int>"),
            "{out}"
        );

        // Logs: supervisord's offsets.
        let mut x = Exchange::new(
            (),
            &call("supervisor.readProcessStderrLog", &["web", "<int>-10</int>", "<int>0</int>"]),
            &sup,
        );
        assert_eq!(
            asks(&mut x),
            Request::Tail {
                name: "web".into(),
                stream: Stream::Stderr,
                bytes: 10,
                offset: None,
                follow: false,
                encoding: Encoding::Text
            }
        );
        let mut x = Exchange::new(
            (),
            &call("supervisor.readProcessStdoutLog", &["web", "<int>-10</int>", "<int>5</int>"]),
            &sup,
        );
        assert!(done(&mut x).contains("<int>3</int>"));
    }

    #[test]
    fn restart_and_clear_log_are_admin_requests_with_supervisords_faults() {
        let sup = sup();
        let answered = |method: &str, want: Request, reply: Result<Reply, ApiError>| {
            let mut x = Exchange::new((), &call(method, &[]), &sup);
            assert_eq!(x.role(), Role::Admin, "{method}");
            assert_eq!(asks(&mut x), want);
            x.answer(reply, &sup, now());
            done(&mut x)
        };
        let changes = Reply::Changes { changes: Default::default() };
        let out = answered("supervisor.restart", Request::Reload {}, Ok(changes));
        assert!(out.contains("<boolean>1</boolean>"), "{out}");
        let bad = ApiError::new(crate::api::ErrorCode::BadRequest, "kahi.toml:3:1: oops");
        let out = answered("supervisor.restart", Request::Reload {}, Err(bad));
        assert!(out.contains("<int>92</int>") && out.contains("CANT_REREAD: kahi.toml"), "{out}");
        let none = ApiError::new(crate::api::ErrorCode::NotFound, "Kahi has no log file");
        let out = answered("supervisor.clearLog", Request::ClearMainlog {}, Err(none));
        assert!(out.contains("<int>20</int>") && out.contains("NO_FILE: Kahi has no"), "{out}");
        let e = ApiError::new(crate::api::ErrorCode::ServerError, "unable to empty");
        let out = answered("supervisor.clearLog", Request::ClearMainlog {}, Err(e));
        assert!(out.contains("<int>30</int>"), "{out}");
    }

    #[test]
    fn faults_for_what_is_not_served() {
        let sup = sup();
        let fault = |body: &[u8]| done(&mut Exchange::new((), body, &sup));
        assert!(fault(&call("supervisor.explode", &[])).contains("<int>1</int>"));
        assert!(fault(&call("supervisor.getProcessInfo", &[])).contains("<int>2</int>"));
        assert!(
            fault(&call("supervisor.getProcessInfo", &["<int>1</int>"])).contains("<int>2</int>")
        );
        assert!(
            fault(&call("supervisor.signalProcess", &["web", "NOPE"])).contains("BAD_SIGNAL: NOPE")
        );
        assert!(fault(&call("system.methodHelp", &["nope"])).contains("<int>4</int>"));
        let bad = fault(b"<methodCall><methodName>x</methodName><params>");
        assert!(bad.contains("<fault>") && bad.contains("<int>2</int>"), "{bad}");
        assert!(fault(b"").contains("<fault>"));
        // Listed in order, as listMethods gives them.
        let names: Vec<&str> = super::super::methods::METHODS.iter().map(|m| m.0).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        // Every method listed has a signature and help, and is served.
        for (m, sig, help) in super::super::methods::METHODS {
            assert!(!sig.is_empty() && !help.is_empty(), "{m}");
            if let Next::Done(out) = Exchange::new((), &call(m, &[]), &sup).next() {
                let out = String::from_utf8(out.into_bytes()).unwrap();
                assert!(!out.contains("UNKNOWN_METHOD"), "{m}: {out}");
            }
        }
    }

    #[test]
    fn multicall_makes_its_calls_in_order() {
        let sup = sup();
        let body = br#"<methodCall><methodName>system.multicall</methodName><params><param><value><array><data>
<value><struct><member><name>methodName</name><value>supervisor.getAPIVersion</value></member><member><name>params</name><value><array><data/></array></value></member></struct></value>
<value><struct><member><name>methodName</name><value>supervisor.stopProcess</value></member><member><name>params</name><value><array><data><value>web</value></data></array></value></member></struct></value>
<value><struct><member><name>methodName</name><value>system.multicall</value></member></struct></value>
<value><struct><member><name>methodName</name><value>supervisor.getPID</value></member></struct></value>
</data></array></value></param></params></methodCall>"#;
        let mut x = Exchange::new((), body, &sup);
        assert_eq!(x.role(), Role::Operator);
        assert!(matches!(asks(&mut x), Request::Stop { .. }));
        let r = NameResult { name: "web".into(), outcome: Outcome::Stopped, detail: None };
        x.answer(Ok(Reply::Results { results: vec![r] }), &sup, now());
        assert_eq!(asks(&mut x), Request::Pid { name: None });
        x.answer(Ok(Reply::Pid { pid: 7 }), &sup, now());
        let out = done(&mut x);
        let order = ["3.0", "<boolean>1</boolean>", "Recursive", "<int>7</int>"];
        let at: Vec<usize> =
            order.iter().map(|s| out.find(s).unwrap_or_else(|| panic!("{s}: {out}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{out}");
    }
}
