//! Host identity and hardware: the root's own files for identity, the
//! running kernel's `/proc` (and `ip`) for everything a chroot shares with
//! the machine it runs on.

use std::path::Path;

use jiff::Timestamp;
use protocol::{Cpu, Disk, HostFacts, Interface};
use serde_json::Value;

use crate::root::Root;
use crate::runner::{stdout_of, CommandRunner};

/// Collects the host's facts; anything unreadable becomes a warning and an
/// empty or zero value, never a failure of the whole inventory.
pub fn collect(
    root: &Root,
    runner: &dyn CommandRunner,
    arch: String,
    warnings: &mut Vec<String>,
) -> HostFacts {
    let uname = rustix::system::uname();
    let hostname = match root.read_optional("/etc/hostname") {
        Ok(Some(text)) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => uname.nodename().to_string_lossy().into_owned(),
    };
    let machine_id = root
        .read_optional("/etc/machine-id")
        .ok()
        .flatten()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty() && id != "uninitialized");
    let mut proc = |file: &str| {
        std::fs::read_to_string(Path::new("/proc").join(file))
            .map_err(|e| warnings.push(format!("/proc/{file}: {e}")))
            .unwrap_or_default()
    };
    let cpuinfo = proc("cpuinfo");
    let meminfo = proc("meminfo");
    let uptime = proc("uptime");
    let stat = proc("stat");
    let mounts = proc("self/mounts");

    let interfaces = match stdout_of(runner, "ip", &["-json", "addr"]) {
        Ok(json) => parse_ip_addr(&json).unwrap_or_else(|why| {
            warnings.push(why);
            Vec::new()
        }),
        Err(why) => {
            warnings.push(format!("network interfaces not read: {why}"));
            Vec::new()
        }
    };

    HostFacts {
        hostname,
        machine_id,
        kernel: uname.release().to_string_lossy().into_owned(),
        arch: if arch.is_empty() {
            uname.machine().to_string_lossy().into_owned()
        } else {
            arch
        },
        cpu: parse_cpuinfo(&cpuinfo),
        model: hardware_model(
            &std::fs::read_to_string("/sys/class/dmi/id/sys_vendor").unwrap_or_default(),
            &std::fs::read_to_string("/sys/class/dmi/id/product_name").unwrap_or_default(),
        ),
        memory_bytes: parse_meminfo_total(&meminfo),
        disks: disks(&mounts),
        interfaces,
        uptime_seconds: uptime
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0) as u64,
        boot_time: stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(|s| Timestamp::from_second(s).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH),
    }
}

/// The hardware model from the firmware's vendor and product names, or
/// `None` when it names none (placeholders such as "To be filled by
/// O.E.M." count as none).
pub fn hardware_model(vendor: &str, product: &str) -> Option<String> {
    let real = |s: &str| {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        let placeholder = s.is_empty()
            || [
                "to be filled",
                "default string",
                "system product name",
                "system manufacturer",
                "not specified",
                "o.e.m.",
            ]
            .iter()
            .any(|p| lower.contains(p));
        (!placeholder).then(|| s.to_owned())
    };
    match (real(vendor), real(product)) {
        (Some(v), Some(p)) if p.starts_with(&v) => Some(p),
        (Some(v), Some(p)) => Some(format!("{v} {p}")),
        (None, Some(p)) => Some(p),
        (Some(_), None) | (None, None) => None,
    }
}

/// Model name of the first processor, and the number of processors.
pub fn parse_cpuinfo(text: &str) -> Cpu {
    let model = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim())
        })
        .unwrap_or_default()
        .to_owned();
    let count = text.lines().filter(|l| l.starts_with("processor")).count() as u32;
    Cpu { model, count }
}

/// `MemTotal` in bytes.
pub fn parse_meminfo_total(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Mounts backed by storage (a device path, or an overlay or ZFS root), with
/// their size from statvfs.
fn disks(mounts: &str) -> Vec<Disk> {
    let mut out: Vec<Disk> = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(mount), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !(device.starts_with('/') || matches!(fs_type, "overlay" | "zfs")) {
            continue;
        }
        let mount_point = unescape_mount(mount);
        if out.iter().any(|d| d.mount_point == mount_point) {
            continue;
        }
        let Ok(stat) = rustix::fs::statvfs(mount_point.as_str()) else {
            continue;
        };
        out.push(Disk {
            mount_point,
            device: unescape_mount(device),
            fs_type: fs_type.to_owned(),
            size_bytes: stat.f_blocks * stat.f_frsize,
            available_bytes: stat.f_bavail * stat.f_frsize,
        });
    }
    out
}

/// /proc/mounts writes space, tab, newline and backslash as octal escapes.
fn unescape_mount(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses `ip -json addr`: each interface, its link address (none for the
/// all-zero loopback one) and its addresses with prefix length.
pub fn parse_ip_addr(json: &str) -> Result<Vec<Interface>, String> {
    let links: Vec<Value> = serde_json::from_str(json)
        .map_err(|e| format!("ip -json addr printed invalid JSON: {e}"))?;
    Ok(links
        .iter()
        .filter_map(|link| {
            let name = link.get("ifname")?.as_str()?.to_owned();
            let mac = link
                .get("address")
                .and_then(Value::as_str)
                .filter(|m| *m != "00:00:00:00:00:00")
                .map(str::to_owned);
            let addresses = link
                .get("addr_info")
                .and_then(Value::as_array)
                .map(|infos| {
                    infos
                        .iter()
                        .filter_map(|a| {
                            Some(format!(
                                "{}/{}",
                                a.get("local")?.as_str()?,
                                a.get("prefixlen")?.as_u64()?
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Interface {
                name,
                mac,
                addresses,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            hardware_model("LENOVO\n", "20XWCTO1WW\n").as_deref(),
            Some("LENOVO 20XWCTO1WW")
        );
        assert_eq!(
            hardware_model("QEMU", "Standard PC (i440FX + PIIX, 1996)").as_deref(),
            Some("QEMU Standard PC (i440FX + PIIX, 1996)")
        );
        assert_eq!(
            hardware_model("Dell Inc.", "Dell Inc. OptiPlex 7010").as_deref(),
            Some("Dell Inc. OptiPlex 7010")
        );
        assert_eq!(
            hardware_model("To Be Filled By O.E.M.", "To Be Filled By O.E.M."),
            None
        );
        assert_eq!(hardware_model("", ""), None);
        let cpu = parse_cpuinfo(
            "processor\t: 0\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n",
        );
        assert_eq!(
            cpu,
            Cpu {
                model: "AMD EPYC".into(),
                count: 2
            }
        );
        assert_eq!(
            parse_meminfo_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            24_576_000 * 1024
        );
        assert_eq!(unescape_mount("/mnt/my\\040disk"), "/mnt/my disk");
    }

    #[test]
    fn parses_ip_addr() {
        let json = r#"[{"ifindex":1,"ifname":"lo","address":"00:00:00:00:00:00",
            "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
            {"ifindex":2,"ifname":"eth0","address":"02:fc:00:00:00:06",
            "addr_info":[{"family":"inet","local":"192.0.2.7","prefixlen":24},
                         {"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#;
        let ifs = parse_ip_addr(json).unwrap();
        assert_eq!(ifs[0].mac, None);
        assert_eq!(ifs[1].mac.as_deref(), Some("02:fc:00:00:00:06"));
        assert_eq!(ifs[1].addresses, ["192.0.2.7/24", "fe80::1/64"]);
    }
}
