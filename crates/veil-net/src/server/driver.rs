//! The QUIC driver: feeds the coordinator what the connections read, the
//! connects and disconnects, and its deadlines; carries out its actions on
//! the connections and in the state directory, in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{info, warn};
use veil_crypto::ParticipantId;
use veil_round::{Action, Coordinator, Release, RoundRecord, StopReason};

use super::admission::{Inbound, Peer, Tagged};
use super::blocking::session_call;
use crate::conn::ReadEvent;
use crate::error::{ConnectionError, Error, Result};
use crate::frame::{FrameKind, encode_frame};
use crate::state::StateDir;
use crate::tls::close;

/// A message and its frame.
type Framed = (Arc<Vec<u8>>, Arc<Vec<u8>>);

pub(super) struct QuicDriver {
    coordinator: Coordinator,
    state: StateDir,
    peers: BTreeMap<ParticipantId, Peer>,
    rx: mpsc::Receiver<Tagged>,
    /// Each participant's connection UDP counters (received, sent) when
    /// the round started, to report what the round put on the wire.
    udp_start: BTreeMap<ParticipantId, (u64, u64)>,
    /// The last message framed, and its frame: a broadcast (the task) is
    /// framed once for all its recipients.
    last_frame: Option<Framed>,
}

impl QuicDriver {
    pub(super) fn new(
        coordinator: Coordinator,
        state: StateDir,
        rx: mpsc::Receiver<Tagged>,
    ) -> Self {
        Self {
            coordinator,
            state,
            peers: BTreeMap::new(),
            rx,
            udp_start: BTreeMap::new(),
            last_frame: None,
        }
    }

    pub(super) fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// Closes every connection with `code`.
    pub(super) fn close_all(&self, code: u32) {
        for peer in self.peers.values() {
            peer.conn.close(code.into(), b"server stops");
        }
    }

    pub(super) async fn run(&mut self) -> Result<StopReason> {
        loop {
            if let Some(stop) = self.carry_out()? {
                return Ok(stop);
            }
            let deadline = self.coordinator.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                inbound = self.rx.recv() => match inbound {
                    Some((id, generation, inbound)) => self.inbound(id, generation, inbound)?,
                    None => return Err(ConnectionError::AcceptLoopEnded.into()),
                },
                () = sleep => {
                    let phase = self.coordinator.phase();
                    let c = &mut self.coordinator;
                    session_call(phase, || c.handle_timeout(Instant::now()))?;
                }
            }
        }
    }

    fn inbound(&mut self, id: ParticipantId, generation: u64, inbound: Inbound) -> Result<()> {
        let phase = self.coordinator.phase();
        match inbound {
            Inbound::Connected {
                conn,
                send,
                caps,
                generation,
            } => {
                info!(participant = id, peer = %conn.remote_address(), "client connected");
                let peer = Peer {
                    conn,
                    send,
                    caps,
                    generation,
                };
                if let Some(old) = self.peers.insert(id, peer) {
                    old.conn.close(close::REPLACED.into(), b"replaced");
                }
                let c = &mut self.coordinator;
                session_call(phase, || c.connected(id, Instant::now()))?;
            }
            Inbound::Read(ReadEvent::Closed(why)) => {
                if self.remove(id, generation) {
                    info!(participant = id, "connection ended: {why}");
                    let c = &mut self.coordinator;
                    session_call(phase, || c.disconnected(id, Instant::now()))?;
                }
            }
            Inbound::Read(ReadEvent::Frame(kind, bytes)) => {
                if self
                    .peers
                    .get(&id)
                    .is_none_or(|p| p.generation != generation)
                {
                    return Ok(());
                }
                if kind != FrameKind::SecAgg {
                    warn!(participant = id, ?kind, "unexpected frame: disconnected");
                    self.remove(id, generation);
                    let c = &mut self.coordinator;
                    return session_call(phase, || c.disconnected(id, Instant::now()))
                        .map_err(Error::from);
                }
                let c = &mut self.coordinator;
                session_call(phase, || c.handle_message(id, &bytes, Instant::now()))?;
            }
        }
        Ok(())
    }

    /// Removes `id`'s connection of `generation` (closing it); `false` if
    /// that connection is not the current one.
    fn remove(&mut self, id: ParticipantId, generation: u64) -> bool {
        if self
            .peers
            .get(&id)
            .is_some_and(|p| p.generation == generation)
        {
            if let Some(p) = self.peers.remove(&id) {
                p.conn.close(close::VIOLATION.into(), b"closed");
            }
            return true;
        }
        false
    }

    /// Carries out the coordinator's actions in order; `Some` when the run
    /// is over.
    fn carry_out(&mut self) -> Result<Option<StopReason>> {
        while let Some(action) = self.coordinator.poll_action() {
            match action {
                Action::SaveCounters(counters) => self.state.save_counters(&counters)?,
                Action::RoundStarted {
                    participants,
                    client_cap,
                    ..
                } => {
                    for id in &participants {
                        if let Some(peer) = self.peers.get(id) {
                            peer.caps.set(FrameKind::SecAgg, Some(client_cap));
                        }
                    }
                    self.udp_start = self.udp_counters(&participants);
                }
                Action::Send { to, message } => self.send(to, &message)?,
                Action::Disconnect {
                    participant,
                    reason,
                } => {
                    if let Some(p) = self.peers.remove(&participant) {
                        p.conn.close(close::VIOLATION.into(), reason.as_bytes());
                    }
                }
                Action::Ended(mut record) => {
                    self.add_udp(&mut record);
                    self.state.append_round(&record)?;
                }
                Action::Release(mut release) => {
                    self.add_udp(&mut release.record);
                    self.state.save_release(&release)?;
                    log_release(&release);
                    self.coordinator.released(&release.record);
                }
                Action::Stop(reason) => return Ok(Some(reason)),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Queues a message for `to`; a missing or full queue drops it from
    /// the round (a slow client never blocks the others).
    fn send(&mut self, to: ParticipantId, message: &Arc<Vec<u8>>) -> Result<()> {
        let frame = match &self.last_frame {
            Some((m, f)) if Arc::ptr_eq(m, message) => Arc::clone(f),
            _ => {
                let f = Arc::new(encode_frame(FrameKind::SecAgg, message)?);
                self.last_frame = Some((Arc::clone(message), Arc::clone(&f)));
                f
            }
        };
        let Some(peer) = self.peers.get(&to) else {
            // Gone already: the coordinator has been told.
            return Ok(());
        };
        if peer.send.try_send(frame).is_err() {
            warn!(participant = to, "cannot reach the client: dropped");
            if let Some(p) = self.peers.remove(&to) {
                p.conn.close(close::VIOLATION.into(), b"not reading");
            }
            let phase = self.coordinator.phase();
            let c = &mut self.coordinator;
            session_call(phase, || c.disconnected(to, Instant::now()))?;
        }
        Ok(())
    }

    /// The UDP bytes (received, sent) of each participant's connection.
    fn udp_counters(&self, ids: &[ParticipantId]) -> BTreeMap<ParticipantId, (u64, u64)> {
        ids.iter()
            .filter_map(|id| {
                let stats = self.peers.get(id)?.conn.stats();
                Some((*id, (stats.udp_rx.bytes, stats.udp_tx.bytes)))
            })
            .collect()
    }

    /// Adds the wire bytes of the participants still connected (a dropped
    /// client's connection is gone, and with it its counters).
    fn add_udp(&self, record: &mut RoundRecord) {
        let (mut udp_in, mut udp_out) = (0_u64, 0_u64);
        for (id, (rx, tx)) in self.udp_counters(&record.participants) {
            let (rx0, tx0) = self.udp_start.get(&id).copied().unwrap_or((rx, tx));
            udp_in = udp_in.saturating_add(rx.saturating_sub(rx0));
            udp_out = udp_out.saturating_add(tx.saturating_sub(tx0));
        }
        record.udp_bytes_in = udp_in;
        record.udp_bytes_out = udp_out;
    }
}

fn log_release(release: &Release) {
    let r = &release.record;
    let n = r.participants.len().max(1) as u64;
    info!(
        round = r.round_id,
        training_round = r.training_round,
        participants = r.participants.len(),
        included = r.included.len(),
        dropped = r.participants.len().saturating_sub(r.included.len()),
        bytes_in_per_client = r.bytes_in / n,
        bytes_out_per_client = r.bytes_out / n,
        udp_in_per_client = r.udp_bytes_in / n,
        udp_out_per_client = r.udp_bytes_out / n,
        total_ms = r.total_ms,
        epsilon = r.epsilon,
        "round released"
    );
}
