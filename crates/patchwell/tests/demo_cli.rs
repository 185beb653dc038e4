//! `patchwell demo` refusing what it cannot do, run as a user runs it.

use std::process::Command;

/// An earlier run's data directory is refused before anything starts, and
/// the message says what to do instead; the data in it is left alone.
#[test]
fn the_demo_refuses_a_data_directory_that_is_not_empty() {
    let dir = std::env::temp_dir().join(format!("patchwell-demo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("patchwell.db"), b"an earlier demo").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run patchwell demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--data-dir {}: the directory is not empty",
            dir.display()
        )) && stderr.contains("patchwell server --data-dir"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.join("patchwell.db")).unwrap(),
        b"an earlier demo"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
