//! The Maelstrom protocol pieces against a real node process: the test proxy node
//! (tests/maelstrom/proxy_node.py, python3's standard library only) gets `init`,
//! then client requests, which it forwards to the emulated services; the services'
//! answers come back to the client through it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::maelstrom::proto::{self, Envelope};
use harness::maelstrom::services::Services;
use harness::system::ClientOp;
use rand::SeedableRng;

fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: python3 is not installed");
    }
    ok.then_some("python3")
}

#[test]
fn a_proxy_node_answers_clients_through_the_services() {
    let Some(python) = python() else { return };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/maelstrom/proxy_node.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg("lin-kv")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Lines arrive through a channel, so every wait has a deadline (the node's stdin
    // closes when the test ends, so it never outlives it).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut send = |e: &Envelope| writeln!(stdin, "{}", e.to_line()).unwrap();
    let recv = || {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the node answers within 10 s");
        Envelope::parse(line.as_bytes()).expect("the node writes messages")
    };
    let nodes = vec!["n1".to_string()];
    send(&Envelope::new("c0", "n1", proto::init("n1", &nodes, 1)));
    let ok = recv();
    assert_eq!(
        (ok.kind(), ok.in_reply_to(), ok.src.as_str()),
        ("init_ok", Some(1), "n1")
    );

    let mut services = Services::new(rand_chacha::ChaCha8Rng::seed_from_u64(7));
    let ops = [
        ClientOp::Read { key: "k0".into() },
        ClientOp::Write {
            key: "k0".into(),
            value: 5,
        },
        ClientOp::Cas {
            key: "k0".into(),
            from: 4,
            to: 6,
        },
        ClientOp::Cas {
            key: "k0".into(),
            from: 5,
            to: 6,
        },
        ClientOp::Read { key: "k0".into() },
    ];
    let mut results = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let msg_id = 10 + i as u64;
        send(&Envelope::new(
            "c1",
            "n1",
            proto::request(op, 0, msg_id).unwrap(),
        ));
        // The node asks the service; the service answers it.
        let asked = recv();
        assert_eq!(asked.dest, "lin-kv", "{asked:?}");
        let answer = services.handle(&asked).expect("lin-kv is a service");
        send(&answer);
        let reply = recv();
        assert_eq!(
            (reply.dest.as_str(), reply.in_reply_to()),
            ("c1", Some(msg_id))
        );
        let done = proto::completion(op, &reply);
        results.push((done.outcome, done.value, done.error));
    }
    use checker::history::Outcome::{Fail, Ok};
    assert_eq!(
        results,
        vec![
            (Fail, None, Some("key-does-not-exist".into())),
            (Ok, None, None),
            (Fail, None, Some("precondition-failed".into())),
            (Ok, None, None),
            (Ok, Some(6), None),
        ]
    );
    let _ = child.kill();
    let _ = child.wait();
}
