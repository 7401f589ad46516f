//! SIGINT/SIGTERM as a stop flag, through a tiny FFI to `signal(2)` (no extra crate).

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
const SIGHUP: c_int = 1;
const SIG_ERR: usize = usize::MAX;

extern "C" {
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
}

extern "C" fn on_stop_signal(_signum: c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Installs handlers so SIGINT and SIGTERM set the stop flag instead of killing the process.
pub fn install_stop_handler() -> std::io::Result<()> {
    for sig in [SIGINT, SIGTERM] {
        // SAFETY: the handler only performs an atomic store, which is async-signal-safe, and
        // `signal` is given a valid `extern "C"` function pointer with the expected signature.
        let previous = unsafe { signal(sig, on_stop_signal) };
        if previous == SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_reload_signal(_signum: c_int) {
    // Only an atomic store: async-signal-safe.
    RELOAD.store(true, Ordering::Relaxed);
}

/// Installs a handler so SIGHUP requests a reload (see [`take_reload_request`]).
pub fn install_reload_handler() -> std::io::Result<()> {
    // SAFETY: as in `install_stop_handler`: the handler only performs an atomic store.
    let previous = unsafe { signal(SIGHUP, on_reload_signal) };
    if previous == SIG_ERR {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
