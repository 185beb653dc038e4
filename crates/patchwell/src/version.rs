//! `patchwell version compare|check`: the `versions` crate for scripts and
//! for people checking what Patchwell will decide about two versions.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use versions::Ecosystem;

/// Exit status for invalid versions, the same status clap uses for bad usage.
pub(crate) const INVALID: u8 = 2;

/// `patchwell version check`: prints `valid`, or the broken rule and exit 2.
pub(crate) fn check(ecosystem: Ecosystem, version: &str) -> anyhow::Result<ExitCode> {
    match versions::validate(ecosystem, version) {
        Ok(()) => {
            say("valid")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(INVALID))
        }
    }
}

fn symbol(order: std::cmp::Ordering) -> &'static str {
    match order {
        std::cmp::Ordering::Less => "<",
        std::cmp::Ordering::Equal => "=",
        std::cmp::Ordering::Greater => ">",
    }
}

/// Prints one line. A reader that has gone away (`| head`) is not an error.
fn say(line: &str) -> io::Result<()> {
    match writeln!(io::stdout().lock(), "{line}") {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

pub(crate) fn compare_one(ecosystem: Ecosystem, a: &str, b: &str) -> anyhow::Result<ExitCode> {
    match versions::compare(ecosystem, a, b) {
        Ok(order) => {
            say(symbol(order))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(INVALID))
        }
    }
}

/// Answers every line, in order, before reporting failure, so that one bad
/// pair in a large batch does not hide the answers for the rest.
pub(crate) fn compare_batch(
    ecosystem: Ecosystem,
    mut input: impl BufRead,
    output: impl Write,
) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(output);
    let mut failed = false;
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let result = match std::str::from_utf8(text) {
            Err(_) => Err(format!("line {number} is not valid UTF-8")),
            Ok(text) => match text.split_once('\t') {
                None => Err(format!("line {number} has no tab: expected A<TAB>B")),
                Some((a, b)) => versions::compare(ecosystem, a, b).map_err(|e| e.to_string()),
            },
        };
        match result {
            Ok(order) => writeln!(out, "{}", symbol(order)),
            Err(why) => {
                failed = true;
                writeln!(out, "error: {why}")
            }
        }
        .or_else(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(if failed {
        ExitCode::from(INVALID)
    } else {
        ExitCode::SUCCESS
    })
}
