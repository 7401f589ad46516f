//! The slow path's watch over the physical ports' links: a memif port is checked every round (its
//! driver may be tearing the connection down: the watch keeps the workers out first, see
//! [`crate::dpdk::link`]), the others on the tick; transitions are logged and counted.

use std::time::Instant;

use super::event_loop::Loop;
use crate::dpdk::link::{LinkChange, LinkWatch};

impl Loop<'_, '_> {
    /// Polls the link watches: every gated (memif) port, and with `all` every other port too.
    pub(super) fn watch_links(&mut self, all: bool) {
        let now = Instant::now();
        for (i, (watch, port)) in self.links.iter_mut().zip(self.t.ports).enumerate() {
            if !all && port.gate().is_none() {
                continue;
            }
            match watch.poll(port, now) {
                Some(LinkChange::Down) => {
                    tracing::warn!(interface = %self.t.shared.port_names.get(i).map_or("?", |n| n.as_str()), port = %port.name(), "link down: the port is not polled until it comes back")
                }
                Some(LinkChange::Up) => {
                    tracing::info!(interface = %self.t.shared.port_names.get(i).map_or("?", |n| n.as_str()), port = %port.name(), "link up: forwarding on the port again")
                }
                None => {}
            }
        }
    }

    /// Publishes the link counts of every physical port.
    pub(super) fn publish_link_counts(&mut self) {
        if let Ok(mut counts) = self.t.shared.port_links.lock() {
            counts.clear();
            counts.extend(self.links.iter().map(LinkWatch::counts));
        }
    }
}

/// One watch per physical port.
pub(super) fn watches(ports: &[crate::dpdk::Port]) -> Vec<LinkWatch> {
    ports.iter().map(LinkWatch::new).collect()
}
