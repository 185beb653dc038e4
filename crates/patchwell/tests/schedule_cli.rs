//! `patchwell schedule`, run as a program.

use std::process::{Command, Output};

fn patchwell(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .arg("schedule")
        .args(args)
        .output()
        .unwrap()
}

fn lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn patch_tuesday_and_weekly_windows_print_one_rfc3339_time_a_line() {
    let out = patchwell(&[
        "next",
        "second tuesday of every month at 22:00",
        "--after",
        "2026-11-22",
        "--count",
        "3",
        "--tz",
        "America/New_York",
    ]);
    assert_eq!(
        lines(&out),
        [
            "2026-12-08T22:00:00-05:00",
            "2027-01-12T22:00:00-05:00",
            "2027-02-09T22:00:00-05:00"
        ]
    );
    let out = patchwell(&[
        "next",
        "second tuesday of every month at 22:00 plus 3 days",
        "--after",
        "2026-11-01T00:00:00Z",
    ]);
    assert_eq!(lines(&out), ["2026-11-13T22:00:00+00:00"]);
    let out = patchwell(&[
        "next",
        "every mon,wed,fri at 22:00",
        "--after",
        "2026-11-23T22:00:00+00:00",
        "--count",
        "2",
    ]);
    assert_eq!(
        lines(&out),
        ["2026-11-25T22:00:00+00:00", "2026-11-27T22:00:00+00:00"]
    );
}

#[test]
fn business_days_skip_weekends_and_the_holiday_file() {
    let file = std::env::temp_dir().join(format!("patchwell-holidays-{}", std::process::id()));
    std::fs::write(
        &file,
        "# Christmas\n2026-12-24\n2026-12-25\n\n2026-12-31 # New Year's Eve\n2027-01-01\n",
    )
    .unwrap();
    let holidays = file.to_str().unwrap();
    let out = patchwell(&[
        "add-business-days",
        "2026-12-23",
        "3",
        "--holidays",
        holidays,
    ]);
    assert_eq!(lines(&out), ["2026-12-30"]);
    let out = patchwell(&[
        "add-business-days",
        "2026-12-23",
        "4",
        "--holidays",
        holidays,
    ]);
    assert_eq!(lines(&out), ["2027-01-04"]);
    let out = patchwell(&["add-business-days", "2026-11-20", "1"]);
    assert_eq!(lines(&out), ["2026-11-23"]);
    std::fs::write(&file, "2026-12-24\nChristmas\n").unwrap();
    let out = patchwell(&[
        "add-business-days",
        "2026-12-23",
        "1",
        "--holidays",
        holidays,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("\"Christmas\" is not a date"),
        "{stderr}"
    );
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn bad_rules_dates_and_zones_exit_2_naming_them() {
    for (args, expected) in [
        (
            vec!["next", "every funday at 10:00", "--after", "2026-11-22"],
            "\"funday\" is not a day of the week",
        ),
        (
            vec!["next", "every day at 10:00", "--after", "yesterday"],
            "--after \"yesterday\" is neither",
        ),
        (
            vec![
                "next",
                "every day at 10:00",
                "--after",
                "2026-11-22",
                "--tz",
                "Mars/Olympus",
            ],
            "--tz \"Mars/Olympus\"",
        ),
        (
            vec!["add-business-days", "2026-02-30", "1"],
            "DATE \"2026-02-30\" is not a date",
        ),
    ] {
        let out = patchwell(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
