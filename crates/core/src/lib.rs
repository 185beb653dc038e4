//! Patchwell's pure domain. Today: choosing hosts by a query, the rule of a
//! dynamic group (`os = debian and os_version >= 12 and tag = laptop`).
//!
//! A key design decision made in this crate is that it never reads the clock,
//! the environment, the disk or the network: whatever depends on time (is a
//! host stale?) comes in as a value, so every decision is a function of its
//! inputs and is tested as one. (The package is `patchwell-core`, because
//! `core` is the name of Rust's own.)

pub mod advisory;
pub mod applicability;
pub mod approval;
pub mod baseline;
pub mod classify;
pub mod cvss;
pub mod exemption;
pub mod fleet;
pub mod lifecycle;
pub mod people;
pub mod policy;
pub mod query;
pub mod risk;
pub mod rollout;
pub mod schedule;
pub mod sla;
