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

use ike::control::{self, ErrorKind, MAX_REQUEST_LINE, Request, Response};

/// A control request with the way back to its client.
#[derive(Debug)]
pub struct ControlCmd {
    /// The request.
    pub request: Request,
    /// Where the response goes.
    pub reply: oneshot::Sender<Response>,
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use ike::control::{Request, decode_response, encode_line};

    async fn roundtrip(stream: &mut UnixStream, line: &[u8]) -> Response {
        stream.write_all(line).await.unwrap();
        let mut buf = Vec::new();
        let mut r = BufReader::new(&mut *stream);
        r.read_until(b'\n', &mut buf).await.unwrap();
        decode_response(std::str::from_utf8(&buf).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn requests_reach_the_driver_and_garbage_is_answered() {
        let dir = std::env::temp_dir().join(format!("iked-ctl-{}", std::process::id()));
        let path = dir.join("sub/iked.sock");
        let l = listen(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        // A second daemon on the same socket is refused.
        assert!(listen(&path).is_err());

        let (tx, mut rx) = mpsc::channel::<ControlCmd>(4);
        let server = tokio::spawn(serve(l, tx));
        // A fake driver: answers status with no SAs.
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                assert_eq!(c.request, Request::Status {});
                let _ = c.reply.send(Response::Status {
                    ike_sas: vec![],
                    traps: vec![],
                });
            }
        });
        let mut s = UnixStream::connect(&path).await.unwrap();
        let r = roundtrip(&mut s, b"{\"command\":\"nope\"}\n").await;
        assert!(
            matches!(
                r,
                Response::Error {
                    kind: ErrorKind::BadRequest,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = roundtrip(&mut s, b"\xff\xfe\n").await;
        assert!(
            matches!(
                r,
                Response::Error {
                    kind: ErrorKind::BadRequest,
                    ..
                }
            ),
            "{r:?}"
        );
        // Same connection, a valid request after garbage.
        let r = roundtrip(&mut s, encode_line(&Request::Status {}).as_bytes()).await;
        assert_eq!(
            r,
            Response::Status {
                ike_sas: vec![],
                traps: vec![],
            }
        );
        // An endless line is cut off with an answer, not buffered forever.
        let mut s2 = UnixStream::connect(&path).await.unwrap();
        let big = vec![b'x'; MAX_REQUEST_LINE + 10];
        let r = roundtrip(&mut s2, &big).await;
        assert!(
            matches!(
                r,
                Response::Error {
                    kind: ErrorKind::BadRequest,
                    ..
                }
            ),
            "{r:?}"
        );
        server.abort();
        let _ = server.await;
        drop((s, s2));
        // A stale socket file (no daemon behind it) is replaced.
        assert!(path.exists());
        assert!(listen(&path).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
