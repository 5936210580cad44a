//! `veil server`, `veil client` and `veil certs` as processes: bad
//! configuration is a one-line error naming the file and the field, with
//! exit code 2, before anything listens or connects.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

const VEIL: &str = env!("CARGO_BIN_EXE_veil");

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(VEIL)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SERVER: &str = r#"listen = "127.0.0.1:0"
state_dir = "state"
[tls]
ca = "certs/ca.pem"
cert = "certs/server.pem"
key = "certs/server.key"
roster = "certs/roster.toml"
[rounds]
dimension = 10
min_clients = 2
max_clients = 10
clip_norm = 1.0
scale = 1024.0
[secagg]
corrupt_fraction = 0.0
"#;

#[test]
fn server_config_errors_name_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(run(d, &["certs", "init", "--dir", "certs"]).0, 0);
    assert_eq!(
        run(
            d,
            &["certs", "issue", "--dir", "certs", "--server", "localhost"]
        )
        .0,
        0
    );
    for (edit, needle) in [
        (
            ("min_clients = 2", "min_clients = 1"),
            "server.toml: rounds.min_clients",
        ),
        (
            ("clip_norm = 1.0", "clip_norm = -1.0"),
            "server.toml: rounds.clip_norm",
        ),
        (
            ("dimension = 10", "dimension = 10\nsampling_rate = 1.5"),
            "server.toml: rounds.sampling_rate",
        ),
        (
            ("scale = 1024.0", "scale = 1024.0\ncolour = 1"),
            "unknown field `colour`",
        ),
        (("dimension = 10", "dimension = \"ten\""), "invalid type"),
        (
            (
                "scale = 1024.0",
                "scale = 1024.0\n[limits]\nunmask_threads = 0",
            ),
            "server.toml: limits.unmask_threads",
        ),
        (
            ("corrupt_fraction = 0.0", "corrupt_fraction = 0.3"),
            "server.toml: secagg: no parameters for a cohort of 2",
        ),
        (
            (
                "scale = 1024.0",
                "scale = 1024.0\n[privacy]\nnoise_multiplier = 1.0\ndelta = 2.0\nbudget = 1.0",
            ),
            "server.toml: privacy.delta",
        ),
        (
            (
                "scale = 1024.0",
                "scale = 1024.0\n[privacy]\nnoise_multiplier = 1.0\nepsilon = 3.0\ndelta = 1e-5",
            ),
            "server.toml: privacy: give noise_multiplier or epsilon, not both",
        ),
        (
            (
                "scale = 1024.0",
                "scale = 1024.0\n[privacy]\nnoise_multiplier = 1.0\ndelta = 1e-5",
            ),
            "server.toml: privacy.budget: needed with a noise_multiplier",
        ),
        (
            (
                "scale = 1024.0",
                "scale = 1024.0\n[privacy]\nepsilon = -3.0\ndelta = 1e-5",
            ),
            "server.toml: privacy.epsilon",
        ),
        (
            (
                "scale = 1024.0",
                "scale = 1024.0\n[privacy]\nepsilon = 3.0\ndelta = 1e-5",
            ),
            "server.toml: privacy.epsilon: a target epsilon needs a number of rounds",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"logistic\"\nfeatures = [\"a\", \"b\"]\nclasses = [\"no\", \"yes\"]",
            ),
            "server.toml: rounds.dimension: 10, but the task's model has 3 parameters",
        ),
        (
            ("dimension = 10\n", ""),
            "server.toml: rounds.dimension: needed without a [task]",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nkind = \"regression\"\nmodel = \"linear\"\nfeatures = [\"a\"]\nclasses = [\"no\", \"yes\"]",
            ),
            "server.toml: task.classes: a regression has none",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"logistic\"\nfeatures = [\"a\"]",
            ),
            "server.toml: task.classes: a classification names its classes",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nkind = \"ranking\"\nmodel = \"linear\"\nfeatures = [\"a\"]",
            ),
            "server.toml: task.kind",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nkind = \"regression\"\nmodel = \"logistic\"\nfeatures = [\"a\"]",
            ),
            "server.toml: task.model: logistic is a classifier",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nkind = \"regression\"\nmodel = \"linear\"\nfeatures = [\"a\", \"b\"]\nmean = [0, 0]\nstd = [1, 1]",
            ),
            "server.toml: task.standardization",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"logistic\"\nfeatures = [\"a\", \"a\"]\nclasses = [\"no\", \"yes\"]",
            ),
            "server.toml: task.features",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"mlp:0\"\nfeatures = [\"a\"]\nclasses = [\"no\", \"yes\"]",
            ),
            "server.toml: task.model",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"logistic\"\nfeatures = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"]\nclasses = [\"no\", \"yes\"]\nholdout = 0.2\ninitial_model = \"nowhere.safetensors\"",
            ),
            "server.toml: task.initial_model",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"logistic\"\nfeatures = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"]\nclasses = [\"no\", \"yes\"]\n[evaluation]\nevery = 1",
            ),
            "server.toml: evaluation: needs a task whose sites hold rows out",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"logistic\"\nfeatures = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"]\nclasses = [\"no\", \"yes\"]\n[statistics]\nbounds = [1.0]",
            ),
            "server.toml: statistics.bounds",
        ),
        (
            (
                "corrupt_fraction = 0.0",
                "corrupt_fraction = 0.0\n[task]\nmodel = \"logistic\"\nfeatures = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"]\nclasses = [\"no\", \"yes\"]\nmean = [0,0,0,0,0,0,0,0,0]\nstd = [1,1,1,1,1,1,1,1,1]\n[statistics]\nbound = 10.0",
            ),
            "server.toml: statistics: the task sets its standardisation",
        ),
        (
            ("ca = \"certs/ca.pem\"", "ca = \"certs/missing.pem\""),
            "missing.pem",
        ),
    ] {
        std::fs::write(d.join("server.toml"), SERVER.replace(edit.0, edit.1)).unwrap();
        let (code, err) = run(d, &["server", "--config", "server.toml"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn certs_refuse_bad_names_missing_cas_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        run(d, &["certs", "keygen", "--dir", "site-a", "--name", "a"]).0,
        0
    );
    let enroll = |dir: &str| {
        run(
            d,
            &[
                "certs",
                "enroll",
                "--dir",
                dir,
                "--client",
                "a",
                "--identity",
                "site-a/a.identity.pub",
                "--csr",
                "site-a/a.csr",
            ],
        )
    };
    let (code, err) = enroll("nowhere");
    assert_eq!(code, 2);
    assert!(err.contains("roster.toml"), "{err}");
    assert_eq!(run(d, &["certs", "init", "--dir", "certs"]).0, 0);
    let (code, err) = run(d, &["certs", "init", "--dir", "certs"]);
    assert_eq!(code, 2, "a second init must not overwrite the CA key");
    assert!(err.contains("ca.key"), "{err}");
    for bad in ["", "-x", "a/b", "a b", &"x".repeat(64)] {
        let flag = format!("--name={bad}");
        let (code, err) = run(d, &["certs", "keygen", "--dir", "site-b", &flag]);
        assert_eq!(code, 2, "{bad:?}");
        assert!(err.contains("client name"), "{err}");
    }
    // keygen never overwrites a site's keys.
    let (code, err) = run(d, &["certs", "keygen", "--dir", "site-a", "--name", "a"]);
    assert_eq!(code, 2);
    assert!(err.contains("a.key"), "{err}");
    assert_eq!(enroll("certs").0, 0);
    let (code, err) = enroll("certs");
    assert_eq!(code, 2);
    assert!(err.contains("exists"), "{err}");
    let roster = std::fs::read_to_string(d.join("certs/roster.toml")).unwrap();
    assert_eq!(roster.matches("\nid = ").count(), 1);
    // The coordinator's side holds the client's certificate and public
    // identity only: no command it ran wrote a client private key.
    assert!(d.join("certs/a.pem").exists());
    for private in ["certs/a.key", "certs/a.identity"] {
        assert!(!d.join(private).exists(), "{private}");
    }
    let certs: Vec<String> = std::fs::read_dir(d.join("certs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        certs.iter().all(|f| !f.starts_with("a.") || f == "a.pem"),
        "{certs:?}"
    );
    // A request that another site made for "a" is refused: not its name.
    assert_eq!(
        run(d, &["certs", "keygen", "--dir", "site-b", "--name", "b"]).0,
        0
    );
    let (code, err) = run(
        d,
        &[
            "certs",
            "enroll",
            "--dir",
            "certs",
            "--client",
            "c",
            "--identity",
            "site-b/b.identity.pub",
            "--csr",
            "site-b/b.csr",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not for client"), "{err}");
    // A private identity key given where the public one belongs is refused.
    let (code, _) = run(
        d,
        &[
            "certs",
            "enroll",
            "--dir",
            "certs",
            "--client",
            "b",
            "--identity",
            "site-b/b.csr",
            "--csr",
            "site-b/b.csr",
        ],
    );
    assert_eq!(code, 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["certs/ca.key", "site-a/a.key", "site-a/a.identity"] {
            let mode = std::fs::metadata(d.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
}

#[test]
fn exit_codes_tell_a_configuration_from_a_network_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(run(d, &["certs", "init", "--dir", "certs"]).0, 0);
    assert_eq!(
        run(d, &["certs", "keygen", "--dir", "site-a", "--name", "a"]).0,
        0
    );
    let enrolled = run(
        d,
        &[
            "certs",
            "enroll",
            "--dir",
            "certs",
            "--client",
            "a",
            "--identity",
            "site-a/a.identity.pub",
            "--csr",
            "site-a/a.csr",
        ],
    );
    assert_eq!(enrolled.0, 0, "{}", enrolled.1);
    // Nothing listens on the discard port: one short attempt, then the
    // client gives up with the network class's code, 4.
    let client = r#"server = "127.0.0.1:9"
server_name = "localhost"
identity = "site-a/a.identity"
max_dimension = 1000
source = "synthetic"
[tls]
ca = "certs/ca.pem"
cert = "certs/a.pem"
key = "site-a/a.key"
roster = "certs/roster.toml"
[backoff]
connect_timeout_ms = 300
max_attempts = 1
"#;
    std::fs::write(d.join("client.toml"), client).unwrap();
    let (code, err) = run(d, &["client", "--config", "client.toml"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no connection to 127.0.0.1:9"), "{err}");
    // The same file with a bad field is a configuration failure, 2.
    std::fs::write(
        d.join("client.toml"),
        client.replace("max_dimension = 1000", "max_dimension = 0"),
    )
    .unwrap();
    let (code, err) = run(d, &["client", "--config", "client.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("client.toml: max_dimension"), "{err}");
}
