//! Build script: generates the DPDK bindings and compiles the C shim.
//!
//! Flags come from `pkg-config --cflags libdpdk` and are passed verbatim to both bindgen and the C
//! compiler (they carry `-include rte_config.h` and DPDK's `-march`); the link line is
//! `pkg-config --static --libs libdpdk`, translated into cargo directives: DPDK is linked into the
//! binary, so its drivers' calls into the mempool and EAL (the per-lcore mempool cache of every
//! mbuf alloc and free) are direct calls and direct thread-local reads, not a shared object's
//! `__tls_get_addr` and PLT calls. `VIPMUX_DPDK_LINK=shared` links DPDK's shared objects instead
//! (`pkg-config --libs`; EAL then loads the PMDs as plugins). Nothing DPDK-specific is
//! hard-coded here. The script reruns only when build.rs, shim.c or shim.h change, so editing the
//! Rust sources never regenerates the bindings.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SHIM_C: &str = "src/dpdk/shim.c";
const SHIM_H: &str = "src/dpdk/shim.h";

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args.iter().chain(&["libdpdk"]))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run pkg-config (install pkg-config and libdpdk-dev): {e}")
        });
    if !out.status.success() {
        panic!(
            "`pkg-config {} libdpdk` failed (is libdpdk-dev installed?): {}",
            args.join(" "),
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

    let cflags = pkg_config(&["--cflags"]);
    println!("cargo:rerun-if-env-changed=VIPMUX_DPDK_LINK");
    let static_link = match env::var("VIPMUX_DPDK_LINK").as_deref() {
        Ok("shared") => false,
        Ok("static") | Err(_) => true,
        Ok(other) => panic!("VIPMUX_DPDK_LINK={other}: use `static` (the default) or `shared`"),
    };
    let libs = if static_link {
        pkg_config(&["--static", "--libs"])
    } else {
        pkg_config(&["--libs"])
    };

    // The shim: DPDK's static-inline functions and function-like-macro constants as real symbols.
    let mut build = cc::Build::new();
    build.file(SHIM_C).opt_level(3).warnings(true);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("vipmux_dpdk_shim");

    // Link line (after the shim, which depends on it).
    if static_link {
        link_static(&libs);
    } else {
        link_shared(&libs);
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

/// The shared link: pkg-config's `--libs` line as cargo directives. EAL then loads the PMDs as
/// plugins from DPDK's driver directory.
fn link_shared(libs: &[String]) {
    for lib in libs {
        if let Some(dir) = lib.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(name) = lib.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={name}");
        } else {
            println!("cargo:rustc-link-arg={lib}");
        }
    }
}

/// The static link: pkg-config's `--static --libs` line, whose DPDK archives (`-l:librte_*.a`)
/// are linked whole between its `--whole-archive` markers, so that every driver's constructor
/// registers it; the libraries they need stay shared. The line also names each DPDK library
/// again as `-lrte_*` (its shared form): those already linked as archives are left out, as are
/// the flags meant for a C program that loads plugins (`--export-dynamic`).
fn link_static(libs: &[String]) {
    let mut whole = false;
    let mut archives = Vec::new();
    for lib in libs {
        if lib == "-Wl,--whole-archive" {
            whole = true;
        } else if lib == "-Wl,--no-whole-archive" {
            whole = false;
        } else if lib == "-Wl,--export-dynamic" || lib == "-Wl,--as-needed" {
            // rustc links with --as-needed itself; nothing here loads plugins.
        } else if let Some(dir) = lib.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(a) = lib
            .strip_prefix("-l:lib")
            .and_then(|n| n.strip_suffix(".a"))
        {
            let modifiers = if whole {
                "+whole-archive,-bundle"
            } else {
                "-bundle"
            };
            println!("cargo:rustc-link-lib=static:{modifiers}={a}");
            archives.push(a.to_owned());
        } else if let Some(name) = lib.strip_prefix("-l") {
            if !archives.iter().any(|a| a == name) {
                println!("cargo:rustc-link-lib=dylib={name}");
            }
        } else {
            println!("cargo:rustc-link-arg={lib}");
        }
    }
}
