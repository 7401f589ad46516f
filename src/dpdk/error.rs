//! `DpdkError`: a failed DPDK call, with the call's name, what it was about and `rte_strerror` text.

use std::ffi::CStr;
use std::fmt;

use super::sys;

/// A DPDK call that failed: which call, on what, the error number and DPDK's text for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError {
    call: &'static str,
    detail: String,
    code: i32,
    message: String,
}

impl DpdkError {
    /// An error from a DPDK return code (negative or positive errno), with `rte_strerror` text.
    pub(crate) fn from_code(call: &'static str, detail: impl Into<String>, code: i32) -> Self {
        let code = code.abs();
        Self {
            call,
            detail: detail.into(),
            code,
            message: strerror(code),
        }
    }

    /// An error from a DPDK return code with the driver's own message before DPDK's text for
    /// the number (an empty `driver` message leaves DPDK's text alone).
    pub(crate) fn from_code_with(
        call: &'static str,
        detail: impl Into<String>,
        code: i32,
        driver: &str,
    ) -> Self {
        let mut e = Self::from_code(call, detail, code);
        if !driver.is_empty() && driver != e.message {
            e.message = format!("{driver}: {}", e.message);
        }
        e
    }

    /// An error whose number is in `rte_errno` (calls that return NULL or -1).
    pub(crate) fn from_rte_errno(call: &'static str, detail: impl Into<String>) -> Self {
        // SAFETY: vipmux_errno only reads the calling thread's rte_errno TLS variable.
        let code = unsafe { sys::vipmux_errno() };
        Self::from_code(call, detail, code)
    }

    /// An error detected on the Rust side before or around a DPDK call.
    pub(crate) fn invalid(
        call: &'static str,
        detail: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            call,
            detail: detail.into(),
            code: libc_einval(),
            message: message.into(),
        }
    }

    /// The DPDK function (or vipmux operation) that failed, e.g. `rte_eth_dev_configure`.
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// What the call was about (port name, queue, mempool name, arguments).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The positive error number (errno or DPDK's own `E_RTE_*`).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The human-readable reason (`rte_strerror` text for DPDK errors).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.call)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        write!(f, ": {} (error {})", self.message, self.code)
    }
}

impl std::error::Error for DpdkError {}

const fn libc_einval() -> i32 {
    22
}

/// DPDK's text for an error number (`rte_strerror`, which also knows the `E_RTE_*` numbers).
pub fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a NUL-terminated string, either static or in a
    // per-thread buffer that stays valid until the next call on this thread; it is copied at once.
    unsafe {
        let p = sys::rte_strerror(code);
        if p.is_null() {
            return format!("error {code}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_call_detail_and_reason() {
        let e = DpdkError::from_code("rte_eth_dev_configure", "port net_ring0", -22);
        assert_eq!(e.code(), 22);
        assert_eq!(e.call(), "rte_eth_dev_configure");
        let text = e.to_string();
        assert!(
            text.starts_with("rte_eth_dev_configure failed (port net_ring0): "),
            "{text}"
        );
        assert!(text.contains("Invalid argument"), "{text}");
    }
}
