//! Kahi's XML-RPC beside supervisord's own, on one supervisord.conf: the real `supervisord`
//! (Debian's `supervisor` package) and `kahi daemon` each run the same programs from the same
//! text, and Python's `xmlrpc.client` asks both the same questions. Every field of
//! getAllProcessInfo and getAllConfigInfo must be there with supervisord's type, and the
//! values that do not name a path or a time must be equal.

use std::process::Command;

use crate::ctl_habits::{SUPERVISORCTL, SUPERVISORD, Supervisord, said};
use crate::util::*;

/// The programs, as supervisord reads them: one that takes a second to be RUNNING, two
/// instances of another, one with a stdin, one whose command does not exist.
const PROGRAMS: &str = "[program:web]\ncommand=/bin/sh -c 'echo hello; exec sleep 1000'\n\
    startsecs=1\n\n\
    [program:worker]\ncommand=/bin/sleep 1000\nnumprocs=2\n\
    process_name=%(program_name)s_%(process_num)02d\nstartsecs=0\n\n\
    [program:cat]\ncommand=/bin/cat\nstartsecs=0\n\n\
    [program:broken]\ncommand=/nonexistent/program\nautostart=false\nstartretries=0\n\n\
    [program:quitter]\ncommand=/bin/sh -c 'exit 3'\nautostart=false\nstartretries=0\n\n\
    [program:done]\ncommand=/bin/sh -c 'exit 3'\nautostart=false\nstartsecs=0\nautorestart=false\n\n\
    [group:back]\nprograms=cat\n";

/// Asks both the same questions; prints `ok` or fails with what differs.
const COMPARE: &str = r#"
import re, sys, time, xmlrpc.client as x

kahi, sup = x.ServerProxy(sys.argv[1]), x.ServerProxy(sys.argv[2])
problems = []

def fault(f, *args):
    try:
        f(*args)
    except x.Fault as e:
        return e.faultCode
    return None

def by_name(rows):
    return {(r["group"], r["name"]): r for r in rows}

# Values that differ by nature: paths in each daemon's own directory, times, pids, uptimes.
PATHS = {"logfile", "stdout_logfile", "stderr_logfile", "directory", "serverurl"}
TIMES = {"start", "stop", "now", "pid"}

def compare(what, k_rows, s_rows, skip):
    k, s = by_name(k_rows), by_name(s_rows)
    if sorted(k) != sorted(s):
        problems.append("%s: names %s, supervisord %s" % (what, sorted(k), sorted(s)))
        return
    for key in sorted(s):
        a, b = k[key], s[key]
        if set(a) != set(b):
            problems.append("%s %s: fields missing %s, extra %s"
                            % (what, key, sorted(set(b) - set(a)), sorted(set(a) - set(b))))
        for f in sorted(set(a) & set(b)):
            if type(a[f]) is not type(b[f]):
                problems.append("%s %s %s: %s %r, supervisord %s %r"
                                % (what, key, f, type(a[f]).__name__, a[f], type(b[f]).__name__, b[f]))
            elif f not in skip and a[f] != b[f]:
                problems.append("%s %s %s: %r, supervisord %r" % (what, key, f, a[f], b[f]))

def settled(proxy):
    rows = proxy.supervisor.getAllProcessInfo()
    return all(r["statename"] in ("RUNNING", "STOPPED") for r in rows)

end = time.time() + 30
while not (settled(kahi) and settled(sup)):
    if time.time() > end:
        sys.exit("not settled: %r / %r" % (kahi.supervisor.getAllProcessInfo(),
                                           sup.supervisor.getAllProcessInfo()))
    time.sleep(0.1)

for m in ("getAPIVersion", "getState"):
    a, b = getattr(kahi.supervisor, m)(), getattr(sup.supervisor, m)()
    if a != b:
        problems.append("%s: %r, supervisord %r" % (m, a, b))

# A running process's description is "pid N, uptime H:MM:SS" in both.
UPTIME = re.compile(r"^pid \d+, uptime \d+:\d\d:\d\d$")
k_info, s_info = kahi.supervisor.getAllProcessInfo(), sup.supervisor.getAllProcessInfo()
for r in k_info:
    if r["statename"] == "RUNNING" and not UPTIME.match(r["description"]):
        problems.append("description of %s: %r" % (r["name"], r["description"]))
compare("getAllProcessInfo", k_info, s_info, PATHS | TIMES | {"description"})
compare("getAllConfigInfo", kahi.supervisor.getAllConfigInfo(),
        sup.supervisor.getAllConfigInfo(), PATHS)

one = ("back:cat",)
a, b = kahi.supervisor.getProcessInfo(*one), sup.supervisor.getProcessInfo(*one)
compare("getProcessInfo", [a], [b], PATHS | TIMES | {"description"})

# The same faults for the same mistakes.
for call, args in (("getProcessInfo", ("nosuch",)), ("startProcess", ("broken",)),
                   ("startProcess", ("web",)), ("stopProcess", ("broken",)),
                   ("signalProcess", ("broken", "HUP")), ("signalProcess", ("web", "NOSUCH")),
                   ("readProcessStdoutLog", ("nosuch", 0, 10)), ("startProcessGroup", ("nosuch",))):
    a, b = fault(getattr(kahi.supervisor, call), *args), fault(getattr(sup.supervisor, call), *args)
    if a != b:
        problems.append("%s%r: fault %r, supervisord %r" % (call, args, a, b))

# Stopped by its stop signal: the same state, and supervisord's -1 for the signal.
for p in (kahi, sup):
    p.supervisor.stopProcess("back:cat")
compare("getProcessInfo after a stop", [kahi.supervisor.getProcessInfo("back:cat")],
        [sup.supervisor.getProcessInfo("back:cat")], PATHS | TIMES | {"description"})

# A start that ends too quickly (FATAL), and one that ends at once but counts as started
# (EXITED): the same answer to the first start (supervisord's answer to the second depends
# on whether the child has exited when it first looks), the same state and exit status after.
for name, final in (("quitter", "FATAL"), ("done", "EXITED")):
    a, b = fault(kahi.supervisor.startProcess, name), fault(sup.supervisor.startProcess, name)
    if a != b and name == "quitter":
        problems.append("startProcess(%r): fault %r, supervisord %r" % (name, a, b))
    end = time.time() + 30
    while not all(p.supervisor.getProcessInfo(name)["statename"] == final for p in (kahi, sup)):
        if time.time() > end:
            sys.exit("%s not %s: %r / %r" % (name, final, kahi.supervisor.getProcessInfo(name),
                                             sup.supervisor.getProcessInfo(name)))
        time.sleep(0.1)
    skip = PATHS | TIMES | ({"description"} if final == "EXITED" else set())
    compare("getProcessInfo", [kahi.supervisor.getProcessInfo(name)],
            [sup.supervisor.getProcessInfo(name)], skip)

missing = set(sup.system.listMethods()) - set(kahi.system.listMethods())
if missing:
    problems.append("methods supervisord has and Kahi lacks: %s" % sorted(missing))
for m in ("supervisor.getState", "supervisor.startProcess", "supervisor.getAllProcessInfo",
          "supervisor.tailProcessStdoutLog"):
    a, b = kahi.system.methodSignature(m), sup.system.methodSignature(m)
    if a != b:
        problems.append("methodSignature(%s): %r, supervisord %r" % (m, a, b))

if problems:
    sys.exit("\n".join(problems))
print("ok")
"#;

/// supervisord and Kahi on the same programs, from the same text but for their ports: each
/// with its XML-RPC on loopback, at the ports returned (Kahi's, supervisord's).
fn both() -> Option<(Dir, Supervisord, Daemon, u16, u16)> {
    if !std::path::Path::new(SUPERVISORD).exists() {
        skip("supervisord is not installed (Debian's supervisor package)");
        return None;
    }
    let (k_port, s_port) = (free_port(), free_port());
    let sup_dir = Dir::new("xmlrpc-parity-supervisord");
    let sup = Supervisord::start(
        &sup_dir,
        &format!("[inet_http_server]\nport=127.0.0.1:{s_port}\n\n{PROGRAMS}"),
    );
    let dir = Dir::new("xmlrpc-parity-kahi");
    let socket = dir.join("supervisor.sock");
    // kahi ctl's socket, beside supervisorctl's.
    let control = dir.join("supervisor.kahi.sock");
    let text = format!(
        "[unix_http_server]\nfile={}\n\n[inet_http_server]\nport=127.0.0.1:{k_port}\n\n\
         [supervisord]\nchildlogdir={}\n\n{PROGRAMS}",
        path_str(&socket),
        path_str(&dir.path)
    );
    let config = dir.write("supervisord.conf", &text);
    let d = Daemon::launch(dir, config, control, &[]);
    sup.wait_state("web", "RUNNING");
    d.wait_state("web", "RUNNING");
    Some((sup_dir, sup, d, k_port, s_port))
}

#[test]
fn kahi_and_supervisord_answer_alike_on_one_supervisord_conf() {
    if !crate::xmlrpc::python() {
        return skip("python3 is not installed");
    }
    let Some((_sup_dir, _sup, d, k_port, s_port)) = both() else { return };
    let script = d.dir.write("compare.py", COMPARE);
    let out = run(Command::new("python3").arg(&script).args([
        format!("http://127.0.0.1:{k_port}/RPC2"),
        format!("http://127.0.0.1:{s_port}/RPC2"),
    ]));
    assert_eq!((out.code, out.stdout.trim()), (0, "ok"), "{}\n{}", out.stderr, d.log());
}

/// supervisorctl's commands, each against supervisord and against Kahi in turn, in an order that
/// takes both through the same states: the same lines (a pid and uptime cut, sorted) and the
/// same exit status from each.
#[test]
fn the_stock_supervisorctl_says_the_same_of_kahi_as_of_supervisord() {
    let Some((sup_dir, sup, d, k_port, s_port)) = both() else { return };
    let conf = |dir: &Dir, port: u16| {
        dir.write(
            &format!("ctl-{port}.conf"),
            &format!("[supervisorctl]\nserverurl=http://127.0.0.1:{port}\n"),
        )
    };
    let (k_conf, s_conf) = (conf(&d.dir, k_port), conf(&sup_dir, s_port));
    let ctl = |conf: &std::path::Path, args: &[&str]| {
        run(Command::new(SUPERVISORCTL).arg("-c").arg(conf).args(args))
    };
    // Lines only where both print the same thing; the exit status for the rest.
    let steps: &[(&[&str], bool)] = &[
        (&["status"], true),
        (&["status", "web", "back:cat"], true),
        (&["status", "nosuch"], true),
        (&["stop", "web"], true),
        (&["status", "web"], true),
        (&["stop", "web"], true),
        (&["start", "web"], true),
        (&["start", "web"], true),
        (&["start", "broken"], true),
        (&["start", "nosuch"], true),
        (&["restart", "web"], true),
        (&["stop", "worker:*"], true),
        (&["start", "worker:*"], true),
        (&["signal", "CONT", "web"], true),
        (&["signal", "BOGUS", "web"], true),
        (&["signal", "HUP", "broken"], true),
        (&["tail", "web"], true),
        (&["tail", "-3", "web"], true),
        (&["tail", "web", "stderr"], true),
        (&["pid", "web"], false),
        (&["pid", "broken"], true),
        (&["clear", "web"], true),
        (&["tail", "web"], true),
        (&["avail"], true),
        (&["reread"], true),
        (&["update"], true),
        (&["remove", "web"], true),
        (&["stop", "web"], true),
        (&["remove", "web"], true),
        (&["remove", "web"], true),
        (&["add", "web"], true),
        (&["add", "web"], true),
        (&["add", "nosuch"], true),
        (&["maintail", "-10"], false),
    ];
    for (args, lines) in steps {
        let (k, s) = (ctl(&k_conf, args), ctl(&s_conf, args));
        assert_eq!(k.code, s.code, "{args:?}: Kahi {k:?}\nsupervisord {s:?}\n{}", d.log());
        if *lines {
            assert_eq!(said(&k), said(&s), "{args:?}:\nKahi {k:?}\nsupervisord {s:?}");
        }
        if args == &["add", "web"] {
            // Both start it: wait, so that the next step finds the same state in each.
            d.wait_state("web", "RUNNING");
            sup.wait_state("web", "RUNNING");
        }
    }
}
