//! `chaos report RUN_DIR`: re-render a run's report, junit.xml and the index from its
//! files (judging a run that left no result.json), and print its summary.

use std::path::Path;

use results::ExitCode;

/// Renders and prints; the run's own exit code, or the reason `dir` is not a run.
pub fn report(dir: &Path) -> Result<ExitCode, results::RenderError> {
    let r = results::render_run(dir)?;
    let colour = results::summary::colour_on_stdout();
    print!(
        "{}",
        results::summary::render(&r.result, Some(&r.report), colour)
    );
    println!("  junit:     {}", r.junit.display());
    if let Some(index) = &r.index {
        println!("  index:     {}", index.display());
    }
    Ok(r.result.exit_code)
}
