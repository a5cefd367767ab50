//! Incident drills: the playbook's tabletop scenarios, executed against the
//! compiled filter. A drill file (README, "Drills") describes synthetic
//! traffic over virtual time, operator actions at given moments and what
//! must come of it; the runner plays it through the host with several
//! workers sharing one store, and judges detection, containment and
//! recovery from what the filter itself logged and answered.
//!
//! Time is virtual, so a drill of ten minutes costs only its requests; keep
//! request counts modest (hundreds) and stretch time instead.
//!
//! - [`spec`] — the file format and its validation;
//! - [`traffic`] — the seeded generator of requests and upstream answers;
//! - [`run`] — the host, the schedule, and the observation;
//! - [`verdict`] — expectations judged, key moments, impact;
//! - [`report`] — the console timeline, the verdict line, the Markdown review;
//! - [`svg`] — the review's chart.

pub mod report;
pub mod run;
pub mod spec;
pub mod svg;
pub mod traffic;
pub mod verdict;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The directory `rheostat drill` searches when given no argument or a bare name.
pub const DRILL_DIR: &str = "examples/drills";

/// A drill's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DrillResult {
    pub name: String,
    pub title: String,
    pub category: String,
    pub file: String,
    pub passed: bool,
    pub checks: Vec<verdict::Check>,
    pub keys: verdict::KeyTimes,
    pub impact: verdict::Impact,
    pub timeline: Vec<report::Entry>,
    pub improvements: Vec<String>,
    /// Everything observed (requests, events, samples); left out of `--json`.
    #[serde(skip)]
    pub observation: run::Observation,
}

impl DrillResult {
    /// Failed expectations, one line each (empty when the drill passed).
    pub fn failures(&self) -> Vec<String> {
        report::failures(&self.checks)
    }
}

/// The drill files under `dir`, sorted.
pub fn drill_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list drills in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no drill files (*.json) in {}", dir.display());
    }
    Ok(files)
}

/// `examples/drills` under the working directory, else under the workspace
/// this binary was built from (as `replay::built_module` finds modules).
pub fn drills_dir() -> PathBuf {
    let relative = PathBuf::from(DRILL_DIR);
    if relative.is_dir() {
        return relative;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(DRILL_DIR)
}

/// A drill argument: a path, or a name looked up in `dir` (`customer-pii`
/// → `dir/customer-pii.json`).
pub fn resolve(arg: &str, dir: &Path) -> Result<PathBuf> {
    let as_path = PathBuf::from(arg);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let named = dir.join(format!("{arg}.json"));
    if named.is_file() {
        return Ok(named);
    }
    bail!(
        "no drill {arg:?}: not a file, and no {} exists",
        named.display()
    )
}

/// The drill's name: its file stem.
fn name_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "drill".into())
}

/// Loads and runs one drill file through `module`.
pub fn run_file(path: &Path, module: &Path) -> Result<DrillResult> {
    let spec = spec::read(path)?;
    run_spec(&spec, &name_of(path), path, module)
}

/// Runs a parsed drill; `file` locates relative policy paths.
pub fn run_spec(
    spec: &spec::DrillSpec,
    name: &str,
    file: &Path,
    module: &Path,
) -> Result<DrillResult> {
    let base = file.parent().unwrap_or(Path::new("."));
    let observation = run::run(&run::Prepared { spec, base, module })
        .with_context(|| format!("drill {name} ({}) could not run", file.display()))?;
    let keys = verdict::key_times(spec, &observation);
    let mut checks = verdict::checks(spec, &observation, &keys);
    if !observation.traps.is_empty() {
        checks.push(verdict::Check {
            name: "the filter never traps".into(),
            passed: false,
            detail: observation.traps.join("; "),
            used: None,
        });
    }
    let impact = verdict::impact(&observation);
    let timeline = report::timeline(spec, &observation, &keys);
    let mut result = DrillResult {
        name: name.to_string(),
        title: spec.title.clone(),
        category: spec.category.clone(),
        file: file.display().to_string(),
        passed: checks.iter().all(|c| c.passed),
        checks,
        keys,
        impact,
        timeline,
        improvements: Vec::new(),
        observation,
    };
    result.improvements = report::improvements(&result);
    Ok(result)
}

/// Writes `<name>.md` and `<name>.svg` into `dir`.
pub fn write_report(result: &DrillResult, spec: &spec::DrillSpec, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let svg_name = format!("{}.svg", result.name);
    let md = report::markdown(result, spec, &svg_name);
    let md_path = dir.join(format!("{}.md", result.name));
    std::fs::write(&md_path, md).with_context(|| format!("cannot write {}", md_path.display()))?;
    let svg_path = dir.join(&svg_name);
    let e = &spec.expect;
    let named: Vec<String> = e
        .levels
        .iter()
        .chain(&e.never)
        .chain(&e.recovery)
        .map(|l| l.scope.clone())
        .collect();
    std::fs::write(
        &svg_path,
        svg::chart(&result.title, &result.observation, &named),
    )
    .with_context(|| format!("cannot write {}", svg_path.display()))?;
    Ok(())
}

/// `rheostat drill [NAME|PATH]... [--report DIR] [--json]`: `Ok(1)` when
/// any expectation fails; an error when a drill cannot be read or run.
pub fn main(
    args: &[String],
    module: &Path,
    report_dir: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let dir = drills_dir();
    let dir = dir.as_path();
    let files = if args.is_empty() {
        drill_files(dir)?
    } else {
        args.iter()
            .map(|a| resolve(a, dir))
            .collect::<Result<Vec<_>>>()?
    };
    // Written, not printed: a closed pipe (`| head`) is an error, not a panic.
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all_passed = true;
    let mut results = Vec::new();
    let mut verdicts = Vec::new();
    for file in &files {
        let spec = spec::read(file)?;
        let result = run_spec(&spec, &name_of(file), file, module)?;
        all_passed &= result.passed;
        if let Some(dir) = report_dir {
            write_report(&result, &spec, dir)?;
        }
        verdicts.push(report::verdict_line(&result));
        if json {
            results.push(result);
        } else {
            writeln!(out, "{}", report::console(&result))?;
        }
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&results)?)?;
    } else if files.len() > 1 {
        writeln!(out, "== {} drills", files.len())?;
        for v in &verdicts {
            writeln!(out, "{v}")?;
        }
    }
    if let Some(dir) = report_dir {
        eprintln!("reviews written to {}", dir.display());
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
