//! What the client commands (`status`, `flows`, `diagnose`, `reload`) share: their common
//! arguments, finding the socket path, and sending one request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::socket::{ControlClient, ControlError, Request};
use super::DEFAULT_SOCKET_PATH;

/// Arguments every client command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientArgs {
    /// Control socket of the appliance (default: the config's `[control]` socket, else /run/vipmux/vipmux.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Configuration file whose `[control]` socket to use (ignored when --socket is given).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the raw JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the appliance's answer [default: 10, reload: 30].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

impl ClientArgs {
    /// The socket path these arguments select (see [`resolve_socket_path`]).
    pub fn socket_path(&self) -> Result<PathBuf, String> {
        resolve_socket_path(self.socket.as_deref(), self.config.as_deref())
    }

    /// The request timeout: `--timeout` (at least 1 ms), else 10 s.
    pub fn timeout(&self) -> Duration {
        match self.timeout {
            Some(t) if t.is_finite() && t > 0.0 => Duration::from_secs_f64(t.max(0.001)),
            _ => Duration::from_secs(10),
        }
    }

    /// Connect, send `request`, return the answer's data.
    pub fn request(&self, request: &Request) -> Result<Value, ControlError> {
        let path = self.socket_path().map_err(ControlError::Config)?;
        ControlClient::connect_with_timeout(&path, self.timeout())?.request(request)
    }
}

/// `socket` if given, else the `[control] socket` of the config file `config` if it names one,
/// else [`DEFAULT_SOCKET_PATH`]. A config that cannot be read or parsed is an error.
pub fn resolve_socket_path(
    socket: Option<&Path>,
    config: Option<&Path>,
) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s.to_path_buf());
    }
    if let Some(file) = config {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(p) =
            socket_from_config_text(&text).map_err(|e| format!("{}: {e}", file.display()))?
        {
            return Ok(p);
        }
    }
    Ok(PathBuf::from(DEFAULT_SOCKET_PATH))
}

/// The `socket` key of the `[control]` table of a TOML configuration text, if present.
pub fn socket_from_config_text(text: &str) -> Result<Option<PathBuf>, String> {
    let value: toml::Table =
        toml::from_str(text).map_err(|e: toml::de::Error| e.message().to_string())?;
    let Some(control) = value.get("control") else {
        return Ok(None);
    };
    match control.get("socket") {
        None => Ok(None),
        Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(PathBuf::from(s))),
        Some(other) => Err(format!(
            "[control] socket: expected a non-empty path string, found {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_precedence() {
        assert_eq!(
            resolve_socket_path(
                Some(Path::new("/x.sock")),
                Some(Path::new("/nonexistent.toml"))
            ),
            Ok(PathBuf::from("/x.sock"))
        );
        assert_eq!(
            resolve_socket_path(None, None),
            Ok(PathBuf::from(DEFAULT_SOCKET_PATH))
        );
        assert!(resolve_socket_path(None, Some(Path::new("/nonexistent/vipmux.toml"))).is_err());
    }

    #[test]
    fn config_control_table() {
        let t = "[control]\nsocket = \"/run/a.sock\"\nmetrics = \"127.0.0.1:1\"\n[[interfaces]]\nname = \"dc\"\n";
        assert_eq!(
            socket_from_config_text(t),
            Ok(Some(PathBuf::from("/run/a.sock")))
        );
        assert_eq!(socket_from_config_text("[other]\nx = 1\n"), Ok(None));
        assert_eq!(
            socket_from_config_text("[control]\nmetrics = \"a\"\n"),
            Ok(None)
        );
        assert!(socket_from_config_text("[control]\nsocket = 3\n").is_err());
        assert!(socket_from_config_text("[control\n").is_err());
    }
}
