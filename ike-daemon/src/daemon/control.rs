//! The control socket: a unix stream socket (mode 0600, its directory
//! created 0700 if missing), one JSON request per line, one JSON response
//! per line (docs/control-protocol.md). Each client connection is a task
//! that hands requests to the driver loop and writes the answers back.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::ControlCmd;
use crate::control::{self, ErrorKind, MAX_REQUEST_LINE, Response};

/// Binds the control socket. A stale socket file (no daemon answering) is
/// replaced; a live one is an error (another iked runs).
pub fn listen(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another iked is listening there",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Accepts clients until the driver goes away.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<ControlCmd>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = client(stream, tx).await {
                        debug!("control client: {e}");
                    }
                });
            }
            Err(e) => {
                warn!("control socket accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn client(stream: UnixStream, tx: mpsc::Sender<ControlCmd>) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut buf = Vec::new();
        let limit = u64::try_from(MAX_REQUEST_LINE).unwrap_or(u64::MAX);
        let n = (&mut r).take(limit).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if !buf.ends_with(b"\n") && n >= MAX_REQUEST_LINE {
            let resp = Response::error(
                ErrorKind::BadRequest,
                format!("request longer than {MAX_REQUEST_LINE} bytes"),
            );
            w.write_all(control::encode_line(&resp).as_bytes()).await?;
            return Ok(());
        }
        let resp = match std::str::from_utf8(&buf)
            .map_err(|e| e.to_string())
            .and_then(|s| control::decode_request(s).map_err(|e| e.to_string()))
        {
            Err(e) => Response::error(ErrorKind::BadRequest, e),
            Ok(request) => {
                let (reply, rx) = oneshot::channel();
                if tx.send(ControlCmd { request, reply }).await.is_err() {
                    Response::error(ErrorKind::ShuttingDown, "iked is shutting down")
                } else {
                    rx.await.unwrap_or_else(|_| {
                        Response::error(ErrorKind::ShuttingDown, "iked is shutting down")
                    })
                }
            }
        };
        w.write_all(control::encode_line(&resp).as_bytes()).await?;
    }
}
