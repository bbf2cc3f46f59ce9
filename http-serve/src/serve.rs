//! The HTTP/1.1 serve loop, plain or TLS: a header-read (and handshake) timeout so slow or
//! idle clients are cut off, graceful shutdown of the requests in flight, and the
//! SIGINT/SIGTERM future both binaries stop on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight. HTTP/1.1 only. A client must send its request headers within `header_timeout`
/// (and the whole request within the router's timeout), so a slow or idle client cannot
/// hold a connection open forever.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_tls(listener, router, header_timeout, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given: each connection's handshake runs in its own
/// task, bounded by `header_timeout` like the headers that follow it; a failed or slow
/// handshake drops that connection only.
pub async fn serve_with_tls(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Per-connection errors (reset before accept) and resource exhaustion
                    // (EMFILE): keep serving, without spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and written in pieces (over TLS: session tickets, then the
        // response): without TCP_NODELAY, Nagle holds the last piece until the client's
        // delayed ACK, about 40 ms per request.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
        }
        let service = TowerToHyperService::new(router.clone());
        let mut close = close_rx.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, service, header_timeout, &mut close).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream));
                    let tls_stream = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = close.changed() => return,
                    };
                    serve_connection(tls_stream, service, header_timeout, &mut close).await
                }
            }
        });
    }
    drop(listener);
    drop(close_rx);
    let _ = close_tx.send(());
    close_tx.closed().await;
    Ok(())
}

/// One HTTP/1.1 connection (plain or TLS) until it ends or the server closes.
async fn serve_connection<I>(
    io: I,
    service: TowerToHyperService<Router>,
    header_timeout: Duration,
    close: &mut tokio::sync::watch::Receiver<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection ended: {e}");
            }
        }
        _ = close.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
