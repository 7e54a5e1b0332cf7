//! `strip_ansi`: removes ANSI escape sequences (ECMA-48 CSI, OSC and other string controls,
//! and two-byte escapes) from a byte stream. The state carries across calls, so a sequence
//! split between two reads of a pipe is still removed whole. No I/O here.
//!
//! A malformed sequence ends at the first byte that cannot belong to it, and that byte is
//! kept; a string control (OSC, DCS, …) also ends at a newline, so a missing terminator
//! costs at most the rest of one line.

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Text,
    /// After ESC.
    Esc,
    /// After ESC and intermediate bytes (`ESC ( B`).
    EscIntermediate,
    /// Inside `ESC [` … final byte.
    Csi,
    /// Inside a string control (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`, `ESC _`) until BEL or ST.
    Str,
    /// ESC seen inside a string control: `\` ends it.
    StrEsc,
}

/// The stripping state of one stream.
#[derive(Debug, Default)]
pub struct Stripper {
    state: State,
}

impl Stripper {
    /// Appends `data` without its escape sequences to `out`.
    pub fn strip(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::Text {
                // Copy plain text up to the next ESC in one go.
                match data[i..].iter().position(|&b| b == ESC) {
                    None => {
                        out.extend_from_slice(&data[i..]);
                        return;
                    }
                    Some(n) => {
                        out.extend_from_slice(&data[i..i + n]);
                        self.state = State::Esc;
                        i += n + 1;
                        continue;
                    }
                }
            }
            let b = data[i];
            let (next, consumed) = match (self.state, b) {
                (State::Text, _) => unreachable!("handled above"),
                (State::Esc, b'[') => (State::Csi, true),
                (State::Esc, b']' | b'P' | b'X' | b'^' | b'_') => (State::Str, true),
                (State::Esc | State::EscIntermediate, 0x20..=0x2f) => {
                    (State::EscIntermediate, true)
                }
                (State::Esc | State::EscIntermediate, 0x30..=0x7e) => (State::Text, true),
                (State::Csi, 0x20..=0x3f) => (State::Csi, true),
                (State::Csi, 0x40..=0x7e) => (State::Text, true),
                (State::Str, BEL) => (State::Text, true),
                (State::Str, ESC) => (State::StrEsc, true),
                (State::Str, b'\n') => (State::Text, false),
                (State::Str, _) => (State::Str, true),
                (State::StrEsc, b'\\') => (State::Text, true),
                (State::StrEsc, _) => (State::Esc, false),
                // Not part of a sequence: the sequence ends and the byte is text.
                (State::Esc | State::EscIntermediate | State::Csi, _) => (State::Text, false),
            };
            self.state = next;
            if consumed {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_all(chunks: &[&[u8]]) -> String {
        let mut s = Stripper::default();
        let mut out = Vec::new();
        for c in chunks {
            s.strip(c, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn removes_colours_cursor_moves_and_titles() {
        assert_eq!(strip_all(&[b"\x1b[1;31mred\x1b[0m plain\n"]), "red plain\n");
        assert_eq!(strip_all(&[b"a\x1b[2Kb\x1b[10;20Hc"]), "abc");
        assert_eq!(strip_all(&[b"\x1b]0;title\x07text"]), "text");
        assert_eq!(strip_all(&[b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"]), "link");
        assert_eq!(strip_all(&[b"\x1b(Bcharset\x1b7saved\x1b8"]), "charsetsaved");
        assert_eq!(strip_all(&["héllo ✓\n".as_bytes()]), "héllo ✓\n");
    }

    #[test]
    fn a_sequence_split_across_reads_is_removed_whole() {
        let whole = b"x\x1b[38;5;196my\x1b]0;t\x1b\\z\n";
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(strip_all(&[a, b]), "xyz\n", "cut at {cut}");
        }
    }

    #[test]
    fn malformed_sequences_keep_the_text_after_them() {
        // A CSI broken by a newline ends there; the newline stays.
        assert_eq!(strip_all(&[b"a\x1b[12\nb"]), "a\nb");
        // An OSC without its terminator ends at the newline.
        assert_eq!(strip_all(&[b"a\x1b]0;title\nb"]), "a\nb");
        // A lone ESC before a control byte.
        assert_eq!(strip_all(&[b"a\x1b\tb"]), "a\tb");
    }
}
