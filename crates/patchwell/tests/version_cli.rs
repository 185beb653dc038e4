//! The `patchwell version` commands, run as a user runs them: the real binary,
//! its standard streams and its exit status.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn patchwell(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start patchwell");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for patchwell")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

#[test]
fn compare_prints_one_symbol_and_exits_zero() {
    let cases = [
        ("deb", "1.0", "1.1", "<"),
        ("deb", "1.0-1", "1.0000-1", "="),
        ("deb", "1:1.0", "2.0", ">"),
        ("deb", "1.0~rc1", "1.0", "<"),
        ("rpm", "1.0^git1", "1.0", ">"),
        ("rpm", "0:2.5-1.el9", "2.5-1.el9", "="),
        ("apk", "1.0_rc1", "1.0", "<"),
        ("apk", "1.0-r1", "1.0", ">"),
    ];
    for (ecosystem, a, b, want) in cases {
        let out = patchwell(
            &["version", "compare", "--ecosystem", ecosystem, a, b],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{ecosystem} {a} {b}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), format!("{want}\n"), "{ecosystem} {a} {b}");
    }
}

#[test]
fn an_invalid_version_exits_2_naming_the_version_and_rule() {
    let out = patchwell(
        &["version", "compare", "--ecosystem", "deb", "1.0", "1:"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.contains("\"1:\""), "{err}");
    assert!(err.contains("nothing after colon"), "{err}");

    // A version that starts with a hyphen is a value, not an option.
    let out = patchwell(&["version", "compare", "-e", "deb", "-1", "1"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("version number is empty"),
        "{}",
        stderr(&out)
    );

    let out = patchwell(
        &["version", "compare", "-e", "apk", "1.0", "2.7.16-33"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must be followed by 'r'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn batch_answers_every_line_in_order_and_fails_at_the_end() {
    let input = "1.0\t1.1\n1:\t1.0\n2.0\t2.0\nno tab here\n1.0-1\t1.0-1~bpo1\r\n";
    let out = patchwell(
        &["version", "compare", "--ecosystem", "deb", "--batch"],
        Some(input),
    );
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0], "<");
    assert!(
        lines[1].starts_with("error: invalid deb version \"1:\""),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "=");
    assert!(
        lines[3].starts_with("error: line 4 has no tab"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], ">");
}

#[test]
fn batch_of_valid_lines_exits_zero() {
    let input: String = (0..5000)
        .map(|i| format!("1.{i}\t1.{}\n", 5000 - i))
        .collect();
    let out = patchwell(
        &["version", "compare", "-e", "rpm", "--batch"],
        Some(&input),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5000);
    assert_eq!(lines[0], "<");
    assert_eq!(lines[2500], "=");
    assert_eq!(lines[4999], ">");

    let out = patchwell(&["version", "compare", "-e", "apk", "--batch"], Some(""));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
}

#[test]
fn check_validates_one_version() {
    let out = patchwell(
        &[
            "version",
            "check",
            "--ecosystem",
            "deb",
            "1:2.36.1-8+deb12u1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "valid\n");

    let out = patchwell(&["version", "check", "--ecosystem", "rpm", "1..0"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid rpm version \"1..0\"") && err.contains(".."),
        "{err}"
    );

    let out = patchwell(&["version", "check", "--ecosystem", "apk", "1.0_foo"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown suffix \"_foo\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_say_what_is_wrong() {
    let out = patchwell(
        &["version", "compare", "--ecosystem", "msi", "1", "2"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("msi"), "{}", stderr(&out));

    let out = patchwell(&["version", "compare", "--ecosystem", "deb", "1.0"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("required"), "{}", stderr(&out));
}
