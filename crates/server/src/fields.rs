//! How long each field an agent or a person sends may be, and how many of
//! each list, checked before anything is stored or used as a key. A
//! request over any of them is refused whole, naming the field, its size
//! and the limit; the body's own limits (`body.rs`) come first.

use axum::http::StatusCode;
use protocol::{
    AvailableUpdate, HostFacts, Inventory, InventoryDelta, Neighbour, OsRelease, Package,
    RebootStatus,
};

use crate::error::ApiError;
use crate::handlers::ApiResult;

/// A host name, as DNS allows.
pub(crate) const HOSTNAME: usize = 253;
/// A name or version of a package, an OS, a kernel, a model.
const TEXT: usize = 256;
/// A short name: an architecture, an interface, an OS id, a state.
const SHORT: usize = 64;
/// A path: a mount point, a device.
const PATH: usize = 1024;
/// Disks and network interfaces one host may list.
const DEVICES: usize = 4096;
/// Addresses one interface may have.
const ADDRESSES: usize = 1024;
/// Neighbours one host may list.
const NEIGHBOURS: usize = 16_384;
/// Tags on one host.
const TAGS: usize = 64;
/// An enrollment token as sent (they are some 50 characters).
pub(crate) const TOKEN: usize = 256;

/// Refuses text over `max` bytes, naming the field.
fn text(what: impl FnOnce() -> String, value: &str, max: usize) -> ApiResult<()> {
    if value.len() > max {
        return Err(ApiError::bad_request(format!(
            "{} is {} bytes long; at most {max} are accepted",
            what(),
            value.len()
        )));
    }
    Ok(())
}

fn optional(what: impl FnOnce() -> String, value: Option<&str>, max: usize) -> ApiResult<()> {
    value.map_or(Ok(()), |v| text(what, v, max))
}

/// Refuses a list of more than `max` entries, naming it.
fn count<T>(what: &str, list: &[T], max: usize) -> ApiResult<()> {
    if list.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{what} lists {} entries; at most {max} are accepted",
                list.len()
            ),
        ));
    }
    Ok(())
}

fn host(h: &HostFacts) -> ApiResult<()> {
    text(|| "host.hostname".into(), &h.hostname, HOSTNAME)?;
    optional(|| "host.machine_id".into(), h.machine_id.as_deref(), SHORT)?;
    text(|| "host.kernel".into(), &h.kernel, TEXT)?;
    text(|| "host.arch".into(), &h.arch, SHORT)?;
    text(|| "host.cpu.model".into(), &h.cpu.model, TEXT)?;
    optional(|| "host.model".into(), h.model.as_deref(), TEXT)?;
    count("host.disks", &h.disks, DEVICES)?;
    for (i, d) in h.disks.iter().enumerate() {
        text(
            || format!("host.disks[{i}].mount_point"),
            &d.mount_point,
            PATH,
        )?;
        text(|| format!("host.disks[{i}].device"), &d.device, PATH)?;
        text(|| format!("host.disks[{i}].fs_type"), &d.fs_type, SHORT)?;
    }
    count("host.interfaces", &h.interfaces, DEVICES)?;
    for (i, n) in h.interfaces.iter().enumerate() {
        text(|| format!("host.interfaces[{i}].name"), &n.name, SHORT)?;
        optional(
            || format!("host.interfaces[{i}].mac"),
            n.mac.as_deref(),
            SHORT,
        )?;
        count(
            &format!("host.interfaces[{i}].addresses"),
            &n.addresses,
            ADDRESSES,
        )?;
        for (j, a) in n.addresses.iter().enumerate() {
            text(|| format!("host.interfaces[{i}].addresses[{j}]"), a, SHORT)?;
        }
    }
    Ok(())
}

fn os(o: &OsRelease) -> ApiResult<()> {
    text(|| "os.id".into(), &o.id, SHORT)?;
    optional(|| "os.version_id".into(), o.version_id.as_deref(), SHORT)?;
    optional(|| "os.codename".into(), o.codename.as_deref(), SHORT)?;
    optional(|| "os.pretty_name".into(), o.pretty_name.as_deref(), TEXT)?;
    count("os.id_like", &o.id_like, SHORT)?;
    for (i, l) in o.id_like.iter().enumerate() {
        text(|| format!("os.id_like[{i}]"), l, SHORT)?;
    }
    Ok(())
}

fn reboot(r: &RebootStatus, max_packages: usize) -> ApiResult<()> {
    count("reboot.packages", &r.packages, max_packages)?;
    for (i, p) in r.packages.iter().enumerate() {
        text(|| format!("reboot.packages[{i}]"), p, TEXT)?;
    }
    Ok(())
}

fn packages(what: &str, list: &[Package], max_packages: usize) -> ApiResult<()> {
    count(what, list, max_packages)?;
    for (i, p) in list.iter().enumerate() {
        text(|| format!("{what}[{i}].name"), &p.name, TEXT)?;
        text(|| format!("{what}[{i}].version"), &p.version, TEXT)?;
        text(|| format!("{what}[{i}].arch"), &p.arch, SHORT)?;
        optional(|| format!("{what}[{i}].source"), p.source.as_deref(), TEXT)?;
        optional(
            || format!("{what}[{i}].source_version"),
            p.source_version.as_deref(),
            TEXT,
        )?;
    }
    Ok(())
}

fn updates(list: &[AvailableUpdate], max_packages: usize) -> ApiResult<()> {
    count("updates", list, max_packages)?;
    for (i, u) in list.iter().enumerate() {
        text(|| format!("updates[{i}].name"), &u.name, TEXT)?;
        text(|| format!("updates[{i}].arch"), &u.arch, SHORT)?;
        text(|| format!("updates[{i}].installed"), &u.installed, TEXT)?;
        text(|| format!("updates[{i}].candidate"), &u.candidate, TEXT)?;
        optional(|| format!("updates[{i}].suite"), u.suite.as_deref(), TEXT)?;
        optional(
            || format!("updates[{i}].codename"),
            u.codename.as_deref(),
            SHORT,
        )?;
        optional(|| format!("updates[{i}].origin"), u.origin.as_deref(), TEXT)?;
    }
    Ok(())
}

fn neighbours(list: &[Neighbour]) -> ApiResult<()> {
    count("neighbours", list, NEIGHBOURS)?;
    for (i, n) in list.iter().enumerate() {
        text(|| format!("neighbours[{i}].address"), &n.address, SHORT)?;
        optional(|| format!("neighbours[{i}].mac"), n.mac.as_deref(), SHORT)?;
        text(|| format!("neighbours[{i}].interface"), &n.interface, SHORT)?;
        text(|| format!("neighbours[{i}].state"), &n.state, SHORT)?;
    }
    Ok(())
}

/// Checks a whole inventory: at most `max_packages` packages (413), and
/// every field within its length (400).
pub(crate) fn inventory(inv: &Inventory, max_packages: usize) -> ApiResult<()> {
    packages("packages", &inv.packages, max_packages)?;
    host(&inv.host)?;
    os(&inv.os)?;
    reboot(&inv.reboot, max_packages)?;
    updates(&inv.updates, max_packages)?;
    neighbours(&inv.neighbours)
}

/// Checks a delta as [`inventory`] does; whether it would take its host
/// over `max_packages` is for the store to say, which knows the host.
pub(crate) fn delta(d: &InventoryDelta, max_packages: usize) -> ApiResult<()> {
    text(|| "base_digest".into(), &d.base_digest, TEXT)?;
    text(|| "result_digest".into(), &d.result_digest, TEXT)?;
    packages("packages_changed", &d.packages_changed, max_packages)?;
    count("packages_removed", &d.packages_removed, max_packages)?;
    for (i, k) in d.packages_removed.iter().enumerate() {
        text(|| format!("packages_removed[{i}].name"), &k.name, TEXT)?;
        text(|| format!("packages_removed[{i}].arch"), &k.arch, SHORT)?;
    }
    host(&d.host)?;
    os(&d.os)?;
    reboot(&d.reboot, max_packages)?;
    updates(&d.updates, max_packages)?;
    neighbours(&d.neighbours)
}

/// Checks a host's attributes as a person sets them.
pub(crate) fn attributes(a: &crate::api::Attributes) -> ApiResult<()> {
    optional(|| "group".into(), a.group.as_deref(), SHORT)?;
    optional(|| "owner".into(), a.owner.as_deref(), TEXT)?;
    optional(|| "department".into(), a.department.as_deref(), TEXT)?;
    count("tags", &a.tags, TAGS)
}

/// Checks what an agent reports of a job's steps: the changes of each
/// install (they become the versions a rollback installs), at most as many
/// as a host may have packages, each name and version within its length.
pub(crate) fn steps(steps: &[protocol::job::StepReport], max_packages: usize) -> ApiResult<()> {
    for (i, step) in steps.iter().enumerate() {
        count(&format!("step {i}'s changes"), &step.changes, max_packages)?;
        for (j, c) in step.changes.iter().enumerate() {
            let at = || format!("step {i}, change {j}");
            text(|| format!("{}: the package name", at()), &c.name, TEXT)?;
            text(|| format!("{}: the architecture", at()), &c.arch, SHORT)?;
            optional(
                || format!("{}: the version before", at()),
                c.from.as_deref(),
                TEXT,
            )?;
            text(|| format!("{}: the version after", at()), &c.to, TEXT)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_step_reports_no_more_changes_than_a_host_has_packages() {
        use protocol::job::{Change, Step, StepReport};
        let change = |name: &str| Change {
            name: name.into(),
            arch: "amd64".into(),
            from: Some("1.0".into()),
            to: "1.1".into(),
        };
        let mut step = StepReport::new(Step::Installed, jiff::Timestamp::UNIX_EPOCH);
        step.changes = vec![change("a"); 3];
        assert!(steps(std::slice::from_ref(&step), 3).is_ok());
        let e = steps(std::slice::from_ref(&step), 2).unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            e.message().starts_with("step 0's changes lists 3"),
            "{}",
            e.message()
        );
        step.changes = vec![change(&"x".repeat(300))];
        let e = steps(&[step], 10).unwrap_err();
        assert_eq!(
            e.message(),
            "step 0, change 0: the package name is 300 bytes long; at most 256 are accepted"
        );
    }

    #[test]
    fn a_field_over_its_limit_is_named_with_its_size() {
        let e = text(|| "packages[3].version".into(), &"1".repeat(300), TEXT).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message(),
            "packages[3].version is 300 bytes long; at most 256 are accepted"
        );
        let e = count("packages", &[(); 11], 10).unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            e.message(),
            "packages lists 11 entries; at most 10 are accepted"
        );
        assert!(text(|| unreachable!(), "fine", 4).is_ok());
    }
}
