//! `patchwell-agent`: the small program on every managed host.
//!
//! A key design decision made in this crate is that every collector reads a
//! [`Root`], never `/` directly, and runs the host's tools through a
//! [`CommandRunner`]. `--root DIR` makes the agent inventory a chroot, which
//! is how the tests work on real Debian systems built with mmdebstrap, and
//! every parser is a pure function tested on captured text.
//!
//! The agent collects inventories (`patchwell-agent inventory`), enrolls
//! with a server (`enroll`) and checks in (`run`), running at each check-in
//! the jobs the server signed (`jobs`).

pub mod apk;
pub mod apt;
pub mod checkin;
pub mod client;
mod deb822;
pub mod dpkg;
pub mod inventory;
pub mod jobs;
pub mod neighbours;
pub mod os_release;
pub mod reboot;
mod root;
pub mod rpm;
mod runner;
pub mod state;
pub mod system;

pub use root::Root;
pub use runner::{CommandRunner, SystemRunner};
