//! `rte_flow` rules on a port: the NIC steering of docs/design.md §6.2. A [`SteerRule`] (plain
//! data from [`crate::balance::steer`]) becomes one rule — pattern ETH / IPV4 / TCP or UDP,
//! action RSS (Toeplitz, level 0, the given key and queues, source-only or destination-only
//! types) or QUEUE — built by the C shim (`vipmux_flow_*`), which owns the item and action
//! structures.

use std::ffi::CStr;
use std::net::Ipv4Addr;
use std::os::raw::c_char;
use std::ptr::NonNull;

use super::error::DpdkError;
use super::port::{Port, PortId};
use super::sys;
use crate::balance::steer::{SteerAction, SteerPlan, SteerRule};

/// Bytes of a driver's error message kept.
const MESSAGE_LEN: usize = 256;

/// The shim's description of `rule` with `key` and `queues` for its RSS action.
fn spec(rule: &SteerRule, key: &[u8], queues: &[u16]) -> sys::vipmux_flow_spec {
    let addr = |a: Option<Ipv4Addr>| a.map_or((0, 0), |a| (u32::from(a), u32::MAX));
    let (src, src_mask) = addr(rule.src);
    let (dst, dst_mask) = addr(rule.dst);
    let (sport, sport_mask) = rule.src_port.map_or((0, 0), |p| (p, u16::MAX));
    let (dport, dport_mask) = rule.dst_ports.unwrap_or((0, 0));
    let (hash, queue) = match rule.action {
        SteerAction::Queue(q) => (0, q),
        SteerAction::HashSource => (1, 0),
        SteerAction::HashDestination => (2, 0),
    };
    sys::vipmux_flow_spec {
        src,
        src_mask,
        dst,
        dst_mask,
        proto: rule.proto,
        sport,
        sport_mask,
        dport,
        dport_mask,
        priority: rule.priority,
        hash,
        queue,
        key: key.as_ptr(),
        key_len: key.len() as u32,
        queues: queues.as_ptr(),
        queue_num: queues.len() as u32,
    }
}

/// The NUL-terminated message the shim wrote into `buf`.
fn message(buf: &[c_char; MESSAGE_LEN]) -> String {
    // SAFETY: the buffer is zeroed before the call and the shim writes at most MESSAGE_LEN - 1
    // bytes and a NUL (snprintf), so it holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The flow rules vipmux created on one port, destroyed with [`FlowRules::destroy_all`] (before
/// the port is closed: closing it frees them in the driver).
#[derive(Debug)]
pub struct FlowRules {
    port: PortId,
    name: String,
    created: Vec<NonNull<sys::rte_flow>>,
}

// SAFETY: a created rule's handle is an opaque pointer only ever passed back to DPDK's
// rte_flow_destroy on the same port, from `&mut self`; DPDK's flow API is thread-safe per port.
unsafe impl Send for FlowRules {}
// SAFETY: `&self` methods never touch the handles.
unsafe impl Sync for FlowRules {}

impl FlowRules {
    /// No rules yet on `port`.
    pub fn new(port: &Port) -> FlowRules {
        FlowRules {
            port: port.id(),
            name: port.name().to_owned(),
            created: Vec::new(),
        }
    }

    /// Rules created and not destroyed.
    pub fn len(&self) -> usize {
        self.created.len()
    }

    /// No rule created.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
    }

    /// Asks the driver whether it would accept `rule` (RSS over `queues` with `key`).
    pub fn validate(&self, rule: &SteerRule, key: &[u8], queues: &[u16]) -> Result<(), DpdkError> {
        let s = spec(rule, key, queues);
        let mut buf = [0 as c_char; MESSAGE_LEN];
        // SAFETY: `s` points at `key` and `queues`, which outlive the call; the message buffer
        // has MESSAGE_LEN bytes; the port id is a probed port.
        let ret =
            unsafe { sys::vipmux_flow_validate(self.port.0, &s, buf.as_mut_ptr(), MESSAGE_LEN) };
        if ret != 0 {
            return Err(DpdkError::from_code_with(
                "rte_flow_validate",
                format!("{}: {rule}", self.name),
                ret,
                &message(&buf),
            ));
        }
        Ok(())
    }

    /// Creates `rule` (RSS over `queues` with `key`) on the port.
    pub fn create(
        &mut self,
        rule: &SteerRule,
        key: &[u8],
        queues: &[u16],
    ) -> Result<(), DpdkError> {
        let s = spec(rule, key, queues);
        let mut buf = [0 as c_char; MESSAGE_LEN];
        // SAFETY: as in `validate`; the driver copies what it keeps of the specification.
        let flow =
            unsafe { sys::vipmux_flow_create(self.port.0, &s, buf.as_mut_ptr(), MESSAGE_LEN) };
        match NonNull::new(flow) {
            Some(f) => {
                self.created.push(f);
                Ok(())
            }
            None => {
                // SAFETY: vipmux_errno only reads the calling thread's rte_errno.
                let code = unsafe { sys::vipmux_errno() };
                Err(DpdkError::from_code_with(
                    "rte_flow_create",
                    format!("{}: {rule}", self.name),
                    code,
                    &message(&buf),
                ))
            }
        }
    }

    /// Destroys every rule created, newest first; the first failure is returned after trying
    /// them all.
    pub fn destroy_all(&mut self) -> Result<(), DpdkError> {
        let mut first = Ok(());
        while let Some(f) = self.created.pop() {
            let mut buf = [0 as c_char; MESSAGE_LEN];
            // SAFETY: `f` was returned by rte_flow_create on this port and is destroyed once
            // (popped); the port is not closed yet (see the type's documentation).
            let ret = unsafe {
                sys::vipmux_flow_destroy(self.port.0, f.as_ptr(), buf.as_mut_ptr(), MESSAGE_LEN)
            };
            if ret != 0 && first.is_ok() {
                first = Err(DpdkError::from_code_with(
                    "rte_flow_destroy",
                    self.name.clone(),
                    ret,
                    &message(&buf),
                ));
            }
        }
        first
    }

    /// Removes every rule of the port (`rte_flow_flush`), vipmux's and any other.
    pub fn flush(&mut self) -> Result<(), DpdkError> {
        let mut buf = [0 as c_char; MESSAGE_LEN];
        // SAFETY: a probed port and a MESSAGE_LEN-byte buffer; the handles are forgotten below.
        let ret = unsafe { sys::vipmux_flow_flush(self.port.0, buf.as_mut_ptr(), MESSAGE_LEN) };
        self.created.clear();
        if ret != 0 {
            return Err(DpdkError::from_code_with(
                "rte_flow_flush",
                self.name.clone(),
                ret,
                &message(&buf),
            ));
        }
        Ok(())
    }

    /// Validates every rule of `rules`, then creates them all; on the first failure destroys
    /// what was created and returns the error (the port keeps none of them).
    pub fn program_rules(
        port: &Port,
        plan: &SteerPlan,
        rules: &[SteerRule],
    ) -> Result<FlowRules, DpdkError> {
        let mut created = FlowRules::new(port);
        let queues = plan.queues();
        for r in rules {
            created.validate(r, plan.key(), &queues)?;
        }
        for r in rules {
            if let Err(e) = created.create(r, plan.key(), &queues) {
                if let Err(d) = created.destroy_all() {
                    tracing::warn!("{d}");
                }
                return Err(e);
            }
        }
        Ok(created)
    }

    /// Programs `plan`: with its outbound SNAT group when it has one and the driver takes it
    /// all, else its frontend and NAT-reply rules alone. Returns the rules and, when the
    /// outbound group was refused, the refusal; the error when even the frontend and NAT-reply
    /// rules are refused.
    pub fn program(
        port: &Port,
        plan: &SteerPlan,
    ) -> Result<(FlowRules, Option<DpdkError>), DpdkError> {
        if plan.outbound.is_empty() {
            return Ok((FlowRules::program_rules(port, plan, &plan.rules)?, None));
        }
        match FlowRules::program_rules(port, plan, &plan.with_outbound()) {
            Ok(rules) => Ok((rules, None)),
            Err(e) => Ok((FlowRules::program_rules(port, plan, &plan.rules)?, Some(e))),
        }
    }
}
