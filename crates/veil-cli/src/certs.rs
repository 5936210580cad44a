//! `veil certs`: a development CA, server certificates, the roster, and the
//! client-held key flow. A client makes its own keys on its own machine
//! (`keygen`) and hands over only public material (a certificate signing
//! request, or a certificate from the operators' own CA, and its identity's
//! public key); the coordinator adds it to the roster (`enroll`). No command
//! run on the coordinator's side ever holds a client's private key.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use veil_crypto::sign::IdentitySigningKey;
use veil_net::deployment::{
    RosterFile, load_identity_public, write_identity, write_identity_public,
};
use veil_net::files;
use veil_net::pki::{DevCa, client_request, fingerprint_file};

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Create a development CA and an empty roster in DIR (coordinator).
    Init(InitArgs),
    /// Issue the server's certificate from the development CA
    /// (coordinator).
    Issue(IssueArgs),
    /// Make this client's TLS key, certificate signing request and identity
    /// key (on the client's own machine); hand over NAME.csr and
    /// NAME.identity.pub, keep NAME.key and NAME.identity.
    Keygen(KeygenArgs),
    /// Add a client to the roster from its public material (coordinator):
    /// its identity's public key and either its certificate signing request
    /// (signed here by the development CA) or a certificate from your own
    /// CA.
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
    /// Issue a server certificate for HOST (DNS name or IP): server.pem,
    /// server.key.
    #[arg(long, value_name = "HOST")]
    server: String,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write NAME.key, NAME.csr, NAME.identity and
    /// NAME.identity.pub.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// This client's name (as the coordinator will enroll it).
    #[arg(long, value_name = "NAME")]
    name: String,
}

#[derive(Debug, Args)]
pub(crate) struct EnrollArgs {
    /// The directory holding roster.toml (and ca.key, to sign a request).
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// The client's name in the roster.
    #[arg(long)]
    client: String,
    /// The client's identity public key (NAME.identity.pub from `keygen`).
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// The client's certificate signing request (NAME.csr from `keygen`):
    /// the development CA signs it into DIR/NAME.pem.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "cert",
        required_unless_present = "cert"
    )]
    csr: Option<PathBuf>,
    /// The client's certificate (PEM), issued by your own CA.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
}

pub(crate) fn run(command: &CertsCommand) -> Result<String, String> {
    match command {
        CertsCommand::Init(a) => init(&a.dir),
        CertsCommand::Issue(a) => issue_server(&a.dir, &a.server),
        CertsCommand::Keygen(a) => keygen(&a.dir, &a.name),
        CertsCommand::Enroll(a) => enroll(a),
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

fn issue_server(dir: &Path, host: &str) -> Result<String, String> {
    let ca = DevCa::load(&dir.join("ca.key")).map_err(e)?;
    let issued = ca.issue_server(host).map_err(e)?;
    files::create_new(&dir.join("server.key"), issued.key_pem.as_bytes(), true).map_err(e)?;
    files::create_new(&dir.join("server.pem"), issued.cert_pem.as_bytes(), false).map_err(e)?;
    Ok(format!(
        "server certificate for {host:?}: server.pem, server.key (keep it private)"
    ))
}

fn keygen(dir: &Path, name: &str) -> Result<String, String> {
    check_name(name)?;
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let request = client_request(name).map_err(e)?;
    let identity = IdentitySigningKey::generate(&mut rand::rng());
    let path = |ext: &str| dir.join(format!("{name}.{ext}"));
    files::create_new(&path("key"), request.key_pem.as_bytes(), true).map_err(e)?;
    write_identity(&path("identity"), &identity).map_err(e)?;
    files::create_new(&path("csr"), request.csr_pem.as_bytes(), false).map_err(e)?;
    write_identity_public(&path("identity.pub"), &identity.verifying_key()).map_err(e)?;
    Ok(format!(
        "client {name:?}: keys made in {}. Send {name}.csr and {name}.identity.pub to the coordinator; keep {name}.key and {name}.identity here, private",
        dir.display()
    ))
}

fn enroll(a: &EnrollArgs) -> Result<String, String> {
    let (dir, name) = (&a.dir, a.client.as_str());
    check_name(name)?;
    let roster_path = dir.join("roster.toml");
    let mut roster = RosterFile::load(&roster_path).map_err(e)?;
    if roster.by_name(name).is_some() {
        return Err(format!("{}: client {name:?} exists", roster_path.display()));
    }
    let identity = load_identity_public(&a.identity).map_err(e)?;
    let (cert_path, signed) = match (&a.csr, &a.cert) {
        (Some(csr), None) => {
            let ca = DevCa::load(&dir.join("ca.key")).map_err(e)?;
            let request = files::read_capped_string(csr, 64 * 1024).map_err(e)?;
            let cert_pem = ca
                .sign_client_request(name, &request)
                .map_err(|err| format!("{}: {err}", csr.display()))?;
            let cert_path = dir.join(format!("{name}.pem"));
            files::create_new(&cert_path, cert_pem.as_bytes(), false).map_err(e)?;
            (cert_path, true)
        }
        (None, Some(cert)) => (cert.clone(), false),
        _ => return Err("give exactly one of --csr FILE and --cert FILE".into()),
    };
    let fp = fingerprint_file(&cert_path).map_err(e)?;
    let id = roster.add(name, &identity, &fp).map_err(e)?;
    roster.save(&roster_path).map_err(e)?;
    let cert_note = if signed {
        format!("; send {} back to the client", cert_path.display())
    } else {
        String::new()
    };
    Ok(format!(
        "client {name:?} is participant {id}{cert_note}; the roster and ca.pem go to every party"
    ))
}
