//! How the CLI writes: stdout through [`out!`]/[`outln!`], which end the process quietly with the
//! conventional status 141 (128 + SIGPIPE) when the reader has gone (`catalyst … | head -1`)
//! instead of panicking; and errors as one `error: …` line on stderr, each cause once.

use std::fmt;
use std::io::{self, Write};

/// The status a process killed by SIGPIPE reports to a shell.
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// Writes to stdout; a closed stdout ends the process quietly, any other failure with an error.
pub fn write_stdout(args: fmt::Arguments<'_>, newline: bool) {
    let mut out = io::stdout().lock();
    let result = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = result {
        stdout_failed(&e);
    }
}

/// Flushes stdout, with the same rule as [`write_stdout`].
pub fn flush_stdout() {
    if let Err(e) = io::stdout().flush() {
        stdout_failed(&e);
    }
}

fn stdout_failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE_STATUS);
    }
    let _ = writeln!(io::stderr(), "error: cannot write to stdout: {e}");
    std::process::exit(2);
}

/// `print!` that ends the process quietly when stdout is closed.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli_out::write_stdout(format_args!($($arg)*), false) };
}

/// `println!` that ends the process quietly when stdout is closed.
macro_rules! outln {
    () => { $crate::cli_out::write_stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli_out::write_stdout(format_args!($($arg)*), true) };
}

/// An error and its causes as one line, `a: b: c`, with a cause left out when the message before
/// it already says it (a library error that prints its source, wrapped again by `anyhow`).
pub fn error_text(e: &anyhow::Error) -> String {
    chain_text(e.chain().map(|c| c.to_string()))
}

fn chain_text(messages: impl Iterator<Item = String>) -> String {
    let mut out = String::new();
    for m in messages {
        if m.is_empty() || out.contains(&m) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&m);
    }
    out
}

/// Ends the process for what clap's parser returned: help and the version go to stdout with the
/// same closed-pipe rule as everything else (plain text unless stdout is a terminal, where clap
/// styles them), usage errors to stderr as clap prints them.
pub fn clap_exit(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let to_stdout = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if to_stdout && !io::IsTerminal::is_terminal(&io::stdout()) {
        write_stdout(format_args!("{}", e.render()), false);
        flush_stdout();
        std::process::exit(0);
    }
    e.exit()
}

/// Prints `error: …` (after flushing what stdout holds) and exits with `code`.
pub fn fail(e: &anyhow::Error, code: i32) -> ! {
    let _ = io::stdout().flush();
    let _ = writeln!(io::stderr(), "error: {}", error_text(e));
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_once() {
        let io = io::Error::new(
            io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        );
        #[derive(Debug)]
        struct Read {
            source: io::Error,
        }
        impl fmt::Display for Read {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "cannot read /nope: {}", self.source)
            }
        }
        impl std::error::Error for Read {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let e = anyhow::Error::new(Read { source: io }).context("loading the catalog");
        assert_eq!(
            error_text(&e),
            "loading the catalog: cannot read /nope: No such file or directory (os error 2)"
        );
        let plain = anyhow::anyhow!("a").context("b").context("c");
        assert_eq!(error_text(&plain), "c: b: a");
    }
}
