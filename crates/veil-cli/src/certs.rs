//! `veil certs`: a development CA, certificates and identity keys, and the
//! roster file. A development convenience: production operators bring their
//! own CA and certificates as PEM files and add them with `enroll`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use veil_crypto::sign::IdentitySigningKey;
use veil_net::deployment::{RosterFile, write_identity};
use veil_net::files;
use veil_net::pki::{DevCa, fingerprint_file};

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Create a development CA and an empty roster in DIR.
    Init(InitArgs),
    /// Issue a client certificate and identity key (added to the roster),
    /// or a server certificate.
    Issue(IssueArgs),
    /// Add a client whose certificate comes from your own CA: makes its
    /// identity key and adds it to the roster.
    Enroll(EnrollArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The directory for ca.pem, ca.key and roster.toml.
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// The directory made by `veil certs init`.
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// Issue a client certificate for NAME: NAME.pem, NAME.key,
    /// NAME.identity, and a roster entry.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "server",
        required_unless_present = "server"
    )]
    client: Option<String>,
    /// Issue a server certificate for HOST (DNS name or IP): server.pem,
    /// server.key.
    #[arg(long, value_name = "HOST")]
    server: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct EnrollArgs {
    /// The directory holding roster.toml.
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// The client's name in the roster.
    #[arg(long)]
    client: String,
    /// The client's certificate (PEM), issued by the deployment's CA.
    #[arg(long)]
    cert: PathBuf,
}

pub(crate) fn run(command: &CertsCommand) -> Result<String, String> {
    match command {
        CertsCommand::Init(a) => init(&a.dir),
        CertsCommand::Issue(a) => match (&a.client, &a.server) {
            (Some(name), None) => issue_client(&a.dir, name),
            (None, Some(host)) => issue_server(&a.dir, host),
            _ => Err("give exactly one of --client NAME and --server HOST".into()),
        },
        CertsCommand::Enroll(a) => enroll(&a.dir, &a.client, &a.cert),
    }
}

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

fn init(dir: &Path) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let (_, issued) = DevCa::generate().map_err(e)?;
    files::create_new(&dir.join("ca.key"), issued.key_pem.as_bytes(), true).map_err(e)?;
    files::create_new(&dir.join("ca.pem"), issued.cert_pem.as_bytes(), false).map_err(e)?;
    RosterFile::new()
        .save(&dir.join("roster.toml"))
        .map_err(e)?;
    Ok(format!(
        "development CA created in {}: ca.pem, ca.key (keep it private), roster.toml",
        dir.display()
    ))
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "client name {name:?}: use 1 to 63 letters, digits and '-' (it becomes a file name and a DNS name)"
        ))
    }
}

fn issue_client(dir: &Path, name: &str) -> Result<String, String> {
    check_name(name)?;
    let roster_path = dir.join("roster.toml");
    let mut roster = RosterFile::load(&roster_path).map_err(e)?;
    if roster.by_name(name).is_some() {
        return Err(format!("{}: client {name:?} exists", roster_path.display()));
    }
    let ca = DevCa::load(&dir.join("ca.key")).map_err(e)?;
    let issued = ca.issue_client(name).map_err(e)?;
    let cert_path = dir.join(format!("{name}.pem"));
    files::create_new(
        &dir.join(format!("{name}.key")),
        issued.key_pem.as_bytes(),
        true,
    )
    .map_err(e)?;
    files::create_new(&cert_path, issued.cert_pem.as_bytes(), false).map_err(e)?;
    let identity = IdentitySigningKey::generate(&mut rand::rng());
    write_identity(&dir.join(format!("{name}.identity")), &identity).map_err(e)?;
    let fp = fingerprint_file(&cert_path).map_err(e)?;
    let id = roster
        .add(name, &identity.verifying_key(), &fp)
        .map_err(e)?;
    roster.save(&roster_path).map_err(e)?;
    Ok(format!(
        "client {name:?} is participant {id}: {name}.pem, {name}.key, {name}.identity (keep the last two private)"
    ))
}

fn issue_server(dir: &Path, host: &str) -> Result<String, String> {
    let ca = DevCa::load(&dir.join("ca.key")).map_err(e)?;
    let issued = ca.issue_server(host).map_err(e)?;
    files::create_new(&dir.join("server.key"), issued.key_pem.as_bytes(), true).map_err(e)?;
    files::create_new(&dir.join("server.pem"), issued.cert_pem.as_bytes(), false).map_err(e)?;
    Ok(format!(
        "server certificate for {host:?}: server.pem, server.key (keep it private)"
    ))
}

fn enroll(dir: &Path, name: &str, cert: &Path) -> Result<String, String> {
    check_name(name)?;
    let roster_path = dir.join("roster.toml");
    let mut roster = RosterFile::load(&roster_path).map_err(e)?;
    let fp = fingerprint_file(cert).map_err(e)?;
    let identity = IdentitySigningKey::generate(&mut rand::rng());
    let identity_path = dir.join(format!("{name}.identity"));
    let id = roster
        .add(name, &identity.verifying_key(), &fp)
        .map_err(e)?;
    write_identity(&identity_path, &identity).map_err(e)?;
    roster.save(&roster_path).map_err(e)?;
    Ok(format!(
        "client {name:?} is participant {id}; its identity key is {} (give it to the client, keep it private)",
        identity_path.display()
    ))
}
