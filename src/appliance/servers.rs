//! The appliance's control surfaces as servers: the control socket and, when configured, the
//! metrics endpoint, both answering from the shared hub through [`ApplianceControl`].

use std::path::PathBuf;
use std::sync::Arc;

use super::control::ApplianceControl;
use super::BoxError;
use crate::control::{ControlServer, MetricsServer};
use crate::runtime::Shared;

/// The running control socket and metrics endpoint.
#[derive(Debug)]
pub(super) struct Servers {
    control: ControlServer,
    metrics: Option<MetricsServer>,
}

impl Servers {
    /// Starts the control socket (its directory created if missing; failing to start it is an
    /// error) and the metrics endpoint (failing to start it is logged, the appliance runs
    /// without), at the addresses of the configuration in `shared`.
    pub(super) fn start(shared: &Arc<Shared>) -> Result<Servers, BoxError> {
        let config = shared.config.load_full();
        let socket = PathBuf::from(&config.control.socket);
        let metrics_addr = config.control.metrics.as_str();
        let handler = Arc::new(ApplianceControl::new(Arc::clone(shared)));
        let control = ControlServer::start(&socket, handler.clone())
            .map_err(|e| format!("control socket {}: {e}", socket.display()))?;
        let metrics = if metrics_addr.is_empty() {
            None
        } else {
            match MetricsServer::start(metrics_addr, handler.clone()) {
                Ok(s) => {
                    tracing::info!(addr = %s.local_addr(), "metrics endpoint up");
                    Some(s)
                }
                Err(e) => {
                    tracing::error!("metrics endpoint {metrics_addr}: {e}; continuing without");
                    None
                }
            }
        };
        Ok(Servers { control, metrics })
    }

    /// Stops both: the control socket (removed) first, then the metrics endpoint.
    pub(super) fn stop(self) {
        drop(self.control);
        if let Some(m) = self.metrics {
            m.shutdown();
        }
    }
}
