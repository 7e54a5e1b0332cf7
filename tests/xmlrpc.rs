//! supervisord's XML-RPC interface at /RPC2: Python's `xmlrpc.client` walks the methods and
//! checks the fields and types supervisord returns; the real `supervisorctl` (Debian's
//! `supervisor` package) drives Kahi as it drives supervisord; hostile bodies get faults or
//! 4xx while a killed program is still restarted.

use std::path::Path;
use std::process::Command;

use crate::http::{hash, role_users, send_raw, start};
use crate::util::*;

/// Three programs: `web` (says hello, then sleeps; RUNNING after a second), two `worker`s,
/// `cat` with a stdin pipe, and `broken`, which cannot be spawned.
const PROGRAMS: &str = r#"
[programs.web]
command = ["/bin/sh", "-c", "echo hello; exec sleep 1000"]
startsecs = 1

[programs.worker]
command = "sleep 1000"
numprocs = 2
process_name = "%(program_name)s_%(process_num)02d"
startsecs = 0

[programs.cat]
command = "cat"
stdin_pipe = true
startsecs = 0

[programs.broken]
command = "/nonexistent/program"
autostart = false
startretries = 0
"#;

/// Walks the methods as a client of supervisord would; `URL` and `DAEMON_PID` are its
/// arguments. Prints `ok` at the end; an assertion that fails ends it with a traceback.
const WALK: &str = r#"
import sys, time, xmlrpc.client as x

url, daemon_pid = sys.argv[1], int(sys.argv[2])
s = x.ServerProxy(url)
sv = s.supervisor

def fault(code, f, *args):
    try:
        f(*args)
    except x.Fault as e:
        assert e.faultCode == code, (e.faultCode, e.faultString)
        return e.faultString
    raise AssertionError("no fault %d from %r%r" % (code, f, args))

INFO = {"name": str, "group": str, "description": str, "start": int, "stop": int,
        "now": int, "state": int, "statename": str, "spawnerr": str, "exitstatus": int,
        "logfile": str, "stdout_logfile": str, "stderr_logfile": str, "pid": int}
STATES = {"STOPPED": 0, "STARTING": 10, "RUNNING": 20, "BACKOFF": 30, "STOPPING": 40,
          "EXITED": 100, "FATAL": 200, "UNKNOWN": 1000}
RESULT = {"name": str, "group": str, "status": int, "description": str}

def check(d, fields):
    assert set(d) == set(fields), sorted(set(d) ^ set(fields))
    for k, t in fields.items():
        assert type(d[k]) is t, (k, d[k])

def info(name):
    i = sv.getProcessInfo(name)
    check(i, INFO)
    assert STATES[i["statename"]] == i["state"], i
    return i

assert sv.getAPIVersion() == "3.0" and sv.getVersion() == "3.0"
assert isinstance(sv.getSupervisorVersion(), str)
assert isinstance(sv.getIdentification(), str)
assert sv.getState() == {"statecode": 1, "statename": "RUNNING"}
assert sv.getPID() == daemon_pid

every = sv.getAllProcessInfo()
assert [(p["group"], p["name"]) for p in every] == [
    ("broken", "broken"), ("cat", "cat"), ("web", "web"),
    ("worker", "worker_00"), ("worker", "worker_01")], every
for p in every:
    check(p, INFO)
web = info("web")
assert web["statename"] == "RUNNING" and web["pid"] > 0 and web["start"] > 0, web
assert web["description"].startswith("pid %d, uptime " % web["pid"]), web
assert info("worker:worker_00")["group"] == "worker"
assert info("broken")["statename"] == "STOPPED"
assert fault(10, sv.getProcessInfo, "nope") == "BAD_NAME: nope"

# Start and stop, waiting as supervisord does: startProcess answers once RUNNING.
assert "web" in fault(60, sv.startProcess, "web")
assert sv.stopProcess("web") is True
assert info("web")["statename"] == "STOPPED"
fault(70, sv.stopProcess, "web")
assert sv.startProcess("web") is True
assert info("web")["statename"] == "RUNNING"
assert sv.stopProcess("web", False) is True
while info("web")["statename"] != "STOPPED":
    time.sleep(0.01)
assert sv.startProcess("web", True) is True
fault(20, sv.startProcess, "broken")  # NO_FILE, as supervisord
assert info("broken")["spawnerr"] != ""
fault(10, sv.startProcess, "nope")

# Groups: one struct per process the action applies to.
r = sv.stopProcessGroup("worker")
assert [p["name"] for p in r] == ["worker_01", "worker_00"] or \
       sorted(p["name"] for p in r) == ["worker_00", "worker_01"], r
for p in r:
    check(p, RESULT)
    assert (p["status"], p["description"]) == (80, "OK"), p
assert sv.stopProcessGroup("worker") == []
assert len(sv.startProcessGroup("worker")) == 2
fault(10, sv.startProcessGroup, "nope")
assert [p["name"] for p in sv.startAllProcesses()] == ["broken"]
assert len(sv.signalProcessGroup("worker", "CONT")) == 2
assert len(sv.signalAllProcesses("CONT")) == 4
assert sv.signalProcess("web", "CONT") is True
assert sv.signalProcess("web", 18) is True
fault(11, sv.signalProcess, "web", "BOGUS")
fault(70, sv.signalProcess, "broken", "CONT")

# Stdin, and the logs with supervisord's offsets.
assert sv.sendProcessStdin("cat", "hi there\n") is True
while "hi there" not in sv.readProcessStdoutLog("cat", -100, 0):
    time.sleep(0.01)
fault(70, sv.sendProcessStdin, "broken", "x")
assert sv.sendRemoteCommEvent("deploy", "v2") is True
assert sv.readProcessStdoutLog("web", 0, 0).startswith("hello\n")
assert sv.readProcessLog("web", 0, 3) == "hel"
assert sv.readProcessStderrLog("web", -100, 0) == ""
fault(3, sv.readProcessStdoutLog, "web", -1, 5)
data, offset, overflow = sv.tailProcessStdoutLog("web", 0, 3)
assert (type(data), type(offset), type(overflow)) == (str, int, bool)
assert len(data) == 3 and overflow is True and offset >= 6, (data, offset, overflow)
assert sv.tailProcessStdoutLog("web", offset, 100) == ["", offset, False]
assert sv.tailProcessStderrLog("web", 0, 100) == ["", 0, False]
assert "spawned" in sv.readLog(-10000, 0)
# Kahi logs to stderr here, which is no file of its own: NO_FILE, as supervisord without one.
assert fault(20, sv.clearLog).startswith("NO_FILE: Kahi has no log file")
assert "spawned" in sv.readLog(-10000, 0)
assert sv.clearProcessLogs("web") is True
assert sv.readProcessStdoutLog("web", -100, 0) == ""
r = sv.clearAllProcessLogs()
assert len(r) == 5 and all(p["status"] == 80 for p in r), r

# The configuration.
assert sv.reloadConfig() == [[[], [], []]]
conf = sv.getAllConfigInfo()
assert [c["name"] for c in conf] == ["broken", "cat", "web", "worker_00", "worker_01"], conf
for c in conf:
    for k, t in {"name": str, "group": str, "inuse": bool, "autostart": bool,
                 "process_prio": int, "group_prio": int, "command": str,
                 "startsecs": int, "stopsignal": int, "exitcodes": list}.items():
        assert type(c[k]) is t, (k, c)

# Introspection and multicall.
methods = s.system.listMethods()
assert "supervisor.getAllProcessInfo" in methods and "system.multicall" in methods
assert "supervisor.clearLog" in methods and "supervisor.restart" in methods
for m in methods:
    assert isinstance(s.system.methodHelp(m), str)
    assert isinstance(s.system.methodSignature(m), list)
assert s.system.methodSignature("supervisor.startProcess") == ["boolean", "string", "boolean"]
fault(4, s.system.methodHelp, "nope")
assert fault(90, sv.addProcessGroup, "web") == "ALREADY_ADDED: web"
fault(91, sv.removeProcessGroup, "web")
fault(10, sv.removeProcessGroup, "nope")
fault(10, sv.addProcessGroup, "nope")
fault(1, s.nope.nothing)
fault(2, sv.getProcessInfo)
m = x.MultiCall(s)
m.supervisor.stopProcess("web")
m.supervisor.startProcess("web")
m.supervisor.getProcessInfo("web")
m.supervisor.getProcessInfo("nope")
r = m()
assert r[0] is True and r[1] is True and r[2]["statename"] == "RUNNING"
fault(10, lambda: r[3])

# restart: True at once, then every program is restarted with the file read again.
old = info("web")["pid"]
assert sv.restart() is True
end = time.time() + 20
while not (info("web")["statename"] == "RUNNING" and info("web")["pid"] != old):
    assert time.time() < end, info("web")
    time.sleep(0.01)
print("ok")
"#;

pub(crate) fn python() -> bool {
    Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn python_xmlrpc_client_gets_supervisords_methods_fields_and_faults() {
    if !python() {
        return skip("python3 is not installed");
    }
    let (d, port) = start("xmlrpc-walk", PROGRAMS);
    d.wait_state("web", "RUNNING");
    d.wait_state("cat", "RUNNING");
    let script = d.dir.write("walk.py", WALK);
    let url = format!("http://127.0.0.1:{port}/RPC2");
    let out = run(Command::new("python3").arg(&script).arg(&url).arg(d.pid().to_string()));
    assert_eq!((out.code, out.stdout.trim()), (0, "ok"), "{}\n{}", out.stderr, d.log());
}

/// Roles as the API has them, for each call of a multicall too: a client that may not make
/// one of its calls gets none made.
#[test]
fn each_call_needs_its_role() {
    if !python() {
        return skip("python3 is not installed");
    }
    let users = role_users();
    let (d, port) = start(
        "xmlrpc-roles",
        &format!("{users}[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n"),
    );
    d.wait_state("web", "RUNNING");
    let script = r#"
import sys, xmlrpc.client as x
port = sys.argv[1]
def proxy(who):
    return x.ServerProxy("http://%s127.0.0.1:%s/RPC2" % (who + "@" if who else "", port))
def refused(code, f, *args):
    try:
        f(*args)
    except x.ProtocolError as e:
        assert e.errcode == code, e
        return
    raise AssertionError("allowed: %r" % (f,))
refused(401, proxy("").supervisor.getState)
refused(401, proxy("v:wrong").supervisor.getState)
v, o, a = proxy("v:vpw"), proxy("o:opw"), proxy("a:apw")
assert v.supervisor.getAllProcessInfo()[0]["statename"] == "RUNNING"
refused(403, v.supervisor.stopProcess, "web")
m = x.MultiCall(v)
m.supervisor.getState()
m.supervisor.stopProcess("web")
refused(403, m)
assert v.supervisor.getProcessInfo("web")["statename"] == "RUNNING"
assert o.supervisor.stopProcess("web") is True
assert o.supervisor.startProcess("web") is True
refused(403, o.supervisor.reloadConfig)
refused(403, o.supervisor.shutdown)
assert a.supervisor.reloadConfig() == [[[], [], []]]
print("ok")
"#;
    let script = d.dir.write("roles.py", script);
    let out = run(Command::new("python3").arg(&script).arg(port.to_string()));
    assert_eq!((out.code, out.stdout.trim()), (0, "ok"), "{}\n{}", out.stderr, d.log());
}

/// supervisorctl, as Debian ships it.
const SUPERVISORCTL: &str = "/usr/bin/supervisorctl";

#[test]
fn the_real_supervisorctl_drives_kahi() {
    if !Path::new(SUPERVISORCTL).exists() {
        return skip("supervisorctl is not installed (apt-get install supervisor)");
    }
    let users = format!(
        "[[server.http.users]]\nname = \"admin\"\npassword_hash = \"{}\"\nrole = \"admin\"\n\n\
         [[server.http.users]]\nname = \"viewer\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n\n",
        hash("secret"),
        hash("look")
    );
    let (mut d, port) = start("xmlrpc-supervisorctl", &format!("{users}{PROGRAMS}"));
    d.wait_state("web", "RUNNING");
    // supervisorctl wants a [supervisorctl] section; its serverurl and credentials are here.
    let conf = d.dir.write(
        "supervisorctl.conf",
        &format!(
            "[supervisorctl]\nserverurl = http://127.0.0.1:{port}\nusername = admin\npassword = secret\n"
        ),
    );
    let ctl = |args: &[&str]| run(Command::new(SUPERVISORCTL).arg("-c").arg(&conf).args(args));
    let expect = |args: &[&str], code: i32, lines: &[&str]| {
        let out = ctl(args);
        for l in lines {
            assert!(out.stdout.contains(l), "{args:?}: {l:?} not in\n{}{}", out.stdout, out.stderr);
        }
        assert_eq!(out.code, code, "{args:?}:\n{}{}", out.stdout, out.stderr);
        out.stdout
    };

    // broken is STOPPED: status says 3, as supervisorctl does for a stopped process.
    let status = expect(&["status"], 3, &["web ", "RUNNING   pid ", "worker:worker_00 "]);
    assert!(status.lines().any(|l| l.starts_with("broken") && l.contains("STOPPED")), "{status}");
    expect(&["status", "web"], 0, &["web"]);
    expect(&["stop", "web"], 0, &["web: stopped"]);
    expect(&["status", "web"], 3, &["STOPPED"]);
    expect(&["start", "web"], 0, &["web: started"]);
    expect(&["start", "web"], 0, &["web: ERROR (already started)"]);
    expect(&["start", "broken"], 1, &["broken: ERROR (no such file)"]);
    expect(&["start", "nope"], 1, &["nope: ERROR (no such process)"]);
    expect(&["restart", "web"], 0, &["web: stopped\nweb: started"]);
    expect(&["stop", "worker:*"], 0, &["worker:worker_00: stopped", "worker:worker_01: stopped"]);
    expect(&["start", "worker:*"], 0, &["worker:worker_00: started", "worker:worker_01: started"]);
    expect(&["signal", "CONT", "web"], 0, &["web: signalled"]);
    expect(&["signal", "BOGUS", "web"], 1, &["web: ERROR (bad signal name)"]);
    expect(&["tail", "web"], 0, &["hello"]);
    expect(&["tail", "web", "stderr"], 0, &[]);
    expect(&["pid"], 0, &[&d.pid().to_string()]);
    let pid = d.process("web")["pid"].as_i64().unwrap();
    expect(&["pid", "web"], 0, &[&pid.to_string()]);
    expect(&["clear", "web"], 0, &["web: cleared"]);
    assert_eq!(expect(&["tail", "web"], 0, &[]).trim(), "");
    expect(&["avail"], 0, &["web", "in use", "worker:worker_01"]);
    expect(&["reread"], 0, &["No config updates to processes"]);
    expect(&["update"], 0, &[]);
    expect(&["version"], 0, &[env!("CARGO_PKG_VERSION")]);
    // A viewer reads, and is refused the rest.
    let viewer = |args: &[&str]| {
        run(Command::new(SUPERVISORCTL)
            .arg("-c")
            .arg(&conf)
            .args(["-u", "viewer", "-p", "look"])
            .args(args))
    };
    assert_eq!(viewer(&["status", "web"]).code, 0);
    let out = viewer(&["stop", "web"]);
    assert!(out.code != 0 && out.stdout.contains("403"), "{out:?}");
    assert_eq!(d.state("web"), "RUNNING", "a refused stop changed something");
    // Without the right password.
    let out = run(Command::new(SUPERVISORCTL).arg("-c").arg(&conf).args(["-p", "wrong", "status"]));
    assert!(out.code != 0 && out.stdout.contains("Server requires authentication"), "{out:?}");

    // supervisorctl's update: reloadConfig, then stopProcessGroup, removeProcessGroup and
    // addProcessGroup for each group that went, changed or came.
    let text = std::fs::read_to_string(&d.config).unwrap();
    let text = text
        .replace("[programs.cat]\ncommand = \"cat\"\nstdin_pipe = true\nstartsecs = 0\n", "")
        .replace(
            "command = \"sleep 1000\"\nnumprocs = 2",
            "command = \"sleep 1001\"\nnumprocs = 2",
        )
        + "\n[programs.extra]\ncommand = \"sleep 1000\"\nstartsecs = 0\n";
    std::fs::write(&d.config, text).unwrap();
    expect(&["reread"], 0, &["cat: disappeared", "extra: available", "worker: changed"]);
    expect(
        &["update"],
        0,
        &[
            "cat: stopped\ncat: removed process group",
            "worker: stopped\nworker: updated process group",
            "extra: added process group",
        ],
    );
    let status = expect(&["status"], 3, &["extra ", "worker:worker_00 "]);
    assert!(!status.contains("cat"), "{status}");
    d.wait_state("worker:worker_00", "RUNNING");
    assert!(d.process("worker:worker_00")["description"].is_string());
    expect(&["reread"], 0, &["No config updates to processes"]);
    // A new numprocs changes the group, both ways, and update makes it anew.
    for (from, to, names) in [(2, 3, 3), (3, 2, 2)] {
        let text = std::fs::read_to_string(&d.config).unwrap();
        let text = text.replace(
            &format!("command = \"sleep 1001\"\nnumprocs = {from}"),
            &format!("command = \"sleep 1001\"\nnumprocs = {to}"),
        );
        std::fs::write(&d.config, text).unwrap();
        expect(&["reread"], 0, &["worker: changed"]);
        expect(&["update"], 0, &["worker: stopped\nworker: updated process group"]);
        let workers = d.status().iter().filter(|p| p["group"] == "worker").count();
        assert_eq!(workers, names, "numprocs {from} -> {to}");
        d.wait_state(&format!("worker:worker_{:02}", to - 1), "RUNNING");
    }
    // And add and remove by hand.
    expect(&["remove", "web"], 1, &["ERROR: process/group still running: web"]);
    expect(&["stop", "extra"], 0, &["extra: stopped"]);
    expect(&["remove", "extra"], 0, &["extra: removed process group"]);
    expect(&["remove", "extra"], 1, &["ERROR: no such process/group: extra"]);
    expect(&["add", "extra"], 0, &["extra: added process group"]);
    expect(&["add", "extra"], 0, &["ERROR: process group already active"]);
    expect(&["add", "nope"], 1, &["ERROR: no such process/group: nope"]);
    d.wait_state("extra", "RUNNING");

    // reload: supervisord's restart, every program stopped and started with the file read
    // again.
    let before = d.process("web")["pid"].as_i64();
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text + "\n[programs.fresh]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    )
    .unwrap();
    expect(&["reload"], 0, &["Restarted supervisord"]);
    d.wait_state("fresh", "RUNNING");
    wait_until("web runs again, a new process", DEADLINE, || {
        let web = d.process("web");
        web["state"] == "RUNNING" && web["pid"].as_i64() != before
    });

    expect(&["shutdown"], 0, &["Shut down"]);
    assert_eq!(d.wait_exit(DEADLINE), 0);
}

#[test]
fn hostile_bodies_get_faults_or_4xx_while_a_killed_program_is_restarted() {
    let (d, port) =
        start("xmlrpc-hostile", "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    d.wait_state("web", "RUNNING");
    let deep = {
        let mut s =
            String::from("<methodCall><methodName>system.multicall</methodName><params><param>");
        s.push_str(&"<value><array><data>".repeat(3000));
        s
    };
    let bodies: Vec<String> = vec![
        deep,
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><methodCall><methodName>&lol2;</methodName></methodCall>".into(),
        "<methodCall><methodName>supervisor.getState</methodName><params><param><value><str".into(),
        "\u{0}\u{1}\u{ff}garbage".into(),
        "<methodCall><methodName>supervisor.startProcess</methodName><params><param><value><array><data>".into(),
        format!("<methodCall><methodName>{}</methodName></methodCall>", "x".repeat(60_000)),
        String::new(),
    ];
    let hostile = move || {
        for body in &bodies {
            let (status, _, answer) = send_raw(port, "POST", "/RPC2", "", body);
            let fault = status == 200 && answer.contains("<fault>");
            assert!(fault || (400..500).contains(&status), "{status}: {answer}");
        }
        // Larger than any request body Kahi reads.
        let huge = "x".repeat(70 << 10);
        assert_eq!(send_raw(port, "POST", "/RPC2", "", &huge).0, 413);
        assert_eq!(send_raw(port, "GET", "/RPC2", "", "").0, 405);
    };
    let flood = std::thread::spawn({
        let hostile = hostile.clone();
        move || {
            for _ in 0..5 {
                hostile();
            }
        }
    });
    restart(&d, "web", DEADLINE);
    flood.join().unwrap();
    hostile();
    // And Kahi still answers a good call.
    let good = "<?xml version=\"1.0\"?><methodCall><methodName>supervisor.getState</methodName></methodCall>";
    let (status, _, answer) = send_raw(port, "POST", "/RPC2", "", good);
    assert_eq!(status, 200);
    assert!(answer.contains("<string>RUNNING</string>"), "{answer}");
}

/// A program finds Kahi as it finds supervisord: at SUPERVISOR_SERVER_URL, through
/// supervisor.childutils where it is installed (superlance's tools do so), else plainly.
#[test]
fn programs_find_kahi_at_supervisor_server_url() {
    if !python() {
        return skip("python3 is not installed");
    }
    let dir = Dir::new("xmlrpc-server-url");
    let script = dir.write(
        "caller.py",
        r#"
import os
url = os.environ["SUPERVISOR_SERVER_URL"]
print("url", url, flush=True)
try:
    from supervisor import childutils
    rpc = childutils.getRPCInterface(os.environ)
except ImportError:
    import xmlrpc.client
    rpc = xmlrpc.client.ServerProxy(url + "/RPC2")
me = rpc.supervisor.getProcessInfo(os.environ["SUPERVISOR_PROCESS_NAME"])
print("asked", rpc.supervisor.getState()["statename"], me["statename"], me["pid"] == os.getpid(), flush=True)
"#,
    );
    let (d, port) = crate::http::start_in(
        dir,
        &format!(
            "[programs.caller]\ncommand = [\"python3\", \"{}\"]\nstartsecs = 0\nautorestart = false\n",
            script.display()
        ),
    );
    d.wait_state("caller", "EXITED");
    let out = d.ctl(&["tail", "caller"]).stdout;
    assert!(out.contains(&format!("url http://127.0.0.1:{port}\n")), "{out}");
    assert!(out.contains("asked RUNNING RUNNING True"), "{out}\n{}", d.log());
}

/// A program the restart guard holds back (it exited soon after its start) is BACKOFF, which
/// supervisord's programs are only after a failed start: supervisorctl shows Kahi's reason
/// and the wait, not "unknown error".
#[test]
fn supervisorctl_says_why_a_program_waits_to_restart() {
    if !Path::new(SUPERVISORCTL).exists() {
        return skip("supervisorctl is not installed (apt-get install supervisor)");
    }
    let (d, port) = start(
        "xmlrpc-backoff",
        "[programs.flaky]\ncommand = [\"/bin/sh\", \"-c\", \"exit 1\"]\nstartsecs = 0\n",
    );
    let conf = d.dir.write("supervisorctl.conf", "[supervisorctl]\n");
    let url = format!("http://127.0.0.1:{port}");
    let status = || {
        run(Command::new(SUPERVISORCTL).arg("-c").arg(&conf).args(["-s", &url, "status", "flaky"]))
            .stdout
    };
    let mut line = String::new();
    wait_until("supervisorctl sees flaky in BACKOFF", DEADLINE, || {
        line = status();
        line.contains("BACKOFF")
    });
    assert!(line.contains("exit status 1, restarting in "), "{line}");
    assert!(!line.contains("unknown error"), "{line}");
}

/// supervisorctl's `tail -f` reads supervisord's /logtail: the end of the log, then each new
/// byte, as plain text.
#[test]
fn supervisorctl_tail_f_follows_a_log() {
    if !Path::new(SUPERVISORCTL).exists() {
        return skip("supervisorctl is not installed (apt-get install supervisor)");
    }
    let (d, port) = start(
        "xmlrpc-tail-f",
        "[programs.ticker]\ncommand = [\"/bin/sh\", \"-c\", \"i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done\"]\nstartsecs = 0\n",
    );
    d.wait_state("ticker", "RUNNING");
    let conf = d.dir.write("supervisorctl.conf", "[supervisorctl]\n");
    let url = format!("http://127.0.0.1:{port}");
    let mut child = d
        .dir
        .command(SUPERVISORCTL)
        .arg("-c")
        .arg(&conf)
        .args(["-s", &url, "tail", "-f", "ticker"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (rx, reader) = lines_of(stdout);
    // Lines keep coming, in order, one after the other: a follow, not a read.
    let mut ticks = Vec::new();
    let end = std::time::Instant::now() + DEADLINE;
    while ticks.len() < 20 {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(n) = line.strip_prefix("tick ") {
                    ticks.push(n.parse::<u64>().unwrap());
                }
            }
            Err(_) => panic!("tail -f gave {ticks:?} within {DEADLINE:?}\n{}", d.log()),
        }
    }
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{ticks:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
}
