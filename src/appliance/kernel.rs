//! The kernel side of the exception path: each interface's TAP gets the physical port's MAC, the
//! interface address, link up and a default route via the gateway; with an `address6`, the IPv6
//! address too (and `gateway6` as the IPv6 default route), without router advertisements,
//! autoconfiguration or duplicate address detection (the address is configured, and vipmux
//! answers Neighbour Discovery for the VIPs itself: the kernel only ever sees ND for its own
//! addresses, so it answers nothing else); without `address6`, IPv6 stays disabled on the TAP.
//! The `af_packet` veth (if any) is kept silent so only the TAP answers for the appliance's
//! address.

use std::net::{Ipv4Addr, Ipv6Addr};
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

/// The IPv6 side of a TAP: the interface's `address6` and `gateway6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapIpv6 {
    /// The appliance's IPv6 address on the interface.
    pub addr: Ipv6Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The IPv6 default gateway, if any.
    pub gateway: Option<Ipv6Addr>,
}

/// The IPv6 sysctls of a TAP (before its link comes up): disabled without an address; with one,
/// enabled without router advertisements, autoconfiguration, router solicitations or duplicate
/// address detection.
fn tap_ipv6_sysctls(tap: &str, ipv6: Option<&TapIpv6>) {
    let key = |k: &str| format!("net.ipv6.conf.{tap}.{k}");
    if ipv6.is_none() {
        sysctl(&key("disable_ipv6"), "1");
        return;
    }
    for (k, v) in [
        ("accept_ra", "0"),
        ("autoconf", "0"),
        ("router_solicitations", "0"),
        ("dad_transmits", "0"),
        ("accept_dad", "0"),
        ("disable_ipv6", "0"),
    ] {
        sysctl(&key(k), v);
    }
}

/// Gives the TAP `tap` its IPv6 address (no duplicate address detection: vipmux owns the port)
/// and default route.
fn tap_ipv6_address(tap: &str, v6: &TapIpv6) -> Result<(), String> {
    let cidr = format!("{}/{}", v6.addr, v6.prefix_len);
    run(&["ip", "-6", "addr", "replace", &cidr, "dev", tap, "nodad"])?;
    if let Some(gw) = v6.gateway {
        let gw = gw.to_string();
        run(&[
            "ip", "-6", "route", "replace", "default", "via", &gw, "dev", tap,
        ])?;
    }
    Ok(())
}

/// Configures the TAP `tap`: MAC, address, up, default route via `gateway`; IPv6 address and
/// default route from `ipv6`, or IPv6 disabled without it.
pub fn configure_tap(
    tap: &str,
    mac: MacAddr,
    addr: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
    ipv6: Option<&TapIpv6>,
) -> Result<(), String> {
    tap_ipv6_sysctls(tap, ipv6);
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
    if let Some(v6) = ipv6 {
        tap_ipv6_address(tap, v6)?;
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
