//! The client side: one request, one answer.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::{encode_line, Request, Response};

/// Why a request got no answer.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens at the path (no daemon).
    NotRunning {
        /// The control socket path.
        path: String,
    },
    /// The socket exists but we may not use it.
    PermissionDenied {
        /// The control socket path.
        path: String,
    },
    /// Other I/O failure talking to the daemon.
    Io {
        /// The control socket path.
        path: String,
        /// The error.
        error: io::Error,
    },
    /// The daemon's answer was not understood.
    BadAnswer(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRunning { path } => write!(
                f,
                "xrsecd is not running: no control socket at {path} (start it with `systemctl start xrsecd`, or pass --control PATH)"
            ),
            Self::PermissionDenied { path } => {
                write!(f, "permission denied on {path}: the control socket is root's (run as root)")
            }
            Self::Io { path, error } => write!(f, "talking to xrsecd at {path}: {error}"),
            Self::BadAnswer(e) => write!(f, "xrsecd answered something this client does not understand: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends `request` to the daemon at `path` and returns its answer.
pub fn request(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let shown = path.display().to_string();
    let io_err = |error: io::Error| match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
            path: shown.clone(),
        },
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
            path: shown.clone(),
        },
        _ => ClientError::Io {
            path: shown.clone(),
            error,
        },
    };
    let mut stream = UnixStream::connect(path).map_err(io_err)?;
    // A daemon that accepted but hangs must not hang the client forever.
    let timeout = Some(Duration::from_secs(10));
    stream.set_read_timeout(timeout).map_err(io_err)?;
    stream.set_write_timeout(timeout).map_err(io_err)?;
    stream
        .write_all(encode_line(request).as_bytes())
        .map_err(io_err)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(io_err)?;
    if line.is_empty() {
        return Err(ClientError::BadAnswer(
            "the daemon closed the connection without answering".into(),
        ));
    }
    serde_json::from_str(line.trim_end()).map_err(|e| ClientError::BadAnswer(e.to_string()))
}
