//! What a client persists between runs (SPEC.md §12.4): the highest round
//! id it has taken part in. Round ids only grow (the server persists its
//! next id before a round starts), so a client that refuses every id at or
//! below the last one it joined never signs in a round id twice: a server
//! that runs the same id again cannot replay the signatures of the first run
//! into the second.
//!
//! Layout: `client-state.json` in the client's state directory,
//! `{"last_round": N}`, replaced atomically before the client sends anything
//! in round `N`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, bad_file, io_err};
use crate::files;

/// The file's name in the state directory.
pub const CLIENT_STATE_FILE: &str = "client-state.json";

/// The largest state file read.
const MAX_STATE_LEN: u64 = 4096;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    last_round: u64,
}

/// The round ids a client has taken part in.
#[derive(Debug, Clone)]
pub struct ClientState {
    /// Where it persists; `None` keeps it for this process only.
    path: Option<PathBuf>,
    last_round: Option<u64>,
}

/// A round id at or below the last one this client took part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusedRound {
    /// The round id offered.
    pub round: u64,
    /// The last round id this client took part in.
    pub last: u64,
}

impl ClientState {
    /// A state kept in memory only (tests, and clients the caller persists
    /// otherwise).
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            path: None,
            last_round: None,
        }
    }

    /// Opens (creating `dir` if needed) the state in `dir`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] or [`crate::Error::BadFile`] naming the file.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(CLIENT_STATE_FILE);
        let last_round = if path.exists() {
            let text = files::read_capped_string(&path, MAX_STATE_LEN)?;
            let on_disk: OnDisk = serde_json::from_str(&text)
                .map_err(|e| bad_file(&path, format!("not a client state: {e}")))?;
            Some(on_disk.last_round)
        } else {
            None
        };
        Ok(Self {
            path: Some(path),
            last_round,
        })
    }

    /// The last round id taken part in.
    #[must_use]
    pub fn last_round(&self) -> Option<u64> {
        self.last_round
    }

    /// Records that this client takes part in `round`, durably, before it
    /// sends anything in it.
    ///
    /// # Errors
    /// `Ok(Err(ReusedRound))` if `round` is not above the last round id;
    /// `Err` if the state cannot be written (the client must not take part).
    pub fn take(&mut self, round: u64) -> Result<core::result::Result<(), ReusedRound>> {
        if let Some(last) = self.last_round.filter(|last| round <= *last) {
            return Ok(Err(ReusedRound { round, last }));
        }
        if let Some(path) = &self.path {
            let bytes = serde_json::to_vec(&OnDisk { last_round: round })
                .map_err(|e| bad_file(path, e.to_string()))?;
            files::write_atomic(path, &bytes, false)?;
        }
        self.last_round = Some(round);
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_id_is_taken_once_and_the_record_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = ClientState::open(dir.path()).unwrap();
        assert_eq!(state.last_round(), None);
        assert_eq!(state.take(5).unwrap(), Ok(()));
        assert_eq!(
            state.take(5).unwrap(),
            Err(ReusedRound { round: 5, last: 5 })
        );
        assert_eq!(
            state.take(3).unwrap(),
            Err(ReusedRound { round: 3, last: 5 })
        );
        // A new process reads the record.
        let mut again = ClientState::open(dir.path()).unwrap();
        assert_eq!(again.last_round(), Some(5));
        assert!(again.take(5).unwrap().is_err());
        assert_eq!(again.take(6).unwrap(), Ok(()));
    }

    #[test]
    fn a_damaged_state_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CLIENT_STATE_FILE), b"{\"last_round\": -1}").unwrap();
        let e = ClientState::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains(CLIENT_STATE_FILE), "{e}");
    }
}
