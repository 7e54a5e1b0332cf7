//! Wall-clock timestamps for display (RFC 3339, UTC, milliseconds), without a time crate; and
//! supervisord's local `Dec 05 01:09 PM`.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-23T09:30:00.123Z` for now.
pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

/// `2026-11-23T09:30:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// `secs` since the epoch in local time as supervisord shows a stopped process's stop time
/// (`%b %d %I:%M %p` in the C locale): `Dec 05 01:09 PM`.
pub fn supervisord_local(secs: i64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // time_t, whose width the target decides (named, it is deprecated on musl).
    let t = secs as _;
    // SAFETY: localtime_r writes only into `tm`, which outlives the call; a zeroed tm is a
    // valid value of the plain C struct.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return String::new();
        }
        tm
    };
    let hour = match tm.tm_hour % 12 {
        0 => 12,
        h => h,
    };
    format!(
        "{} {:02} {hour:02}:{:02} {}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_min,
        if tm.tm_hour < 12 { "AM" } else { "PM" }
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_429_800)),
            "2026-11-23T10:30:00.000Z"
        );
    }

    #[test]
    fn supervisords_local_stop_time_has_its_shape() {
        // The zone is the machine's: the shape is what is checked here, the value against
        // supervisord itself in tests/xmlrpc_parity.rs.
        let s = supervisord_local(1_795_429_800);
        let b = s.as_bytes();
        assert_eq!(s.len(), 15, "{s}");
        assert!(s.starts_with("Nov ") || s.starts_with("Dec "), "{s}");
        assert!(s.ends_with(" AM") || s.ends_with(" PM"), "{s}");
        assert_eq!((b[3], b[6], b[9]), (b' ', b' ', b':'), "{s}");
    }
}
