//! The tables inside a program: `[programs.NAME.healthcheck]` and `[programs.NAME.limits]`.

use super::server::address;
use super::*;

/// `[programs.NAME.healthcheck]` being read. Its `Default` holds the keys' defaults.
pub struct HealthDraft {
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) retries: u32,
    pub(super) start_period: Duration,
    pub(super) on_failure: HealthAction,
    /// What exec, tcp and http asked for: exactly one is right.
    pub(super) probes: Vec<Probe>,
    /// expect_status, inclusive.
    pub(super) status: (u16, u16),
    pub(super) body: Option<String>,
    pub(super) http_at: Option<At>,
}

impl Default for HealthDraft {
    fn default() -> Self {
        HealthDraft {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
            on_failure: HealthAction::Restart,
            probes: Vec::new(),
            status: (200, 399),
            body: None,
            http_at: None,
        }
    }
}

impl<'s> Loader<'s, '_> {
    /// `[programs.NAME.healthcheck]`: exactly one of exec, tcp, http, and how often and how
    /// strictly to run it. A tcp or http address is looked up here, once: a probe runs on the
    /// event loop, which must not wait for a resolver.
    pub(super) fn healthcheck(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<HealthCheck> {
        let t = self.table(at, v)?.clone();
        let mut d = HealthDraft::default();
        self.fields(at, &t, Section::Healthcheck, &mut d, |l, at, name, v, d| match name {
            "exec" => {
                if let Some(argv) = l.command(at, v, &Vars::default()) {
                    d.probes.push(Probe::Exec(argv));
                }
            }
            "tcp" => {
                let Some(a) = l.string(at, v) else { return };
                match a.rsplit_once(':') {
                    Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                        match address(&a) {
                            Ok(addr) => d.probes.push(Probe::Tcp(addr)),
                            Err(e) => l.error(at, e),
                        }
                    }
                    _ => l.error(at, format!("expected HOST:PORT, found {a:?}")),
                }
            }
            "http" => {
                let Some(url) = l.string(at, v) else { return };
                let Some(rest) = url.strip_prefix("http://") else {
                    l.error(at, format!("expected an http:// URL, found {url:?}"));
                    return;
                };
                let (hostport, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                let addr = if hostport.contains(':') && !hostport.ends_with(']') {
                    hostport.to_string()
                } else {
                    format!("{hostport}:80")
                };
                d.http_at = Some(at.clone());
                match address(&addr) {
                    Ok(addr) => d.probes.push(Probe::Http {
                        addr,
                        host: hostport.to_string(),
                        path: path.to_string(),
                        status: (0, 0),
                        body: None,
                    }),
                    Err(e) => l.error(at, e),
                }
            }
            "expect_status" => {
                let range = match v.get_ref() {
                    DeValue::Integer(_) => l.integer(at, v, 100, 599).map(|n| (n as u16, n as u16)),
                    DeValue::String(s) => s.split_once('-').and_then(|(a, b)| {
                        Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                    }),
                    _ => None,
                };
                match range {
                    Some((a, b)) if (100..=599).contains(&a) && a <= b && b <= 599 => {
                        d.status = (a, b)
                    }
                    _ => l.error(
                        at,
                        format!("expected a status such as 200 or a range such as \"200-399\", found {}", describe(v.get_ref())),
                    ),
                }
            }
            "expect_body" => d.body = l.string(at, v),
            // Every other key has its reader in KEYS; a test reads each.
            _ => {}
        });
        if d.interval.is_zero() || d.timeout.is_zero() {
            self.error(at, "interval and timeout must be more than 0");
            return None;
        }
        if d.probes.len() != 1 {
            self.error(
                at,
                format!("needs exactly one of exec, tcp and http, found {}", d.probes.len()),
            );
            return None;
        }
        let mut probe = d.probes.remove(0);
        match &mut probe {
            Probe::Http { status, body, .. } => {
                *status = d.status;
                *body = d.body;
            }
            _ if d.body.is_some() || d.status != HealthDraft::default().status => {
                let place = d.http_at.unwrap_or_else(|| at.clone());
                self.error(&place, "expect_status and expect_body apply to http checks only");
            }
            _ => {}
        }
        Some(HealthCheck {
            probe,
            interval: d.interval,
            timeout: d.timeout,
            retries: d.retries,
            start_period: d.start_period,
            on_failure: d.on_failure,
        })
    }

    /// `[programs.NAME.limits]`: resource name -> a number, a size, or "unlimited".
    pub(super) fn limits(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
    ) -> (Vec<(Limit, Option<u64>)>, CgroupLimits) {
        let mut cgroup = CgroupLimits::default();
        let Some(t) = self.table(at, v).cloned() else { return (Vec::new(), cgroup) };
        let mut out = Vec::new();
        for (k, v) in t.iter() {
            let at = self.child(at, v, k.get_ref());
            // "max" is the cgroup's own default: no limit.
            let max = matches!(v.get_ref(), DeValue::String(s) if s.as_ref() == "max");
            match k.get_ref().as_ref() {
                "memory_max" => {
                    cgroup.memory_max =
                        if max { None } else { self.size(&at, v).map(|n| n as u64) };
                    continue;
                }
                "pids_max" => {
                    cgroup.pids_max = if max {
                        None
                    } else {
                        self.integer(&at, v, 1, i64::MAX).map(|n| n as u64)
                    };
                    continue;
                }
                "cpu_max" => {
                    cgroup.cpu_quota_us = if max { None } else { self.cpus(&at, v) };
                    continue;
                }
                _ => {}
            }
            let Some(limit) = Limit::ALL.iter().copied().find(|l| l.name() == k.get_ref().as_ref())
            else {
                self.unknown(&at, k.span(), Section::Limits, k.get_ref().as_ref());
                continue;
            };
            let value = match v.get_ref() {
                DeValue::String(s) if s.eq_ignore_ascii_case("unlimited") => Some(None),
                DeValue::String(s) if limit.is_bytes() => parse_size(s).map(Some),
                DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok().map(Some),
                _ => None,
            };
            match value {
                // The kernel caps open files at fs.nr_open, and refuses any more.
                Some(None) if limit == Limit::Nofile => self.error(
                    &at,
                    format!(
                        "open files cannot be unlimited: the kernel allows at most fs.nr_open ({} here)",
                        std::fs::read_to_string("/proc/sys/fs/nr_open")
                            .map_or_else(|_| "1048576 by default".to_string(), |s| s.trim().to_string())
                    ),
                ),
                Some(n) => out.push((limit, n)),
                None => self.error(
                    &at,
                    format!(
                        "expected an integer >= 0{} or \"unlimited\", found {}",
                        if limit.is_bytes() { ", a size such as \"1GB\"" } else { "" },
                        describe(v.get_ref())
                    ),
                ),
            }
        }
        (out, cgroup)
    }

    /// `cpu_max`: CPUs as a number (0.5 is half of one CPU, 2 is two) or a percentage string
    /// ("50%", as systemd's CPUQuota); the quota per 100 ms period, in microseconds.
    pub(super) fn cpus(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<u64> {
        let cpus = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::String(s) => {
                s.strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()).map(|p| p / 100.0)
            }
            _ => None,
        };
        match cpus {
            Some(c) if (0.01..=10_000.0).contains(&c) => {
                Some((c * CPU_PERIOD_US as f64).round() as u64)
            }
            _ => {
                self.error(
                    at,
                    format!(
                        "expected a number of CPUs from 0.01 (such as 0.5 or 2), a percentage such as \"50%\", or \"max\", found {}",
                        describe(v.get_ref())
                    ),
                );
                None
            }
        }
    }
}
