//! Secret masking: the values of a program's secret environment variables are replaced by
//! `****` in everything Kahi keeps or shows of its output (ring buffer, log files, console,
//! `tail`). Which variables are secret: those named in `mask_env`, and any whose name ends in
//! one of [`SECRET_SUFFIXES`]. No I/O here.

/// Variable names ending in one of these are secret without being named.
pub const SECRET_SUFFIXES: &[&str] = &["_PASSWORD", "_SECRET", "_TOKEN", "_KEY"];

/// Values of fewer bytes are not masked by the suffix rule: masking `1` or `no` everywhere
/// would ruin the log and hide nothing.
pub const MIN_IMPLICIT_LEN: usize = 4;

/// What replaces a secret.
pub const MASK: &[u8] = b"****";

/// The secret values among `vars`, longest first (so a secret containing another is masked
/// whole). `named` lists the names given in `mask_env`.
pub fn secrets<'a>(
    vars: impl Iterator<Item = (&'a str, &'a str)>,
    named: &[String],
) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (name, value) in vars {
        let explicit = named.iter().any(|n| n == name);
        let implicit =
            SECRET_SUFFIXES.iter().any(|s| name.ends_with(s)) && value.len() >= MIN_IMPLICIT_LEN;
        if (explicit || implicit) && !value.is_empty() && !out.iter().any(|v| v == value.as_bytes())
        {
            out.push(value.as_bytes().to_vec());
        }
    }
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out
}

/// `line` with every secret replaced by [`MASK`], appended to `out`.
pub fn mask_into(out: &mut Vec<u8>, line: &[u8], secrets: &[Vec<u8>]) {
    let mut i = 0;
    'scan: while i < line.len() {
        for s in secrets {
            if line[i..].starts_with(s) {
                out.extend_from_slice(MASK);
                i += s.len();
                continue 'scan;
            }
        }
        out.push(line[i]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_variables_are_secret() {
        let vars = [
            ("DB_PASSWORD", "hunter22"),
            ("API_TOKEN", "abc"), // too short for the suffix rule
            ("PLAIN", "visible"),
            ("MINE", "x1"),
            ("AWS_SECRET", "hunter22-long"),
        ];
        let s = secrets(vars.iter().map(|(a, b)| (*a, *b)), &["MINE".to_string()]);
        assert_eq!(s, [b"hunter22-long".to_vec(), b"hunter22".to_vec(), b"x1".to_vec()]);
    }

    #[test]
    fn masks_every_occurrence_longest_first() {
        let secrets = vec![b"hunter22-long".to_vec(), b"hunter22".to_vec()];
        let mut out = Vec::new();
        mask_into(&mut out, b"pw=hunter22 and hunter22-long, hunter2", &secrets);
        assert_eq!(out, b"pw=**** and ****, hunter2");
        let mut out = Vec::new();
        mask_into(&mut out, b"nothing here", &[]);
        assert_eq!(out, b"nothing here");
    }
}
