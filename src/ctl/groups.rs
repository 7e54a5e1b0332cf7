//! The commands supervisorctl makes of several calls, made of the same calls here, on one
//! connection, with its lines and exit statuses: `pid NAME...`, `update [GROUP...]`, `add`,
//! `remove`.

use std::collections::BTreeSet;

use super::{Client, exit};
use crate::api::{ApiError, NameResult, Outcome, ProcessInfo, Reply, Request};
use crate::supervisor::Changes;

/// `pid NAME...` (`all`: every process's, one a line). A name that is not there prints
/// `No such process NAME` (exit 1); a pid of 0, a process that is not running, exits 7.
pub(super) fn pid(mut client: Client, names: Vec<String>) -> Result<i32, String> {
    if names.iter().any(|n| n == "all") {
        for p in statuses(&mut client)? {
            println!("{}", p.pid.unwrap_or(0));
        }
        return Ok(exit::OK);
    }
    let mut code = exit::OK;
    for name in names {
        match client.call(&Request::Pid { name: Some(name.clone()) })? {
            Ok(Reply::Pid { pid }) => {
                println!("{pid}");
                if pid == 0 {
                    code = exit::DAEMON_DOWN;
                }
            }
            Ok(other) => return Err(format!("unexpected reply: {other:?}")),
            Err(e) if e.code == crate::api::ErrorCode::NotFound => {
                println!("No such process {name}");
                code = exit::GENERIC;
            }
            Err(e) => {
                eprintln!("kahi: {}", e.error);
                code = exit::GENERIC;
            }
        }
    }
    Ok(code)
}

/// Every process, as `status` shows it.
fn statuses(client: &mut Client) -> Result<Vec<ProcessInfo>, String> {
    match client.call(&Request::Status { names: Vec::new() })? {
        Ok(Reply::Status { processes, .. }) => Ok(processes),
        Ok(other) => Err(format!("unexpected reply: {other:?}")),
        Err(e) => Err(e.error),
    }
}

/// A namespec's group: `GROUP:NAME`, or a name alone, its own group.
fn group_of(namespec: &str) -> &str {
    namespec.split_once(':').map_or(namespec, |(g, _)| g)
}

/// Changes by group, as supervisord reports them: a group the file no longer has is removed,
/// one that was not there is added, any other with a change is changed.
#[derive(Debug, Default, PartialEq)]
struct GroupChanges {
    added: BTreeSet<String>,
    changed: BTreeSet<String>,
    removed: BTreeSet<String>,
}

fn by_group(before: &[ProcessInfo], after: &BTreeSet<String>, c: &Changes) -> GroupChanges {
    let was: BTreeSet<&str> = before.iter().map(|p| p.group.as_str()).collect();
    let mut out = GroupChanges::default();
    let all = c.added.iter().chain(&c.changed).chain(&c.removed);
    for g in all.map(|n| group_of(n)).collect::<BTreeSet<&str>>() {
        let list = if !was.contains(g) {
            &mut out.added
        } else if !after.contains(g) {
            &mut out.removed
        } else {
            &mut out.changed
        };
        list.insert(g.to_string());
    }
    out
}

/// `update`: the configuration file applied as the daemon applies it, process by process.
/// With GROUP names, supervisorctl's way, by group: each named group that went is stopped and
/// removed, each that changed stopped, removed and added again, each that is new added; the
/// rest of the file is left for later.
pub(super) fn update(client: Client, groups: Vec<String>) -> Result<i32, String> {
    if groups.is_empty() || groups.iter().any(|g| g == "all") {
        return super::exchange(client, &Request::Update {}, false);
    }
    update_groups(client, groups)
}

fn update_groups(mut client: Client, groups: Vec<String>) -> Result<i32, String> {
    let before = statuses(&mut client)?;
    let changes = match client.call(&Request::Reread {})? {
        Ok(Reply::Changes { changes }) => changes,
        Ok(other) => return Err(format!("unexpected reply: {other:?}")),
        Err(e) => return Ok(refused(&e)),
    };
    let after: BTreeSet<String> = match client.call(&Request::Avail {})? {
        Ok(Reply::Avail { programs }) => programs.into_iter().map(|p| p.group).collect(),
        Ok(other) => return Err(format!("unexpected reply: {other:?}")),
        Err(e) => return Ok(refused(&e)),
    };
    let by = by_group(&before, &after, &changes);
    let mut code = exit::OK;
    let known: BTreeSet<&str> =
        before.iter().map(|p| p.group.as_str()).chain(after.iter().map(String::as_str)).collect();
    for g in &groups {
        if !known.contains(g.as_str()) {
            println!("ERROR: no such group: {g}");
            code = exit::GENERIC;
        }
    }
    let named = |g: &&String| groups.contains(g);
    for g in by.removed.iter().filter(named) {
        let results = stop_group(&mut client, g)?;
        println!("{g}: stopped");
        if results.iter().any(|r| !matches!(r.outcome, Outcome::Stopped | Outcome::NotRunning)) {
            println!("{g}: has problems; not removing");
            code = exit::GENERIC;
            continue;
        }
        client.call(&Request::Remove { name: g.clone() })?.map_err(|e| e.error)?;
        println!("{g}: removed process group");
    }
    for g in by.changed.iter().filter(named) {
        stop_group(&mut client, g)?;
        println!("{g}: stopped");
        client.call(&Request::Remove { name: g.clone() })?.map_err(|e| e.error)?;
        client.call(&Request::Add { name: g.clone() })?.map_err(|e| e.error)?;
        println!("{g}: updated process group");
    }
    for g in by.added.iter().filter(named) {
        client.call(&Request::Add { name: g.clone() })?.map_err(|e| e.error)?;
        println!("{g}: added process group");
    }
    Ok(code)
}

/// A request the daemon refused (a configuration that does not load, a shutdown under way):
/// its reason, exit 1.
fn refused(e: &ApiError) -> i32 {
    println!("ERROR: {}", e.error);
    exit::GENERIC
}

fn stop_group(client: &mut Client, group: &str) -> Result<Vec<NameResult>, String> {
    let names = vec![format!("{group}:*")];
    match client.call(&Request::Stop { names, wait: true })? {
        Ok(Reply::Results { results }) => Ok(results),
        Ok(other) => Err(format!("unexpected reply: {other:?}")),
        Err(e) => Err(e.error),
    }
}

/// `add GROUP...`: each group the file has and the daemon not yet, started.
pub(super) fn add(mut client: Client, groups: Vec<String>) -> Result<i32, String> {
    let mut code = exit::OK;
    for g in groups {
        match client.call(&Request::Add { name: g.clone() })? {
            Ok(Reply::Changes { .. }) => println!("{g}: added process group"),
            Ok(Reply::Results { results }) => match results.first().map(|r| r.outcome) {
                // supervisorctl says so, and sets no exit status.
                Some(Outcome::AlreadyAdded) => println!("ERROR: process group already active"),
                _ => {
                    println!("ERROR: no such process/group: {g}");
                    code = exit::GENERIC;
                }
            },
            Ok(other) => return Err(format!("unexpected reply: {other:?}")),
            Err(e) => code = refused(&e),
        }
    }
    Ok(code)
}

/// `remove GROUP...`: each group whose processes are all down, forgotten.
pub(super) fn remove(mut client: Client, groups: Vec<String>) -> Result<i32, String> {
    let mut code = exit::OK;
    for g in groups {
        match client.call(&Request::Remove { name: g.clone() })? {
            Ok(Reply::Changes { .. }) => println!("{g}: removed process group"),
            Ok(Reply::Results { results }) => {
                code = exit::GENERIC;
                match results.first().map(|r| r.outcome) {
                    Some(Outcome::StillRunning) => {
                        println!("ERROR: process/group still running: {g}")
                    }
                    _ => println!("ERROR: no such process/group: {g}"),
                }
            }
            Ok(other) => return Err(format!("unexpected reply: {other:?}")),
            Err(e) => code = refused(&e),
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: &str, name: &str) -> ProcessInfo {
        let mut p: ProcessInfo = serde_json::from_value(serde_json::json!({
            "name": name, "group": group, "program": name, "state": "RUNNING", "statecode": 20,
            "pid": null, "exitstatus": null, "uptime_secs": null, "start_time": null,
            "stop_time": null, "restarts": 0, "spawnerr": null, "description": ""
        }))
        .unwrap();
        p.name = name.to_string();
        p
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn changes_are_told_by_group_as_supervisord_tells_them() {
        let before = [
            info("web", "web"),
            info("pool", "pool:a"),
            info("pool", "pool:b"),
            info("old", "old"),
        ];
        let changes = Changes {
            added: vec!["pool:c".into(), "new".into()],
            changed: vec!["web".into()],
            removed: vec!["old".into(), "pool:b".into()],
        };
        let by = by_group(&before, &set(&["web", "pool", "new"]), &changes);
        assert_eq!(by.added, set(&["new"]));
        assert_eq!(by.changed, set(&["pool", "web"]));
        assert_eq!(by.removed, set(&["old"]));
    }
}
