//! The kernel side of the exception path: each interface's TAP gets the physical port's MAC, the
//! interface address, link up and a default route via the gateway; the `af_packet` veth (if any)
//! is kept silent so only the TAP answers for the appliance's address.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::wire::MacAddr;

/// Longest Linux interface name.
const IFNAMSIZ_MAX: usize = 15;

/// The kernel name of the TAP for interface `index` named `name`: `vmx` + name, cut to 15 bytes
/// (non-alphanumeric characters replaced by `-`); falls back to `vmx<index>`.
pub fn tap_name(index: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let n = format!("vmx{clean}");
    if clean.is_empty() || n.len() > IFNAMSIZ_MAX {
        format!("vmx{index}")
    } else {
        n
    }
}

/// The TAPs of `taps` whose kernel interface no longer exists (deleted from outside): the
/// appliance's own address, ARP for it and health probes no longer work through them.
pub fn missing_taps(taps: &[String]) -> Vec<String> {
    taps.iter()
        .filter(|t| !std::path::Path::new("/sys/class/net").join(t).exists())
        .cloned()
        .collect()
}

/// Runs a command; its failure text on error.
fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Writes a sysctl under /proc/sys (best effort, logged on failure).
fn sysctl(key: &str, value: &str) {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    if let Err(e) = std::fs::write(&path, value) {
        tracing::debug!("sysctl {key}={value}: {e}");
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: MacAddr) -> String {
    let m = mac.0;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Configures the TAP `tap`: MAC, address, up, no IPv6, default route via `gateway`.
pub fn configure_tap(
    tap: &str,
    mac: MacAddr,
    addr: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
) -> Result<(), String> {
    sysctl(&format!("net.ipv6.conf.{tap}.disable_ipv6"), "1");
    run(&["ip", "link", "set", "dev", tap, "down"])?;
    run(&["ip", "link", "set", "dev", tap, "address", &mac_text(mac)])?;
    run(&["ip", "link", "set", "dev", tap, "up"])?;
    run(&[
        "ip",
        "addr",
        "replace",
        &format!("{addr}/{prefix_len}"),
        "dev",
        tap,
    ])?;
    if let Some(gw) = gateway {
        run(&[
            "ip",
            "route",
            "replace",
            "default",
            "via",
            &gw.to_string(),
            "dev",
            tap,
        ])?;
    }
    Ok(())
}

/// Keeps the kernel silent on `iface`, an interface a DPDK `af_packet` port reads: no ARP
/// answers, IPv4 received there is dropped by strict reverse-path filtering (the appliance's
/// address lives on the TAP), no IPv6.
pub fn silence_af_packet_iface(iface: &str) {
    sysctl(&format!("net.ipv4.conf.{iface}.arp_ignore"), "8");
    sysctl(&format!("net.ipv4.conf.{iface}.rp_filter"), "1");
    sysctl(&format!("net.ipv6.conf.{iface}.disable_ipv6"), "1");
}

/// The kernel interface of the `af_packet` vdev named `port` in `eal_args`, if any.
pub fn af_packet_iface<'a>(eal_args: &'a [String], port: &str) -> Option<&'a str> {
    let mut found = None;
    for (i, a) in eal_args.iter().enumerate() {
        let v = match a.strip_prefix("--vdev=") {
            Some(v) => v,
            None if a == "--vdev" => match eal_args.get(i + 1) {
                Some(v) => v.as_str(),
                None => continue,
            },
            None => continue,
        };
        let mut parts = v.split(',');
        if parts.next() != Some(port) || !port.starts_with("net_af_packet") {
            continue;
        }
        if let Some(ifc) = parts.find_map(|p| p.strip_prefix("iface=")) {
            found = Some(ifc); // the last --vdev for a name wins (extra args come last)
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit() {
        assert_eq!(tap_name(0, "dc"), "vmxdc");
        assert_eq!(tap_name(3, "a-very-long-interface"), "vmx3");
        assert_eq!(tap_name(1, "a b"), "vmxa-b");
        assert_eq!(tap_name(2, ""), "vmx2");
    }

    #[test]
    fn finds_af_packet_iface() {
        let a: Vec<String> = [
            "--no-pci",
            "--vdev=net_af_packet0,iface=veth-mux,qpairs=1",
            "--vdev",
            "net_tap_vmx0,iface=vmxdc",
            "--vdev=net_af_packet0,iface=mux0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(af_packet_iface(&a, "net_af_packet0"), Some("mux0"));
        assert_eq!(af_packet_iface(&a, "net_af_packet1"), None);
        assert_eq!(af_packet_iface(&a, "net_tap_vmx0"), None);
    }

    #[test]
    fn mac_formatting() {
        assert_eq!(
            mac_text(MacAddr([0x02, 0, 0xab, 1, 2, 0xff])),
            "02:00:ab:01:02:ff"
        );
    }
}
