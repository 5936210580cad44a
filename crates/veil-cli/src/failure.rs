//! Why a command failed, by class, and each class's exit code (README,
//! "Exit codes"): a script that runs `veil` can tell a configuration to fix
//! from a disk, a network or a run that failed.

use core::fmt;

/// A failed command: its class and its one-line message.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad arguments, configuration, or a file the configuration names
    /// (exit code 2): fix the configuration and run again.
    Config(String),
    /// Reading or writing the state directory failed mid-run (exit 3).
    Io(String),
    /// Listening, connecting or a connection failed (exit 4).
    Network(String),
    /// The run itself refused to go on: the protocol, the privacy layer, an
    /// update source or the server optimiser (exit 5).
    Run(String),
}

impl Failure {
    /// The process's exit code for this class.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            Self::Io(_) => 3,
            Self::Network(_) => 4,
            Self::Run(_) => 5,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(m) | Self::Io(m) | Self::Network(m) | Self::Run(m) => f.write_str(m),
        }
    }
}

/// A message of the CLI's own checks: a configuration failure.
impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::Config(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self::Config(message.to_owned())
    }
}

/// veil-net's errors by what the operator must do about them.
impl From<veil_net::Error> for Failure {
    fn from(e: veil_net::Error) -> Self {
        use veil_net::Error as E;
        let message = e.to_string();
        match e {
            E::Io { .. } => Self::Io(message),
            E::Connection(_) | E::Frame(_) => Self::Network(message),
            E::Round(veil_round::Error::Plan { .. })
            | E::BadFile { .. }
            | E::Pki(_)
            | E::Tls(_)
            | E::Config(_)
            | E::SiteData(_) => Self::Config(message),
            _ => Self::Run(message),
        }
    }
}
