//! Writes the seed corpus of veil-secagg's fuzz targets under `fuzz/seeds/`:
//! the transcripts of one honest round (what the server received, what
//! client 0 received) and every message in them.
//!
//! ```text
//! cargo run -p veil-secagg --features test-util --example fuzz_seeds
//! ```

use std::path::Path;

use veil_secagg::fuzzing::session_params;
use veil_secagg::messages::{ClientMessage, Decline, DeclineReason, Purpose, Task};
use veil_secagg::sim::Simulation;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let (to_server, to_client) = Simulation::new(session_params()).record_scripts(0);
    for (target, script) in [
        ("server_session", &to_server),
        ("client_session", &to_client),
    ] {
        std::fs::create_dir_all(root.join(target))?;
        std::fs::write(root.join(target).join("honest-round"), script)?;
    }
    // Each message of both transcripts, for the decoder target.
    let dir = root.join("decode_messages");
    std::fs::create_dir_all(&dir)?;
    let mut count = 0;
    for script in [&to_server, &to_client] {
        let mut rest = script.as_slice();
        while let [0, _, hi, lo, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            std::fs::write(dir.join(format!("message-{count:03}")), &tail[..len])?;
            count += 1;
            rest = &tail[len..];
        }
    }
    // A Decline, which an honest round does not carry (fuzz_decode's config
    // is round 7).
    let decline = ClientMessage::Decline(Decline {
        reason: DeclineReason::Colluders,
    })
    .encode(7);
    std::fs::write(dir.join("decline"), decline)?;
    // Tasks: a model of three values, an empty one, one with a training
    // spec, an evaluation, a statistics round.
    let dir = root.join("task_decode");
    std::fs::create_dir_all(&dir)?;
    let task = Task {
        training_round: 3,
        purpose: Purpose::Train,
        clip_norm: 1.0,
        scale: 1024.0,
        noise_variance: 2.5,
        training: None,
        model: vec![0.25, -0.5, 1.0],
    };
    std::fs::write(dir.join("three-elements"), task.encode(7))?;
    let empty = Task {
        model: Vec::new(),
        ..task
    };
    std::fs::write(dir.join("empty-model"), empty.encode(8))?;
    // The round vector's task, with a training spec.
    let config = veil_secagg::test_vectors::vector_config();
    std::fs::write(
        dir.join("with-training"),
        veil_secagg::test_vectors::vector_task().encode(config.round),
    )?;
    // An evaluation of that task's model.
    let evaluate = Task {
        purpose: Purpose::Evaluate { row_cap: 200 },
        ..veil_secagg::test_vectors::vector_task()
    };
    std::fs::write(dir.join("evaluate"), evaluate.encode(9))?;
    // A statistics round over its three features.
    let statistics = Task {
        purpose: Purpose::Statistics {
            row_cap: 200,
            bounds: vec![100.0, 10.0, 200.0],
        },
        ..veil_secagg::test_vectors::vector_task()
    };
    std::fs::write(dir.join("statistics"), statistics.encode(10))?;
    // A regression: no classes, the label standardised as a fourth column
    // and bounded in its statistics round.
    let vector = veil_secagg::test_vectors::vector_task();
    let regression = Task {
        purpose: Purpose::Statistics {
            row_cap: 200,
            bounds: vec![100.0, 10.0, 200.0, 400.0],
        },
        training: vector
            .training
            .clone()
            .map(|t| veil_secagg::messages::TrainingSpec {
                architecture: "linear".into(),
                classes: Vec::new(),
                standardization: Some((vec![40.0, 2.5, 70.0, 150.0], vec![12.0, 1.0, 9.5, 77.0])),
                ..t
            }),
        ..vector
    };
    std::fs::write(dir.join("regression-statistics"), regression.encode(11))?;
    println!("wrote 2 transcripts, {count} messages, a Decline and 6 tasks under fuzz/seeds/");
    Ok(())
}
