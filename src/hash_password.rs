//! `kahi hash-password`: the bcrypt hash of a password, for `[[server.http.users]]`.

/// `kahi hash-password`: 0 and the hash on stdout, 1 on a mismatch or an unreadable password,
/// 2 on a bad cost.
pub fn run(cost: u32) -> i32 {
    if !(4..=31).contains(&cost) {
        eprintln!("kahi: --cost must be from 4 to 31, not {cost}");
        return 2;
    }
    let password = match read_password() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kahi: {e}");
            return 1;
        }
    };
    if password.is_empty() {
        eprintln!("kahi: the password is empty");
        return 1;
    }
    match bcrypt::hash(&password, cost) {
        Ok(h) => {
            println!("{h}");
            0
        }
        Err(e) => {
            eprintln!("kahi: {e}");
            1
        }
    }
}

/// A password from the terminal, asked twice without echo, or one line of standard input.
fn read_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let line = |prompt: &str| -> Result<String, String> {
        let mut s = String::new();
        if stdin.is_terminal() {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
            use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
            let saved =
                tcgetattr(&stdin).map_err(|e| format!("unable to read the terminal: {e}"))?;
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
            let read = stdin.lock().read_line(&mut s);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
            eprintln!();
            read.map_err(|e| format!("unable to read the password: {e}"))?;
        } else {
            stdin
                .lock()
                .read_line(&mut s)
                .map_err(|e| format!("unable to read the password: {e}"))?;
        }
        Ok(s.strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s))
            .unwrap_or(&s)
            .to_string())
    };
    let first = line("Password: ")?;
    if std::io::stdin().is_terminal() && line("Again: ")? != first {
        return Err("the passwords differ".into());
    }
    Ok(first)
}
