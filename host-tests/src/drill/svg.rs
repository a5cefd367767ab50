//! The review's chart, as hand-written SVG (no plotting dependency): one
//! lane per scope that left normal with its level as a step line, and the
//! share of requests with findings per time bucket underneath, with
//! operator actions as dashed markers.

use super::run::{level_name, Observation};
use std::collections::BTreeSet;
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 56.0;
const RATE_HEIGHT: f64 = 110.0;
/// Buckets of the finding-rate bars across the drill.
const BUCKETS: u64 = 60;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `scopes`: lanes to draw even if they never left normal (the ones a
/// drill's expectations name).
pub fn chart(title: &str, obs: &Observation, scopes: &[String]) -> String {
    let duration = obs.duration_ms.max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: u64| LEFT + plot_w * (t.min(duration) as f64 / duration as f64);
    let mut scopes: BTreeSet<String> = scopes.iter().cloned().collect();
    scopes.insert("global".into());
    for s in &obs.samples {
        for (scope, r) in &s.levels {
            if *r > 0 {
                scopes.insert(scope.clone());
            }
        }
    }
    let lanes_top = 40.0;
    let rate_top = lanes_top + LANE * scopes.len() as f64 + 30.0;
    let height = rate_top + RATE_HEIGHT + 50.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (lane, scope) in scopes.iter().enumerate() {
        let top = lanes_top + LANE * lane as f64;
        let bottom = top + LANE - 12.0;
        let y = |rank: u8| bottom - (bottom - top) * f64::from(rank) / 6.0;
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{}" fill="#f5f5f5"/>"##,
            bottom - top
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            (top + bottom) / 2.0 + 4.0,
            esc(scope)
        );
        let mut path = String::new();
        let mut last = 0u8;
        let mut max = 0u8;
        let _ = write!(path, "M{:.1},{:.1}", x(0), y(0));
        for sample in &obs.samples {
            let r = sample.levels.get(scope).copied().unwrap_or(0);
            if r != last {
                let _ = write!(
                    path,
                    " L{:.1},{:.1} L{:.1},{:.1}",
                    x(sample.t_ms),
                    y(last),
                    x(sample.t_ms),
                    y(r)
                );
                last = r;
            }
            max = max.max(r);
        }
        let _ = write!(path, " L{:.1},{:.1}", x(duration), y(last));
        let color = if max >= 5 {
            "#c62828"
        } else if max >= 2 {
            "#ef6c00"
        } else if max == 1 {
            "#f9a825"
        } else {
            "#2e7d32"
        };
        let _ = writeln!(
            s,
            r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>"#
        );
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" fill="#555" text-anchor="end">peak: {}</text>"##,
            LEFT + plot_w - 4.0,
            top + 11.0,
            level_name(max)
        );
    }
    // Finding rate.
    let bucket = duration.div_ceil(BUCKETS).max(1);
    let mut totals = vec![(0u64, 0u64); BUCKETS as usize];
    for r in &obs.requests {
        let b = ((r.t_ms / bucket) as usize).min(totals.len() - 1);
        totals[b].0 += 1;
        if !r.findings.is_empty() {
            totals[b].1 += 1;
        }
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{rate_top}" width="{plot_w}" height="{RATE_HEIGHT}" fill="#f5f5f5"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="end">requests with</text><text x="{}" y="{}" text-anchor="end">findings (%)</text>"#,
        LEFT - 6.0,
        rate_top + RATE_HEIGHT / 2.0,
        LEFT - 6.0,
        rate_top + RATE_HEIGHT / 2.0 + 13.0
    );
    let bar_w = plot_w / BUCKETS as f64;
    for (i, (n, f)) in totals.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let share = *f as f64 / *n as f64;
        let h = RATE_HEIGHT * share;
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#1565c0"><title>{:.0}% of {n}</title></rect>"##,
            LEFT + bar_w * i as f64 + 0.5,
            rate_top + RATE_HEIGHT - h,
            (bar_w - 1.0).max(0.5),
            h,
            share * 100.0
        );
    }
    for a in &obs.actions {
        let ax = x(a.t_ms);
        let _ = writeln!(
            s,
            r##"<line x1="{ax:.1}" y1="{lanes_top}" x2="{ax:.1}" y2="{}" stroke="#6a1b9a" stroke-dasharray="4 3"><title>{}</title></line>"##,
            rate_top + RATE_HEIGHT,
            esc(&a.what)
        );
    }
    let axis_y = rate_top + RATE_HEIGHT + 16.0;
    let step = (duration / 6).max(1);
    let mut t = 0;
    while t <= duration {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{axis_y}" text-anchor="middle">{} s</text>"#,
            x(t),
            t / 1000
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="{}" fill="#555">levels 0 normal … 6 global_stop; dashed lines: operator actions; virtual time</text>"##,
        axis_y + 18.0
    );
    s.push_str("</svg>\n");
    s
}
