//! Running the host's own tools (`rpm`, `ip`), behind a trait so that the
//! parsers of their output are tested on captured output and the collectors
//! can be driven by a test double where a tool does not exist here.

use std::io;
use std::process::{Command, Output};

/// Runs a program and returns what it printed.
pub trait CommandRunner: std::fmt::Debug {
    /// Runs `program` with `args`; an error when it cannot be started.
    fn run(&self, program: &str, args: &[&str]) -> io::Result<Output>;

    /// Runs `program` with `args` and these variables added to its
    /// environment. The default goes through `env(1)`, so a runner that only
    /// knows [`CommandRunner::run`] still passes them on.
    fn run_with_env(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<Output> {
        let assignments: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut all: Vec<&str> = assignments.iter().map(String::as_str).collect();
        all.push(program);
        all.extend_from_slice(args);
        self.run("env", &all)
    }
}

/// Runs programs on this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        self.run_with_env(program, args, &[])
    }

    fn run_with_env(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<Output> {
        Command::new(program)
            .args(args)
            .env("LC_ALL", "C")
            .envs(env.iter().copied())
            .output()
    }
}

/// The standard output of a run that succeeded, or a sentence saying why not.
pub(crate) fn stdout_of(
    runner: &dyn CommandRunner,
    program: &str,
    args: &[&str],
) -> Result<String, String> {
    let output = runner
        .run(program, args)
        .map_err(|e| format!("could not run {program}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            stderr.trim()
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| format!("{program} printed something that is not UTF-8"))
}
