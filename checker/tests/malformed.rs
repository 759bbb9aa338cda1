//! Malformed input: every broken line or broken history is an error naming the line.

use checker::history::parse_history_str;

fn err(text: &str) -> (u64, String) {
    let e = parse_history_str(text).expect_err("must be rejected");
    (e.line, e.message)
}

const W0: &str =
    r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"write","key":"k","value":1}"#;
const W0_OK: &str =
    r#"{"index":1,"time_ns":2,"process":0,"type":"ok","f":"write","key":"k","value":1}"#;

#[test]
fn truncated_line() {
    let text = format!("{W0}\n{}\n", &W0_OK[..30]);
    let (line, msg) = err(&text);
    assert_eq!(line, 2);
    assert!(msg.contains("not a valid history event"), "{msg}");
}

#[test]
fn wrong_types() {
    for (bad, what) in [
        (
            r#"{"index":"0","time_ns":1,"process":0,"type":"invoke","f":"write","key":"k","value":1}"#,
            "index",
        ),
        (
            r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"write","key":"k","value":"1"}"#,
            "write's value",
        ),
        (
            r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"cas","key":"k","value":[1]}"#,
            "[from, to]",
        ),
        (
            r#"{"index":0,"time_ns":1,"process":-3,"type":"invoke","f":"read","key":"k","value":null}"#,
            "process",
        ),
        (
            r#"{"index":0,"time_ns":1,"process":0,"type":"begin","f":"read","key":"k","value":null}"#,
            "type",
        ),
        (
            r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"delete","key":"k"}"#,
            "unknown f",
        ),
        (
            r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"read","value":null}"#,
            "key",
        ),
    ] {
        let (line, msg) = err(&format!("{bad}\n"));
        assert_eq!(line, 1, "{bad}");
        assert!(msg.contains(what), "{bad}: {msg}");
    }
    let read_ok =
        r#"{"index":1,"time_ns":2,"process":0,"type":"ok","f":"read","key":"k","value":"x"}"#;
    let read =
        r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"read","key":"k","value":null}"#;
    let (line, msg) = err(&format!("{read}\n{read_ok}\n"));
    assert_eq!(line, 2);
    assert!(msg.contains("integer or null"), "{msg}");
}

#[test]
fn completion_without_invoke() {
    let (line, msg) = err(&format!("{W0_OK}\n"));
    assert_eq!(line, 1);
    assert!(msg.contains("without a pending invoke"), "{msg}");
}

#[test]
fn two_ops_in_flight_on_one_process() {
    let second =
        r#"{"index":1,"time_ns":2,"process":0,"type":"invoke","f":"read","key":"k","value":null}"#;
    let (line, msg) = err(&format!("{W0}\n{second}\n"));
    assert_eq!(line, 2);
    assert!(msg.contains("still in flight"), "{msg}");
}

#[test]
fn invoke_after_info() {
    let info =
        r#"{"index":1,"time_ns":2,"process":0,"type":"info","f":"write","key":"k","value":1}"#;
    let again =
        r#"{"index":2,"time_ns":3,"process":0,"type":"invoke","f":"read","key":"k","value":null}"#;
    let (line, msg) = err(&format!("{W0}\n{info}\n{again}\n"));
    assert_eq!(line, 3);
    assert!(msg.contains("after its op completed with info"), "{msg}");
}

#[test]
fn completion_that_does_not_match() {
    let wrong = r#"{"index":1,"time_ns":2,"process":0,"type":"ok","f":"read","key":"k","value":1}"#;
    let (line, msg) = err(&format!("{W0}\n{wrong}\n"));
    assert_eq!(line, 2);
    assert!(msg.contains("does not match"), "{msg}");
}

#[test]
fn index_and_time_must_not_go_backwards() {
    let same_index = W0_OK.replace("\"index\":1", "\"index\":0");
    let (line, msg) = err(&format!("{W0}\n{same_index}\n"));
    assert_eq!(line, 2);
    assert!(msg.contains("does not increase"), "{msg}");
    let earlier = W0_OK.replace("\"time_ns\":2", "\"time_ns\":0");
    let (line, msg) = err(&format!("{W0}\n{earlier}\n"));
    assert_eq!(line, 2);
    assert!(msg.contains("goes backwards"), "{msg}");
}

#[test]
fn unknown_fields_are_ignored_and_open_invokes_are_info() {
    let extra = W0.replace("\"value\":1", "\"value\":1,\"colour\":\"blue\",\"node\":3");
    let h = parse_history_str(&format!("{extra}\n\n")).unwrap();
    assert_eq!(h.ops.len(), 1);
    assert_eq!(h.ops[0].outcome, checker::history::Outcome::Info);
    assert_eq!(h.ops[0].node, Some(3));
    assert_eq!(h.ops[0].complete_ns, None);
}

#[test]
fn a_torn_last_line_is_skipped_and_said() {
    // No newline after a line cut short: its writer died, or its disk filled, mid-line.
    let text = format!("{W0}\n{}", &W0_OK[..30]);
    let h = parse_history_str(&text).expect("a torn last line is not an error");
    assert_eq!(h.torn_last_line, Some(2));
    assert_eq!(h.events, 1);
    // A whole last line without its newline is read, not skipped.
    let h = parse_history_str(&format!("{W0}\n{W0_OK}")).unwrap();
    assert_eq!((h.torn_last_line, h.events), (None, 2));
    // A whole line that is wrong is an error wherever it is.
    let bad = W0_OK.replace("\"ok\"", "\"maybe\"");
    assert_eq!(err(&format!("{W0}\n{bad}")).0, 2);
}
