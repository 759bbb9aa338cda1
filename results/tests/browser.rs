//! Opens a failing run's report.html in headless Chromium: the page must log nothing
//! to the console (no script error), its script must finish (it marks the body
//! `data-ready`), and a screenshot must not be blank.
//!
//! Chromium is Debian's `chromium` package. When it is missing and this runs as root
//! with apt-get, the test installs it (bounded to 5 minutes); otherwise it prints why
//! it is skipped and passes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn find_browser() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

fn try_install() -> Result<(), String> {
    if !nix_is_root() {
        return Err("chromium is not installed and this is not root".into());
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        return Err("chromium is not installed and there is no apt-get".into());
    }
    eprintln!("browser test: installing chromium with apt-get (at most 5 minutes)");
    let out = run_bounded(
        Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "chromium"]),
        Duration::from_secs(300),
    )?;
    if find_browser().is_none() {
        return Err(format!("apt-get install chromium failed: {}", tail(&out.1)));
    }
    Ok(())
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Runs a command in its own process group; kills the group at the deadline.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<(String, String), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).map_err(|e| e.to_string())?)
        .stderr(std::fs::File::create(&err_path).map_err(|e| e.to_string())?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish in {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The browser leaves helpers in its group; none may outlive the test.
    kill_group(child.id());
    Ok((
        std::fs::read_to_string(out_path).unwrap_or_default(),
        std::fs::read_to_string(err_path).unwrap_or_default(),
    ))
}

/// SIGKILL to the process group the child leads (never a negative pid on a command
/// line, where some `kill`s would read it as "every process").
fn kill_group(leader: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(leader as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn browser(bin: &Path, profile: &Path, extra: &[&str], page: &Path) -> (String, String) {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1200,1800",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()));
    run_bounded(&mut cmd, Duration::from_secs(90)).expect("the browser ran")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_failing_runs_report_opens_cleanly_in_chromium() {
    let bin = match find_browser()
        .ok_or(())
        .or_else(|_| try_install().map(|_| find_browser().unwrap()))
    {
        Ok(b) => b,
        Err(why) => {
            eprintln!("browser test skipped: {why}");
            return;
        }
    };
    let scratch = tempfile::tempdir().unwrap();
    let run = scratch.path().join("run");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runs/linearizability"),
        &run,
    );
    results::render_run(&run).expect("renders");
    let page = run.join("report.html");
    let profile = scratch.path().join("profile");

    let (dom, log) = browser(&bin, &profile, &["--dump-dom"], &page);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page logged to the console:\n{}",
        console.join("\n")
    );
    assert!(
        dom.contains("data-ready=\"1\""),
        "the timeline script did not finish"
    );
    assert!(dom.contains("class=\"has-js\""), "the script ran");

    let shot = scratch.path().join("shot.png");
    let (_, log) = browser(
        &bin,
        &profile,
        &[&format!("--screenshot={}", shot.display())],
        &page,
    );
    assert!(shot.exists(), "no screenshot: {}", tail(&log));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..info.buffer_size()];
    let step = info.color_type.samples();
    let mut colours: Vec<&[u8]> = pixels.chunks(step).step_by(97).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 20,
        "the screenshot is blank ({} colours)",
        colours.len()
    );
    if let Ok(keep) = std::env::var("REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

/// The linearizability fixture as a simulated run whose message diagram has more
/// message types than the palette has colours, with a script that measures, in the
/// browser, whether every legend entry lies inside its diagram.
fn simulated_run_with_many_message_types(run: &Path) {
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runs/linearizability"),
        run,
    );
    let edit = |file: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let path = run.join(file);
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
    };
    edit("plan.json", &|p| p["mode"] = "sim".into());
    edit("result.json", &|r| r["plan"]["mode"] = "sim".into());
    // Fifteen message types, long names among them, in every stretch of the trace.
    let kinds = [
        "prepare",
        "promise",
        "accept",
        "accepted",
        "decided",
        "register-nack",
        "snapshot-chunk",
        "log-prepare",
        "log-promise",
        "log-accept",
        "log-accepted",
        "commit",
        "forward",
        "chosen",
        "reject",
    ];
    let path = run.join("messages.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut m: serde_json::Value = serde_json::from_str(l).unwrap();
            m["type"] = kinds[i % kinds.len()].into();
            m.to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// Appended to a page: marks the body with what the legend measured.
const MEASURE_LEGEND: &str = r#"<script>
(function () {
  var verdict = "no-diagram";
  document.querySelectorAll("svg.lamport").forEach(function (svg) {
    var width = svg.viewBox.baseVal.width, height = svg.viewBox.baseVal.height, kinds = 0;
    verdict = "fits";
    svg.querySelectorAll(".legend text").forEach(function (t) {
      var b = t.getBBox();
      kinds++;
      if (b.x < 0 || b.x + b.width > width || b.y + b.height > height) verdict = "cut:" + t.textContent;
    });
    var colours = {};
    svg.querySelectorAll(".legend line").forEach(function (l) {
      colours[l.getAttribute("stroke") + "/" + (l.getAttribute("stroke-dasharray") || "")] = 1;
    });
    document.body.setAttribute("data-legend-kinds", kinds);
    document.body.setAttribute("data-legend-styles", Object.keys(colours).length);
  });
  document.body.setAttribute("data-legend", verdict);
})();
</script>"#;

#[test]
fn the_message_legend_fits_and_a_simulated_run_says_its_network_is_simulated() {
    let Some(bin) = find_browser() else {
        eprintln!("browser test skipped: no chromium (the other browser test installs it)");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let run = scratch.path().join("run");
    simulated_run_with_many_message_types(&run);
    results::render_run(&run).expect("renders");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("simulated: every message passes through"),
        "network words"
    );
    assert!(!html.contains("a proxy on every link"));
    let page = run.join("measured.html");
    std::fs::write(
        &page,
        html.replace("</body>", &format!("{MEASURE_LEGEND}</body>")),
    )
    .unwrap();
    let (dom, log) = browser(
        &bin,
        &scratch.path().join("profile"),
        &["--dump-dom"],
        &page,
    );
    assert!(dom.contains("data-legend=\"fits\""), "{}", {
        let at = dom.find("data-legend=").unwrap_or(0);
        format!("{} | {}", &dom[at..(at + 80).min(dom.len())], tail(&log))
    });
    // Every type in the legend has a style of its own (colour and dash).
    let attr = |name: &str| -> usize {
        let at = dom.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        dom[at..].split('"').next().unwrap().parse().unwrap()
    };
    let kinds = attr("data-legend-kinds");
    assert!(kinds > 12, "the window has {kinds} message types");
    assert_eq!(attr("data-legend-styles"), kinds);
}
