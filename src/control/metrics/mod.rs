//! Prometheus metrics: a text-exposition encoder (format 0.0.4), the appliance's metric set
//! (docs/design.md §3.9) as plain data, and a small HTTP server answering `GET /metrics`.
//!
//! The appliance implements [`MetricsSource`] — most simply by filling an [`ApplianceMetrics`] from
//! its aggregated counters and calling [`ApplianceMetrics::render`] — and starts a [`MetricsServer`].
//!
//! Its rooms: [`encode`] (the exposition format), [`names`] (every metric's name), [`set`] (the
//! appliance's metric set) and [`server`] (the HTTP endpoint).

pub mod encode;
pub mod names;
pub mod server;
pub mod set;

pub use encode::{
    escape_help, escape_label_value, render_text, sanitize_name, Encoder, MetricType,
    MetricsSource, PromValue,
};
pub use server::{MetricsServer, CONTENT_TYPE, IO_TIMEOUT, MAX_CONNECTIONS, MAX_REQUEST_HEAD};
pub use set::{
    ApplianceMetrics, LbBackendMetrics, LbFrontendMetrics, MemberMetrics, PortMetrics, RuleMetrics,
    SnatMetrics, WorkerMetrics,
};

#[cfg(test)]
mod tests;
