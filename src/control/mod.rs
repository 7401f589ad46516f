//! The appliance's control plane surfaces, independent of the data path: the Unix-socket control API
//! (server and client), the Prometheus metrics endpoint, the report types the CLI renders, and logging.
//!
//! The appliance plugs in by implementing [`socket::ControlHandler`] and [`metrics::MetricsSource`].

pub mod capture;
pub mod client;
pub mod logging;
pub mod metrics;
pub mod pcap;
pub mod render;
pub mod report;
pub mod serve;
pub mod socket;

pub use logging::{init_logging, LogFormat};
pub use metrics::{Encoder, MetricType, MetricsServer, MetricsSource};
pub use socket::{ControlClient, ControlError, ControlHandler, ControlServer, FlowFilter, Request};

/// Default path of the control socket when neither `--socket` nor the config names one.
pub const DEFAULT_SOCKET_PATH: &str = "/run/vipmux/vipmux.sock";

/// Default listen address of the metrics endpoint.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9469";
