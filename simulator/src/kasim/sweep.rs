//! `kasim sweep`: the broadcast models over a grid of strategy × N × image size × link rate ×
//! topology × failure rate × seed, written as CSV (one line per point, in point order) with plots made
//! by the command itself; `--shard I/N` runs one shard, `--slurm` writes an sbatch job array of shards
//! instead of running, and `kasim sweep merge` joins the shards' CSVs into the CSV of one run.

mod charts;
pub mod grid;
pub mod point;
mod slurm;
pub mod table;

use super::args::{MergeArgs, SweepAction, SweepArgs};
use super::setup;
use crate::params::SimParams;
use anyhow::{Context as _, bail};
use grid::Grid;
use std::path::Path;
use std::process::ExitCode;

/// Runs `kasim sweep` (or `kasim sweep merge`).
pub fn run(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    if let Some(SweepAction::Merge(m)) = &args.action {
        return merge(m);
    }
    let grid = Grid::new(&args.grid)?;
    if let Some(script) = &args.slurm {
        return write_slurm(args, script);
    }
    let base = base_params(args.grid.config.as_deref())?;
    let csv = run_grid(&grid, &base, args.grid.chunk, args.shard);
    emit(args.out.as_deref(), &csv)?;
    if let Some(dir) = &args.plots {
        plots(dir, &csv)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The CSV of the points of `shard` (all when `None`).
pub fn run_grid(
    grid: &Grid,
    base: &SimParams,
    chunk: Option<f64>,
    shard: Option<(usize, usize)>,
) -> String {
    let mut csv = table::header();
    csv.push('\n');
    for i in grid.indices(shard) {
        let p = grid.point(i);
        let summary = point::summarise(&point::outcomes(base, &p, chunk));
        csv.push_str(&table::line(&p, &summary));
        csv.push('\n');
    }
    csv
}

/// The simulation parameters of `--config` (a configuration directory or a simulation.conf; the
/// sample's when absent; the defaults for a directory without simulation.conf).
pub fn base_params(config: Option<&Path>) -> anyhow::Result<SimParams> {
    let sample = Path::new(setup::SAMPLE_DIR).join(setup::PARAMS_FILE);
    let file = match config {
        None => sample,
        Some(dir) if dir.is_dir() => dir.join(setup::PARAMS_FILE),
        Some(file) if file.is_file() => file.to_path_buf(),
        Some(other) => bail!(
            "{}: no such configuration directory or file",
            other.display()
        ),
    };
    if file.is_file() {
        Ok(SimParams::load(&file)?)
    } else {
        Ok(SimParams::default())
    }
}

fn emit(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn plots(dir: &Path, csv: &str) -> anyhow::Result<()> {
    let rows = csv
        .lines()
        .skip(1)
        .map(table::parse)
        .collect::<anyhow::Result<Vec<_>>>()?;
    for f in charts::write(dir, &rows)? {
        eprintln!("kasim: wrote {}", f.display());
    }
    Ok(())
}

/// Most shard files a merge reads, and most bytes per file.
const MAX_MERGE_FILES: usize = 100_000;
const MAX_CSV_BYTES: u64 = 1 << 30;

fn merge(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    if args.files.len() > MAX_MERGE_FILES {
        bail!("more than {MAX_MERGE_FILES} files");
    }
    let mut texts = Vec::with_capacity(args.files.len());
    for f in &args.files {
        let len = std::fs::metadata(f)
            .with_context(|| format!("reading {}", f.display()))?
            .len();
        if len > MAX_CSV_BYTES {
            bail!("{}: larger than {MAX_CSV_BYTES} bytes", f.display());
        }
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        texts.push((f.clone(), text));
    }
    let csv = table::merge(&texts)?;
    emit(args.out.as_deref(), &csv)?;
    if let Some(dir) = &args.plots {
        plots(dir, &csv)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_slurm(args: &SweepArgs, script: &Path) -> anyhow::Result<ExitCode> {
    let Some(out) = &args.out else {
        bail!("--slurm needs --out (the merged CSV; the shards are written next to it)");
    };
    if args.shards == 0 || args.shards > 10_000 {
        bail!("--shards must be between 1 and 10000");
    }
    let exe = std::env::current_exe().context("locating the kasim binary")?;
    let out = std::path::absolute(out).context("resolving --out")?;
    let text = slurm::script(&exe, &args.grid, args.shards, &out);
    std::fs::write(script, text).with_context(|| format!("writing {}", script.display()))?;
    eprintln!(
        "kasim: wrote {} ({} array tasks); submit it with sbatch, then merge the shards with `kasim sweep merge`",
        script.display(),
        args.shards
    );
    Ok(ExitCode::SUCCESS)
}
