//! `chaos matrix`'s table.

use harness::matrix::{Matrix, MatrixSpec};

/// The matrix's table (and, under the hog, the quiet and loaded detections side by side).
pub fn print(args: &MatrixSpec, m: &Matrix) {
    let (rows, seeds) = (&m.rows, m.seeds);
    if args.hog > 0 {
        println!(
            "\n{:<20} {:<22} {:<22}",
            "bug",
            "quiet: seed (time)",
            format!("hog {}: seed (time)", args.hog)
        );
        for r in rows.iter().filter(|r| !r.skipped) {
            let quiet = r.found.as_ref().map_or_else(
                || "NO".to_string(),
                |(s, _)| format!("{s} ({:.1} s)", r.secs),
            );
            let hogged = r.hogged.map_or_else(
                || "-".to_string(),
                |(found, _, secs)| {
                    found.map_or_else(|| "NO".into(), |s| format!("{s} ({secs:.1} s)"))
                },
            );
            println!("{:<20} {quiet:<22} {hogged:<22}", r.bug);
        }
    }
    println!(
        "\n{:<20} {:<9} {:<11} {:<5} {:<18} run directory",
        "bug", "detected", "first seed", "runs", "time to detection"
    );
    for r in rows {
        let (bug, runs) = (&r.bug, r.runs);
        match &r.found {
            Some((seed, dir)) => println!(
                "{bug:<20} {:<9} {seed:<11} {runs:<5} {:<18} {dir}",
                "yes",
                format!("{:.1} s", r.secs)
            ),
            None if r.skipped => println!(
                "{bug:<20} {:<9} {:<11} {runs:<5} {:<18} -",
                "needs sim", "-", "-"
            ),
            None => println!("{bug:<20} {:<9} {:<11} {runs:<5} {:<18} -", "NO", "-", "-"),
        }
    }
    println!(
        "\n{} of {} bugs detected within {seeds} seeds of {} s{} runs",
        rows.iter().filter(|r| r.found.is_some()).count(),
        rows.iter().filter(|r| !r.skipped).count(),
        m.time_limit,
        if args.sim { " simulated" } else { "" }
    );
}
