//! A system declared in a file (docs/systems.md): how to start node i, know it is
//! ready, stop it, ask who leads, and the client program that turns the harness's ops
//! into the system's requests (docs/clients.md). `chaos run --system FILE` reads one;
//! plan.json keeps it whole ([`Declared`]), so a run replays without the file.
//!
//! Strings in commands hold placeholders, `{name}`, checked when the file is read
//! against what each place offers ([`Place`]) and filled in by [`Vars::fill`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A system file as read, with where it was read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    /// The file, absolute.
    pub path: PathBuf,
    pub file: SystemFile,
    /// The `--system` name of a system chaos carries as a file (`etcd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundled_as: Option<String>,
}

impl Declared {
    /// The directory of the file: `{system_dir}`, where a client script beside it is.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemFile {
    /// A short name for headers and the report.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What the system's documentation promises its clients, which decides the
    /// checks that apply.
    #[serde(default)]
    pub promises: Promise,
    /// The workloads its client serves.
    pub workloads: Vec<WorkloadName>,
    /// Programs that must be on PATH; `chaos systems` and a run check them.
    #[serde(default)]
    pub requires: Vec<String>,
    /// What to do when one of them is missing ("apt-get install etcd-server").
    #[serde(default)]
    pub install_hint: String,
    /// A command printing the system's name and version on its first line ("etcd
    /// 3.4.23"), for result.json and the report; absent: the name.
    #[serde(default)]
    pub version: Option<Vec<String>>,
    pub node: NodeDecl,
    #[serde(default)]
    pub leader: Option<LeaderDecl>,
    pub client: ClientDecl,
}

/// What a system promises its clients about reads and writes of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Promise {
    /// Every op takes effect at one instant between its invoke and its completion.
    #[default]
    Linearizable,
    /// Less than that (sequential, eventual, ...): linearizability is not judged,
    /// and the run says so.
    NotLinearizable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadName {
    Kv,
    Register,
    /// Transactions of `r` and `append` (docs/clients.md, `txn`).
    ListAppend,
    /// Transactions of `r` and `w`.
    RwRegister,
}

impl WorkloadName {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadName::Kv => "kv",
            WorkloadName::Register => "register",
            WorkloadName::ListAppend => "list-append",
            WorkloadName::RwRegister => "rw-register",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDecl {
    /// The program and its arguments, one word each; `{peers}` or `{cluster}` as a
    /// whole word stands for one word per node.
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The TCP ports each node listens on, by name: `{port:NAME}`. Every node has its
    /// own address, so every node uses the same ports.
    #[serde(default)]
    pub ports: BTreeMap<String, u16>,
    /// One node as its peers name it, e.g. `"n{peer_id}=http://{peer_addr}:{port:peer}"`:
    /// `{peers}` is every other node so, `{cluster}` every node.
    #[serde(default)]
    pub peer: Option<String>,
    /// Joins the nodes in `{peers}` and `{cluster}` into one word (`","`); absent, each
    /// node is a word of its own.
    #[serde(default)]
    pub peer_separator: Option<String>,
    pub ready: ReadyDecl,
    #[serde(default)]
    pub stop: StopDecl,
    /// How the node reads the time: `libc` (the default: C, C++, Rust, Python, most
    /// runtimes), so clock faults are made with libfaketime; `own` (Go programs,
    /// statically linked binaries, runtimes that call the kernel themselves), so
    /// libfaketime cannot reach its clock and clock faults are skipped, saying so.
    #[serde(default)]
    pub time: TimeSource,
}

/// Where a node's clock comes from, for clock faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSource {
    #[default]
    Libc,
    Own,
}

/// How the harness knows a started node is ready: exactly one way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyDecl {
    /// A port (by its name in `ports`) accepting TCP connections.
    #[serde(default)]
    pub tcp: Option<String>,
    /// A command that exits 0 once the node is ready (asked again until it does).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A regular expression a line of the node's stdout or stderr matches.
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default = "ready_timeout")]
    pub timeout_s: f64,
}

fn ready_timeout() -> f64 {
    15.0
}

/// How a node is stopped at the run's end: `signal`, then SIGKILL after `grace_s`. A
/// kill fault is always SIGKILL (a crash); a restart starts the same command again
/// on the node's own data directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopDecl {
    #[serde(default = "stop_signal")]
    pub signal: String,
    #[serde(default = "stop_grace")]
    pub grace_s: f64,
}

impl Default for StopDecl {
    fn default() -> StopDecl {
        StopDecl {
            signal: stop_signal(),
            grace_s: stop_grace(),
        }
    }
}

fn stop_signal() -> String {
    "TERM".into()
}

fn stop_grace() -> f64 {
    2.0
}

/// How to ask who leads, asked of each running node: a command printing the
/// leader's node id, or an HTTP GET whose JSON body holds it at a JSON pointer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderDecl {
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// `http://{addr}:{port:client}/status`: the path asked of the node.
    #[serde(default)]
    pub http: Option<String>,
    /// Where the leader's id is in the body (`/leader`), with `http`.
    #[serde(default)]
    pub pointer: Option<String>,
}

/// The client program: one process per client connection, speaking docs/clients.md
/// on its stdin and stdout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientDecl {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Where a string stands, and so which placeholders it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The node's command, environment, readiness command and leader query.
    Node,
    /// The `peer` format.
    Peer,
    /// The client's command and environment.
    Client,
}

impl Place {
    /// The placeholders a place offers (besides `{port:NAME}` for a declared port).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Place::Node => &[
                "id",
                "n",
                "addr",
                "peers",
                "cluster",
                "data_dir",
                "node_dir",
                "run_dir",
                "system_dir",
                "chaos",
            ],
            Place::Peer => &["id", "n", "peer_id", "peer_addr"],
            Place::Client => &["id", "n", "addr", "system_dir", "chaos", "run_dir"],
        }
    }
}

/// Why a system file cannot be used: where, and what.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", line.map_or(String::new(), |l| format!(":{l}")))]
pub struct SystemFileError {
    pub path: PathBuf,
    /// 1-based, when the error is tied to a line.
    pub line: Option<usize>,
    pub message: String,
}

/// The placeholders of `s`, in order, or the first malformed one.
fn placeholders(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("an unclosed '{{' in {s:?}"))?;
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    Ok(out)
}

impl SystemFile {
    /// Reads and checks a system file. Every error names the file, and the line where
    /// it can be found.
    pub fn read(path: &Path) -> Result<Declared, SystemFileError> {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let err = |line, message| SystemFileError {
            path: abs.clone(),
            line,
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(None, format!("cannot read the system file: {e}")))?;
        let file: SystemFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            err(line, e.message().trim().to_string())
        })?;
        file.check().map_err(|(needle, message)| {
            // The field's table starts the search: `client.command` is looked for
            // from the `[client]` line on.
            let field = message.split(':').next().unwrap_or_default();
            let table = field.rsplit_once('.').map(|(t, _)| format!("[{t}]"));
            let lines: Vec<&str> = text.lines().collect();
            let from = table
                .and_then(|t| lines.iter().position(|l| l.trim() == t))
                .unwrap_or(0);
            let line = (from..lines.len())
                .find(|i| lines[*i].contains(&needle))
                .or_else(|| lines.iter().position(|l| l.contains(&needle)))
                .map(|i| i + 1);
            err(line, message)
        })?;
        Ok(Declared {
            path: abs,
            file,
            bundled_as: None,
        })
    }

    /// The rules serde cannot say: placeholders known where they stand, one way to
    /// be ready, one way to ask for the leader. `Err`: a text to find the line by, and
    /// the message.
    pub fn check(&self) -> Result<(), (String, String)> {
        let n = &self.node;
        let empty = [
            (
                n.command.is_empty(),
                "command",
                "node.command: give the program and its arguments",
            ),
            (
                self.client.command.is_empty(),
                "command",
                "client.command: give the program and its arguments",
            ),
            (
                self.workloads.is_empty(),
                "workloads",
                "workloads: name at least one of kv, register, list-append, rw-register",
            ),
        ];
        if let Some((_, needle, why)) = empty.iter().find(|(bad, _, _)| *bad) {
            return Err((needle.to_string(), why.to_string()));
        }
        for (field, place, s) in self.strings() {
            self.check_placeholders(field, place, s)?;
        }
        self.check_ready()?;
        let stop = &n.stop;
        if signal_number(&stop.signal).is_none() {
            return Err((
                stop.signal.clone(),
                format!(
                    "node.stop.signal: unknown signal {:?} (TERM, INT, QUIT, HUP, KILL, USR1, USR2)",
                    stop.signal
                ),
            ));
        }
        if !(stop.grace_s >= 0.0 && stop.grace_s <= 60.0) {
            return Err((
                "grace_s".into(),
                format!(
                    "node.stop.grace_s: must be in [0, 60] s (got {})",
                    stop.grace_s
                ),
            ));
        }
        if let Some(l) = &self.leader {
            if !matches!(
                (&l.command, &l.http, &l.pointer),
                (Some(_), None, None) | (None, Some(_), Some(_))
            ) {
                return Err((
                    "[leader]".into(),
                    "leader: give a command, or http with pointer".into(),
                ));
            }
        }
        Ok(())
    }

    /// Every string that may hold placeholders: its field, its place, the string.
    fn strings(&self) -> Vec<(&'static str, Place, &str)> {
        fn add<'a>(
            out: &mut Vec<(&'static str, Place, &'a str)>,
            field: &'static str,
            place: Place,
            words: impl Iterator<Item = &'a String>,
        ) {
            out.extend(words.map(|s| (field, place, s.as_str())));
        }
        let n = &self.node;
        let mut out = Vec::new();
        add(&mut out, "node.command", Place::Node, n.command.iter());
        add(&mut out, "node.env", Place::Node, n.env.values());
        add(&mut out, "node.peer", Place::Peer, n.peer.iter());
        add(
            &mut out,
            "version",
            Place::Client,
            self.version.iter().flatten(),
        );
        add(
            &mut out,
            "node.ready.command",
            Place::Node,
            n.ready.command.iter().flatten(),
        );
        if let Some(l) = &self.leader {
            add(
                &mut out,
                "leader.command",
                Place::Node,
                l.command.iter().flatten(),
            );
            add(&mut out, "leader.http", Place::Node, l.http.iter());
        }
        add(
            &mut out,
            "client.command",
            Place::Client,
            self.client.command.iter(),
        );
        add(
            &mut out,
            "client.env",
            Place::Client,
            self.client.env.values(),
        );
        out
    }

    /// The placeholders of `s` are known at `place`.
    fn check_placeholders(
        &self,
        field: &str,
        place: Place,
        s: &str,
    ) -> Result<(), (String, String)> {
        let n = &self.node;
        for name in placeholders(s).map_err(|e| (s.to_string(), format!("{field}: {e}")))? {
            let known = match name.strip_prefix("port:") {
                Some(port) => n.ports.contains_key(port),
                None => place.names().contains(&name),
            };
            if !known {
                let mut offered: Vec<String> =
                    place.names().iter().map(|p| format!("{{{p}}}")).collect();
                offered.extend(n.ports.keys().map(|p| format!("{{port:{p}}}")));
                return Err((
                    format!("{{{name}}}"),
                    format!(
                        "{field}: unknown placeholder {{{name}}} (here: {})",
                        offered.join(", ")
                    ),
                ));
            }
            if matches!(name, "peers" | "cluster") && n.peer.is_none() {
                return Err((
                    format!("{{{name}}}"),
                    format!("{field}: {{{name}}} needs node.peer, the format of one node"),
                ));
            }
        }
        Ok(())
    }

    /// One way to be ready, and it makes sense.
    fn check_ready(&self) -> Result<(), (String, String)> {
        let (r, ports) = (&self.node.ready, &self.node.ports);
        let ways = [r.tcp.is_some(), r.command.is_some(), r.line.is_some()];
        if ways.iter().filter(|w| **w).count() != 1 {
            return Err((
                "[node.ready]".into(),
                "node.ready: give exactly one of tcp, command, line".into(),
            ));
        }
        if let Some(port) = r.tcp.as_ref().filter(|p| !ports.contains_key(*p)) {
            return Err((
                port.clone(),
                format!("node.ready.tcp: {port:?} is not a port of node.ports"),
            ));
        }
        if let Some(line) = &r.line {
            regex::Regex::new(line).map_err(|e| {
                (
                    line.clone(),
                    format!("node.ready.line: not a regular expression: {e}"),
                )
            })?;
        }
        if !(r.timeout_s > 0.0 && r.timeout_s <= 600.0) {
            return Err((
                "timeout_s".into(),
                format!(
                    "node.ready.timeout_s: must be in (0, 600] s (got {})",
                    r.timeout_s
                ),
            ));
        }
        Ok(())
    }

    pub fn serves(&self, w: WorkloadName) -> bool {
        self.workloads.contains(&w)
    }
}

/// A signal's number by its name (`TERM` or `SIGTERM`).
pub fn signal_number(name: &str) -> Option<i32> {
    Some(match name.trim_start_matches("SIG") {
        "TERM" => 15,
        "INT" => 2,
        "QUIT" => 3,
        "HUP" => 1,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        _ => return None,
    })
}

/// The values of the placeholders at one place.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    pub values: BTreeMap<String, String>,
    /// `{peers}` and `{cluster}`: one string per node.
    pub lists: BTreeMap<String, Vec<String>>,
    pub separator: Option<String>,
}

impl Vars {
    pub fn set(&mut self, name: &str, value: impl ToString) -> &mut Vars {
        self.values.insert(name.to_string(), value.to_string());
        self
    }

    /// `s` with every placeholder filled (a list joined by the separator, or by
    /// spaces without one). Placeholders were checked when the file was read; one
    /// without a value stays as written.
    pub fn fill(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            let name = &after[..close];
            match (self.values.get(name), self.lists.get(name)) {
                (Some(v), _) => out.push_str(v),
                (None, Some(list)) => {
                    out.push_str(&list.join(self.separator.as_deref().unwrap_or(" ")))
                }
                (None, None) => out.push_str(&rest[open..open + close + 2]),
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Words with every placeholder filled; a word that is only `{peers}` or
    /// `{cluster}`, with no separator, becomes one word per node.
    pub fn fill_words(&self, words: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(words.len());
        for w in words {
            let whole = w
                .strip_prefix('{')
                .and_then(|w| w.strip_suffix('}'))
                .and_then(|name| self.lists.get(name));
            match whole {
                Some(list) if self.separator.is_none() => out.extend(list.iter().cloned()),
                _ => out.push(self.fill(w)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLED: &str = r#"
name = "bundled node, declared"
workloads = ["kv", "register"]

[node]
command = ["{chaos}", "node", "--id", "{id}", "--listen", "{addr}:{port:client}", "{peers}", "--data-dir", "{data_dir}"]
ports = { client = 7000 }
peer = "--peer={peer_id}={peer_addr}:7000"

[node.ready]
line = '"ready":true'

[client]
command = ["python3", "{system_dir}/client.py", "{addr}:{port:client}"]
"#;

    fn read(text: &str) -> Result<Declared, SystemFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        SystemFile::read(&path)
    }

    #[test]
    fn a_file_reads_and_its_placeholders_fill() {
        let d = read(BUNDLED).unwrap();
        let mut v = Vars::default();
        v.set("chaos", "/bin/chaos")
            .set("id", 2)
            .set("addr", "10.0.0.2");
        v.set("port:client", 7000).set("data_dir", "/d");
        v.lists.insert(
            "peers".into(),
            vec![
                "--peer=1=10.0.0.1:7000".into(),
                "--peer=3=10.0.0.3:7000".into(),
            ],
        );
        assert_eq!(
            v.fill_words(&d.file.node.command),
            [
                "/bin/chaos",
                "node",
                "--id",
                "2",
                "--listen",
                "10.0.0.2:7000",
                "--peer=1=10.0.0.1:7000",
                "--peer=3=10.0.0.3:7000",
                "--data-dir",
                "/d"
            ]
        );
        v.separator = Some(",".into());
        assert_eq!(
            v.fill("a={peers}"),
            "a=--peer=1=10.0.0.1:7000,--peer=3=10.0.0.3:7000"
        );
        assert_eq!(d.file.node.stop, StopDecl::default());
        assert_eq!(d.file.promises, Promise::Linearizable);
    }

    #[test]
    fn a_bad_file_is_refused_naming_its_line_and_field() {
        for (text, line, words) in [
            (
                BUNDLED.replace("workloads = [\"kv\", \"register\"]\n", ""),
                1,
                "missing field `workloads`",
            ),
            (
                BUNDLED.replace("ports = { client = 7000 }", "ports = { client = \"x\" }"),
                7,
                "invalid type",
            ),
            (
                BUNDLED.replace("\"{data_dir}\"", "\"{datadir}\""),
                6,
                "node.command: unknown placeholder {datadir}",
            ),
            (
                BUNDLED.replace("line = '\"ready\":true'", "line = '('"),
                11,
                "node.ready.line: not a regular expression",
            ),
            (
                BUNDLED.replace("line = '\"ready\":true'", "tcp = \"nope\""),
                11,
                "node.ready.tcp",
            ),
            (
                BUNDLED.replace("{system_dir}/client.py", "{peers}"),
                14,
                "client.command: unknown placeholder {peers}",
            ),
            (
                BUNDLED.replace("[client]", "[client]\nshell = true"),
                14,
                "unknown field `shell`",
            ),
        ] {
            let e = read(&text).unwrap_err();
            assert_eq!(e.line, Some(line), "{words}: {e}");
            assert!(e.to_string().contains(words), "{words}: {e}");
            assert!(e.to_string().contains("s.toml:"), "{e}");
        }
    }
}
