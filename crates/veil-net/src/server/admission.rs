//! Admission: the endpoint, the accept loop, the handshake and the
//! roster lookup, and one task per connection that forwards what the
//! connection reads to the driver (SPEC.md §12.1).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info};
use veil_crypto::ParticipantId;

use super::ServerOptions;
use crate::conn::{Caps, ReadEvent, SEND_QUEUE, spawn_reader, spawn_writer};
use crate::deployment::RosterFile;
use crate::error::{ConnectionError, Error, Result};
use crate::frame::FrameKind;
use crate::tls::{peer_fingerprint, server_config};

/// What a connection task tells the driver.
pub(super) enum Inbound {
    Connected {
        conn: quinn::Connection,
        send: mpsc::Sender<Arc<Vec<u8>>>,
        caps: Arc<Caps>,
        generation: u64,
    },
    Read(ReadEvent),
}

/// An admitted connection, as the driver holds it.
pub(super) struct Peer {
    pub(super) conn: quinn::Connection,
    pub(super) send: mpsc::Sender<Arc<Vec<u8>>>,
    pub(super) caps: Arc<Caps>,
    pub(super) generation: u64,
}

/// The address the endpoint is bound to; useful with port 0.
///
/// # Errors
/// [`Error::Connection`] if the socket cannot be bound.
pub fn bind(options: &ServerOptions) -> Result<quinn::Endpoint> {
    let config = server_config(
        &options.ca,
        options.cert_chain.clone(),
        options.key.clone_key(),
        options.roster.fingerprints(),
        &options.limits,
    )?;
    quinn::Endpoint::server(config, options.listen).map_err(|source| {
        ConnectionError::Listen {
            address: options.listen,
            source,
        }
        .into()
    })
}

pub(super) type Tagged = (ParticipantId, u64, Inbound);

pub(super) async fn accept_loop(
    endpoint: quinn::Endpoint,
    roster: RosterFile,
    max_connections: usize,
    handshake_timeout: Duration,
    out: mpsc::Sender<Tagged>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut generation = 0_u64;
    while let Some(incoming) = endpoint.accept().await {
        if live.load(Ordering::Relaxed) >= max_connections {
            debug!(peer = %incoming.remote_address(), "connection refused: at the limit");
            incoming.refuse();
            continue;
        }
        generation = generation.wrapping_add(1);
        let guard = ConnGuard::new(&live);
        let roster = roster.clone();
        let out = out.clone();
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            match tokio::time::timeout(handshake_timeout, admit(incoming, &roster)).await {
                Ok(Ok((id, conn, send, recv))) => {
                    serve_connection(id, generation, conn, send, recv, out).await;
                }
                Ok(Err(e)) => info!(%peer, "connection refused: {e}"),
                Err(_) => info!(%peer, "connection refused: handshake timed out"),
            }
            drop(guard);
        });
    }
}

/// Counts a live connection until dropped.
struct ConnGuard(Arc<AtomicUsize>);

impl ConnGuard {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(live))
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Completes the handshake, maps the certificate to a roster id, and reads
/// the client's Hello on its stream.
async fn admit(
    incoming: quinn::Incoming,
    roster: &RosterFile,
) -> Result<(
    ParticipantId,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
)> {
    let conn = incoming.await.map_err(ConnectionError::from)?;
    let fingerprint = peer_fingerprint(&conn).ok_or(ConnectionError::NoCertificate)?;
    // The verifier admitted only roster certificates; look the id up.
    let id = roster
        .by_fingerprint(&fingerprint)
        .map(|e| e.id)
        .ok_or(ConnectionError::NotInRoster)?;
    let (send, mut recv) = conn.accept_bi().await.map_err(ConnectionError::from)?;
    let hello = crate::frame::read_frame(&mut recv, |k| (k == FrameKind::Hello).then_some(0))
        .await?
        .ok_or(Error::Frame("stream ended before Hello"))?;
    if hello.0 != FrameKind::Hello {
        return Err(Error::Frame("first frame is not Hello"));
    }
    Ok((id, conn, send, recv))
}

async fn serve_connection(
    id: ParticipantId,
    generation: u64,
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    out: mpsc::Sender<Tagged>,
) {
    let caps = Caps::refuse_all();
    let (queue_tx, queue_rx) = mpsc::channel(SEND_QUEUE);
    let writer = spawn_writer(send, queue_rx);
    let connected = Inbound::Connected {
        conn: conn.clone(),
        send: queue_tx,
        caps: Arc::clone(&caps),
        generation,
    };
    if out.send((id, generation, connected)).await.is_err() {
        return;
    }
    let (read_tx, mut read_rx) = mpsc::channel(4);
    let reader = spawn_reader(recv, caps, (), read_tx);
    while let Some(((), event)) = read_rx.recv().await {
        let closed = matches!(event, ReadEvent::Closed(_));
        if out
            .send((id, generation, Inbound::Read(event)))
            .await
            .is_err()
            || closed
        {
            break;
        }
    }
    reader.abort();
    writer.abort();
}
