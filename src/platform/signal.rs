//! SIGINT/SIGTERM as a stop flag and SIGHUP as a reload request, through the `signal-hook` crate.
//!
//! The flags are plain statics so that the poll loops' per-iteration check
//! ([`stop_requested`]) stays one relaxed load of a fixed address. The handlers registered with
//! `signal-hook` do nothing but an atomic store, which is async-signal-safe.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
static SHUTDOWN: AtomicU32 = AtomicU32::new(0);

/// Registers `action` for `signal`; it must only store to (or add to) an atomic.
fn register_store(signal: i32, action: fn()) -> std::io::Result<()> {
    // SAFETY: `action` is one of this module's flag setters, which only perform a lock-free atomic
    // store or add: no allocation, no lock, nothing that is not async-signal-safe.
    unsafe { signal_hook::low_level::register(signal, action) }.map(|_| ())
}

/// Installs handlers so SIGINT and SIGTERM set the stop flag instead of killing the process.
pub fn install_stop_handler() -> std::io::Result<()> {
    for sig in [SIGINT, SIGTERM] {
        register_store(sig, request_stop)?;
    }
    Ok(())
}

/// Installs handlers so SIGINT and SIGTERM request a shutdown ([`shutdown_requested`]) instead of
/// setting the stop flag: the caller's supervisor withdraws its announcements first and then
/// calls [`request_stop`].
pub fn install_shutdown_handler() -> std::io::Result<()> {
    for sig in [SIGINT, SIGTERM] {
        register_store(sig, || {
            SHUTDOWN.fetch_add(1, Ordering::Relaxed);
        })?;
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived under [`install_shutdown_handler`].
pub fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::Relaxed) > 0
}

/// True once a second SIGINT or SIGTERM arrived: the operator insists, stop without waiting.
pub fn shutdown_insisted() -> bool {
    SHUTDOWN.load(Ordering::Relaxed) > 1
}

/// Installs a handler so SIGHUP requests a reload (see [`take_reload_request`]).
pub fn install_reload_handler() -> std::io::Result<()> {
    register_store(SIGHUP, || RELOAD.store(true, Ordering::Relaxed))
}

/// True (once) when SIGHUP arrived since the last call.
pub fn take_reload_request() -> bool {
    RELOAD.swap(false, Ordering::Relaxed)
}

/// True once SIGINT or SIGTERM arrived (or [`request_stop`] was called).
#[inline]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Sets the stop flag from code, as a signal would.
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}
