//! The control socket: a Unix stream socket (mode 0600, in a 0700
//! directory), one JSON request line per connection, answered by the
//! control task. A client that sends garbage, too much, or nothing gets an
//! error line or a closed connection; the daemon carries on.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use xrsec_control::{decode_request, encode_line, Response, MAX_REQUEST_LEN};

use crate::daemon::Input;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The listening socket; dropping it stops accepting.
pub(crate) struct ControlSocket {
    task: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket at `path`. A socket left behind by a dead
/// daemon is replaced; one a live daemon answers on is not.
pub(crate) fn listen(path: &Path, tx: mpsc::UnboundedSender<Input>) -> io::Result<ControlSocket> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another xrsecd is running and answers on it",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, tx.clone()));
                }
                Err(e) => {
                    warn!("control socket: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(ControlSocket {
        task,
        path: path.to_owned(),
    })
}

async fn serve(stream: UnixStream, tx: mpsc::UnboundedSender<Input>) {
    let (read, mut write) = stream.into_split();
    // One byte more than allowed, so that an overlong line is recognised.
    let mut reader = BufReader::new(read.take(MAX_REQUEST_LEN as u64 + 1));
    let mut line = String::new();
    let answer = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Response::Error {
            message: format!("no request within {} s", REQUEST_TIMEOUT.as_secs()),
        },
        Ok(Err(e)) => Response::Error {
            message: format!("cannot read the request: {e}"),
        },
        Ok(Ok(_)) => match decode_request(&line) {
            Err(message) => Response::Error { message },
            Ok(req) => {
                tracing::trace!("control: {req:?}");
                let (reply_tx, reply_rx) = oneshot::channel();
                if tx.send(Input::Control(req, reply_tx)).is_err() {
                    return;
                }
                match reply_rx.await {
                    Ok(r) => r,
                    Err(_) => Response::Error {
                        message: "xrsecd is shutting down".into(),
                    },
                }
            }
        },
    };
    let _ = write.write_all(encode_line(&answer).as_bytes()).await;
    let _ = write.shutdown().await;
}
