//! Build script: generates the DPDK bindings and compiles the C shim.
//!
//! Flags come from `pkg-config --cflags libdpdk` and are passed verbatim to both bindgen and the C
//! compiler (they carry `-include rte_config.h` and DPDK's `-march`); the link line is
//! `pkg-config --libs libdpdk`, translated into cargo directives. Nothing DPDK-specific is
//! hard-coded here. The script reruns only when build.rs, shim.c or shim.h change, so editing the
//! Rust sources never regenerates the bindings.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SHIM_C: &str = "src/dpdk/shim.c";
const SHIM_H: &str = "src/dpdk/shim.h";

fn pkg_config(arg: &str) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args([arg, "libdpdk"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run pkg-config (install pkg-config and libdpdk-dev): {e}")
        });
    if !out.status.success() {
        panic!(
            "`pkg-config {arg} libdpdk` failed (is libdpdk-dev installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout)
        .expect("pkg-config output is not UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={SHIM_C}");
    println!("cargo:rerun-if-changed={SHIM_H}");

    let cflags = pkg_config("--cflags");
    let libs = pkg_config("--libs");

    // The shim: DPDK's static-inline functions and function-like-macro constants as real symbols.
    let mut build = cc::Build::new();
    build.file(SHIM_C).opt_level(3).warnings(true);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("vipmux_dpdk_shim");

    // Link line, verbatim from pkg-config (after the shim, which depends on it).
    for lib in &libs {
        if let Some(dir) = lib.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(name) = lib.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={name}");
        } else {
            println!("cargo:rustc-link-arg={lib}");
        }
    }

    let bindings = bindgen::Builder::default()
        .header(SHIM_H)
        .clang_args(&cflags)
        .allowlist_function("rte_eal_(init|cleanup|process_type)")
        .allowlist_function("rte_eth_(dev_configure|dev_info_get|dev_start|dev_stop|dev_close)")
        .allowlist_function("rte_eth_(rx_queue_setup|tx_queue_setup|dev_adjust_nb_rx_tx_desc)")
        .allowlist_function("rte_eth_(dev_get_port_by_name|dev_get_name_by_port|dev_count_avail)")
        .allowlist_function(
            "rte_eth_(dev_socket_id|macaddr_get|link_get_nowait|stats_get|stats_reset)",
        )
        .allowlist_function("rte_eth_(promiscuous_enable|dev_is_valid_port)")
        .allowlist_function("rte_pktmbuf_(pool_create|free_bulk)")
        .allowlist_function("rte_mempool_(free|avail_count|in_use_count|lookup)")
        .allowlist_function(
            "rte_(thread_register|thread_unregister|strerror|socket_id|lcore_count|get_tsc_hz)",
        )
        .allowlist_function("vipmux_.*")
        .allowlist_var("VIPMUX_.*")
        .allowlist_var("RTE_ETH_(LINK|NAME_MAX_LEN).*")
        .allowlist_var("RTE_MAX_ETHPORTS|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_DATAROOM")
        .allowlist_type("rte_eth_conf|rte_eth_dev_info|rte_eth_stats|rte_eth_link|rte_ether_addr")
        .allowlist_type("rte_eth_rx_mq_mode|rte_mbuf|rte_mempool")
        // The mempool is only ever handled through a pointer.
        .opaque_type("rte_mempool")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .derive_default(true)
        .prepend_enum_name(false)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .expect("bindgen failed on the DPDK headers");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR not set")).join("dpdk_bindings.rs");
    bindings
        .write_to_file(&out)
        .expect("cannot write the DPDK bindings");
}
