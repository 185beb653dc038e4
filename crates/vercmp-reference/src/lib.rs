//! The package managers' own version comparisons, from their C libraries, for
//! benchmarks and differential tests of the `versions` crate. Never a
//! dependency of Patchwell itself.
//!
//! A key design decision made in this crate is that it takes `&CStr`, not
//! `&str`: a benchmark converts its inputs once, so the C side is measured
//! without a Rust allocation in front of every call.
#![allow(unsafe_code)]

use std::cmp::Ordering;
use std::ffi::{c_char, c_int, c_uint, CStr};

/// libdpkg: `parseversion` and `dpkg_version_compare`.
pub mod dpkg {
    use super::*;

    /// `struct dpkg_version` from `<dpkg/version.h>`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct RawVersion {
        epoch: c_uint,
        version: *const c_char,
        revision: *const c_char,
    }

    extern "C" {
        fn pw_dpkg_validate(text: *const c_char) -> c_int;
        fn pw_dpkg_compare_str(a: *const c_char, b: *const c_char, result: *mut c_int) -> c_int;
        fn pw_dpkg_parse(text: *const c_char) -> *mut RawVersion;
        fn pw_dpkg_free(v: *mut RawVersion);
        fn dpkg_version_compare(a: *const RawVersion, b: *const RawVersion) -> c_int;
    }

    /// Access to libdpkg's parser. libdpkg keeps global state (its memory
    /// pool), so only one thread may parse at a time: this guard holds a
    /// process-wide lock. Take it once around a batch of calls, so that a
    /// benchmark of the C side does not pay for the lock on every call.
    #[derive(Debug)]
    pub struct Dpkg(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Waits for and takes the right to call libdpkg's parser.
    pub fn lock() -> Dpkg {
        // A panic while holding the lock leaves libdpkg's state as consistent
        // as any other call would; carry on.
        Dpkg(LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    impl Dpkg {
        /// Whether dpkg's `parseversion` accepts `text` without error or
        /// warning, which is what `dpkg --validate-version` checks.
        pub fn is_valid(&self, text: &CStr) -> bool {
            // SAFETY: `text` is valid for the call; the guard serializes libdpkg.
            unsafe { pw_dpkg_validate(text.as_ptr()) == 0 }
        }

        /// Parses both and compares them, as `dpkg --compare-versions` does;
        /// `None` when either is invalid.
        pub fn compare(&self, a: &CStr, b: &CStr) -> Option<Ordering> {
            let mut result: c_int = 0;
            // SAFETY: both strings are valid for the call, `result` is a valid
            // out pointer, and the guard serializes libdpkg.
            let rc = unsafe { pw_dpkg_compare_str(a.as_ptr(), b.as_ptr(), &mut result) };
            (rc == 0).then(|| result.cmp(&0))
        }

        /// Parses `text` into memory the result owns; `None` when dpkg rejects it.
        pub fn parse(&self, text: &CStr) -> Option<Parsed> {
            // SAFETY: `text` is valid for the call; the guard serializes libdpkg;
            // the result is NULL or owned by us.
            let raw = unsafe { pw_dpkg_parse(text.as_ptr()) };
            (!raw.is_null()).then_some(Parsed(raw))
        }
    }

    /// A version parsed by libdpkg, in memory this value owns.
    #[derive(Debug)]
    pub struct Parsed(*mut RawVersion);

    impl Parsed {
        /// libdpkg's `dpkg_version_compare` on two parsed versions. It reads
        /// only the two versions, so it needs no lock.
        pub fn compare(&self, other: &Parsed) -> Ordering {
            // SAFETY: both pointers come from `pw_dpkg_parse` and live until drop.
            unsafe { dpkg_version_compare(self.0, other.0) }.cmp(&0)
        }
    }

    impl Drop for Parsed {
        fn drop(&mut self) {
            // SAFETY: the pointer came from `pw_dpkg_parse` and is freed once.
            unsafe { pw_dpkg_free(self.0) }
        }
    }
}

/// librpm: `rpmvercmp`, and `rpmverParse` / `rpmverCmp` for whole EVRs.
pub mod rpm {
    use super::*;

    #[repr(C)]
    struct RpmVerS {
        _private: [u8; 0],
    }

    extern "C" {
        fn rpmvercmp(a: *const c_char, b: *const c_char) -> c_int;
        fn rpmverParse(evr: *const c_char) -> *mut RpmVerS;
        fn rpmverCmp(v1: *mut RpmVerS, v2: *mut RpmVerS) -> c_int;
        fn rpmverFree(v: *mut RpmVerS) -> *mut RpmVerS;
    }

    /// `rpmvercmp`: one version or release string against another.
    pub fn vercmp(a: &CStr, b: &CStr) -> Ordering {
        // SAFETY: both strings are valid NUL-terminated strings for the call.
        unsafe { rpmvercmp(a.as_ptr(), b.as_ptr()) }.cmp(&0)
    }

    /// An `[epoch:]version[-release]` parsed by `rpmverParse`.
    #[derive(Debug)]
    pub struct Parsed(*mut RpmVerS);

    impl Parsed {
        /// Parses `evr`; `None` for the empty string, the only one rpm refuses.
        pub fn parse(evr: &CStr) -> Option<Parsed> {
            // SAFETY: `evr` is valid for the call; the result is NULL or owned by us.
            let raw = unsafe { rpmverParse(evr.as_ptr()) };
            (!raw.is_null()).then_some(Parsed(raw))
        }

        /// `rpmverCmp`: epoch, version, release.
        pub fn compare(&self, other: &Parsed) -> Ordering {
            // SAFETY: both handles come from `rpmverParse` and live until drop.
            unsafe { rpmverCmp(self.0, other.0) }.cmp(&0)
        }
    }

    impl Drop for Parsed {
        fn drop(&mut self) {
            // SAFETY: the handle came from `rpmverParse` and is freed once.
            unsafe { rpmverFree(self.0) };
        }
    }

    /// Parses both and compares them with `rpmverCmp`, as `rpm.vercmp` does.
    pub fn compare_evr(a: &CStr, b: &CStr) -> Option<Ordering> {
        Some(Parsed::parse(a)?.compare(&Parsed::parse(b)?))
    }
}
