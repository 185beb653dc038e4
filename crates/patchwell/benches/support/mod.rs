//! What the benchmarks against a real server share: starting
//! `patchwell server` on SQLite in a fresh data directory, on a loopback
//! port, with no per-host rate limit.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, stopped and its data removed when dropped.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// Its data directory.
    pub(crate) data: PathBuf,
    /// The first API token.
    pub(crate) admin: String,
    /// Whether the data directory is kept when the server stops.
    keep: bool,
}

impl Server {
    /// Starts `patchwell server` (the binary this benchmark was built with)
    /// and waits until it answers.
    pub(crate) fn start(name: &str) -> Server {
        let data = std::env::temp_dir().join(format!("patchwell-{name}-{}", std::process::id()));
        Server::start_in(data, false)
    }

    /// Starts `patchwell server` on the data directory `data`, which may
    /// hold an earlier run's database; with `keep`, it is left in place.
    pub(crate) fn start_in(data: PathBuf, keep: bool) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_patchwell"))
            .args([
                "server",
                "--plain-http",
                "--host-requests-per-minute",
                "100000000",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--data-dir")
            .arg(&data)
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !data.join("admin-token").exists()
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let admin = std::fs::read_to_string(data.join("admin-token"))
            .expect("admin token")
            .trim()
            .to_owned();
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data,
            admin,
            keep,
        }
    }
}

impl Server {
    /// The server's memory now and at its peak, in MiB (`VmRSS`, `VmHWM`).
    #[allow(dead_code)]
    pub(crate) fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep {
            std::fs::remove_dir_all(&self.data).ok();
        }
    }
}
