//! Patchwell's developer tasks as a library: the helpers the tasks share,
//! and the end-to-end rollout that `cargo xtask e2e` and a test both run.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

pub mod e2e;

pub fn run(command: &mut Command) -> Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .with_context(|| format!("could not start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a command as root: directly when we are root, through sudo otherwise.
pub fn as_root(args: &[&str]) -> Command {
    let (program, rest) = if is_root() {
        (args[0], &args[1..])
    } else {
        ("sudo", args)
    };
    let mut command = Command::new(program);
    command.args(rest).env("DEBIAN_FRONTEND", "noninteractive");
    command
}

/// The machine's own apt sources: (types, URIs, suites) of each entry, from
/// deb822 `.sources` files and one-line `sources.list` files alike.
pub fn apt_sources() -> Result<Vec<(String, String, Vec<String>)>> {
    let mut found = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.push(PathBuf::from("/etc/apt/sources.list"));
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if file.extension().is_some_and(|e| e == "sources") {
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza
                        .lines()
                        .filter(|l| !l.starts_with('#'))
                        .find_map(|l| {
                            l.strip_prefix(name)?
                                .strip_prefix(':')
                                .map(|v| v.trim().to_owned())
                        })
                };
                if field("Enabled").is_some_and(|v| v == "no") {
                    continue;
                }
                if let (Some(types), Some(uris), Some(suites)) =
                    (field("Types"), field("URIs"), field("Suites"))
                {
                    for uri in uris.split_whitespace() {
                        found.push((
                            types.clone(),
                            uri.to_owned(),
                            suites.split_whitespace().map(str::to_owned).collect(),
                        ));
                    }
                }
            }
        } else {
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("deb "))
            {
                // One-line form: `deb [opt=a opt=b] URI SUITE ...`; the
                // options may span several words.
                let rest = match line.find('[') {
                    Some(open) => line[open..]
                        .find(']')
                        .map_or("", |close| &line[open + close + 1..]),
                    None => &line[3..],
                };
                let words: Vec<&str> = std::iter::once("deb")
                    .chain(rest.split_whitespace())
                    .collect();
                if let [_, uri, suite, ..] = words.as_slice() {
                    found.push((
                        "deb".to_owned(),
                        (*uri).to_owned(),
                        vec![(*suite).to_owned()],
                    ));
                }
            }
        }
    }
    Ok(found)
}
