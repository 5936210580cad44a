//! The deployment roster file: which clients exist, their participant ids,
//! their Ed25519 identity keys (which sign their advertised keys in every
//! round) and the SHA-256 fingerprints of their TLS client certificates.
//!
//! The server admits a TLS client only if its certificate chains to the
//! deployment's CA *and* its fingerprint is in the roster; the participant
//! id the protocol uses is the roster's, never one the client claims.
//! Clients read the same file to check their neighbours' signatures.
//!
//! ```toml
//! [[client]]
//! id = 0
//! name = "hospital-a"
//! identity = "…64 hex digits: the Ed25519 public key…"
//! certificate_sha256 = "…64 hex digits…"
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use veil_crypto::ParticipantId;
use veil_crypto::sign::{IdentitySigningKey, IdentityVerifyingKey};
use veil_secagg::Roster;
use veil_secagg::config::MAX_PARTICIPANTS;
use zeroize::Zeroizing;

use crate::error::{Result, bad_file};
use crate::files;

/// The largest roster file read.
const MAX_ROSTER_FILE: u64 = 32 << 20;

/// One client of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    /// The participant id.
    pub id: ParticipantId,
    /// The operator's name for the client (its certificate's subject name
    /// when issued by `veil certs`).
    pub name: String,
    /// The Ed25519 identity key, hex.
    pub identity: String,
    /// SHA-256 of the client certificate's DER encoding, hex.
    pub certificate_sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterToml {
    #[serde(default)]
    client: Vec<RosterEntry>,
}

/// A checked roster.
#[derive(Debug, Clone, Default)]
pub struct RosterFile {
    entries: Vec<RosterEntry>,
    identities: Vec<IdentityVerifyingKey>,
    fingerprints: Vec<[u8; 32]>,
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

impl RosterFile {
    /// An empty roster.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and checks a roster file: ids and names unique, every key a
    /// valid Ed25519 key, every fingerprint 32 bytes of hex and unique.
    ///
    /// # Errors
    /// [`crate::Error::BadFile`] naming the file and the entry.
    pub fn load(path: &Path) -> Result<Self> {
        let text = files::read_capped_string(path, MAX_ROSTER_FILE)?;
        let parsed: RosterToml =
            toml::from_str(&text).map_err(|e| bad_file(path, e.to_string()))?;
        if parsed.client.len() > MAX_PARTICIPANTS {
            return Err(bad_file(path, "more clients than a round can hold"));
        }
        let mut roster = Self::new();
        for entry in parsed.client {
            roster
                .push(entry)
                .map_err(|reason| bad_file(path, reason))?;
        }
        Ok(roster)
    }

    fn push(&mut self, entry: RosterEntry) -> core::result::Result<(), String> {
        let who = format!("client {:?} (id {})", entry.name, entry.id);
        if entry.id == u32::MAX {
            return Err(format!("{who}: id {} is reserved", u32::MAX));
        }
        if entry.name.is_empty() || entry.name.len() > 253 {
            return Err(format!("{who}: name must be 1..=253 bytes"));
        }
        if self.entries.iter().any(|e| e.id == entry.id) {
            return Err(format!("{who}: id used twice"));
        }
        if self.entries.iter().any(|e| e.name == entry.name) {
            return Err(format!("{who}: name used twice"));
        }
        let identity = hex32(&entry.identity)
            .and_then(|b| IdentityVerifyingKey::from_slice(&b).ok())
            .ok_or_else(|| format!("{who}: identity is not a 64-hex-digit Ed25519 key"))?;
        let fingerprint = hex32(&entry.certificate_sha256)
            .ok_or_else(|| format!("{who}: certificate_sha256 is not 64 hex digits"))?;
        if self.fingerprints.contains(&fingerprint) {
            return Err(format!("{who}: certificate listed twice"));
        }
        self.entries.push(entry);
        self.identities.push(identity);
        self.fingerprints.push(fingerprint);
        Ok(())
    }

    /// Adds a client with the next free id; returns the id.
    ///
    /// # Errors
    /// [`crate::Error::Config`] if the name or certificate is taken.
    pub fn add(
        &mut self,
        name: &str,
        identity: &IdentityVerifyingKey,
        certificate_sha256: &[u8; 32],
    ) -> Result<ParticipantId> {
        let id = self
            .entries
            .iter()
            .map(|e| e.id.saturating_add(1))
            .max()
            .unwrap_or(0);
        self.push(RosterEntry {
            id,
            name: name.to_owned(),
            identity: hex::encode(identity.to_bytes()),
            certificate_sha256: hex::encode(certificate_sha256),
        })
        .map_err(crate::ConfigError::Roster)?;
        Ok(id)
    }

    /// Writes the roster atomically.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let body = toml::to_string(&RosterToml {
            client: self.entries.clone(),
        })
        .map_err(|e| bad_file(path, e.to_string()))?;
        let text = format!(
            "# veil deployment roster: one [[client]] per participant.\n\
             # The server admits a client only if its certificate's SHA-256 is listed here.\n\n{body}"
        );
        files::write_atomic(path, text.as_bytes(), false)
    }

    /// The entries, in file order.
    #[must_use]
    pub fn entries(&self) -> &[RosterEntry] {
        &self.entries
    }

    /// The entry whose certificate has this fingerprint.
    #[must_use]
    pub fn by_fingerprint(&self, fingerprint: &[u8; 32]) -> Option<&RosterEntry> {
        self.fingerprints
            .iter()
            .position(|f| f == fingerprint)
            .and_then(|i| self.entries.get(i))
    }

    /// The entry named `name`.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&RosterEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The set of admitted certificate fingerprints.
    #[must_use]
    pub fn fingerprints(&self) -> BTreeSet<[u8; 32]> {
        self.fingerprints.iter().copied().collect()
    }

    /// The protocol's view: id to identity key.
    #[must_use]
    pub fn protocol_roster(&self) -> Roster {
        let mut roster = Roster::new();
        for (e, key) in self.entries.iter().zip(&self.identities) {
            roster.insert(e.id, *key);
        }
        roster
    }
}

/// Writes a new identity key file (hex of the 32-byte Ed25519 seed),
/// owner-only; refuses to overwrite one.
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn write_identity(path: &Path, key: &IdentitySigningKey) -> Result<()> {
    let seed = key.export_seed();
    let mut text = Zeroizing::new(hex::encode(*seed));
    text.push('\n');
    files::create_new(path, text.as_bytes(), true)
}

/// Reads an identity key file written by [`write_identity`].
///
/// # Errors
/// [`crate::Error::Io`] or [`crate::Error::BadFile`] naming the file.
pub fn load_identity(path: &Path) -> Result<IdentitySigningKey> {
    let text = Zeroizing::new(files::read_capped_string(path, 1024)?);
    let mut seed = Zeroizing::new([0_u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut_slice())
        .map_err(|_| bad_file(path, "is not 64 hex digits of an Ed25519 seed"))?;
    Ok(IdentitySigningKey::from_seed(&seed))
}

/// Writes an identity's public key (hex of the 32-byte Ed25519 key, a
/// line): what a client hands the coordinator. Refuses to overwrite.
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn write_identity_public(path: &Path, key: &IdentityVerifyingKey) -> Result<()> {
    let text = format!("{}\n", hex::encode(key.to_bytes()));
    files::create_new(path, text.as_bytes(), false)
}

/// Reads a file written by [`write_identity_public`]; the key is checked
/// strictly (a point, not of small order).
///
/// # Errors
/// [`crate::Error::Io`] or [`crate::Error::BadFile`] naming the file.
pub fn load_identity_public(path: &Path) -> Result<IdentityVerifyingKey> {
    let text = files::read_capped_string(path, 1024)?;
    let mut bytes = [0_u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|_| bad_file(path, "is not 64 hex digits of an Ed25519 public key"))?;
    IdentityVerifyingKey::from_slice(&bytes)
        .map_err(|e| bad_file(path, format!("is not an identity public key: {e}")))
}
