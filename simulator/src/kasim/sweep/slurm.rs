//! `kasim sweep --slurm`: an sbatch job-array script whose task `I` runs shard `I/N` of the same grid
//! and writes `OUT.shard-I-of-N.csv`; `kasim sweep merge` then joins them.

use super::grid::grid_cli;
use crate::kasim::args::GridArgs;
use std::path::Path;

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shard file of task `task` (a shell expression or a number) of `shards` next to `out`.
pub fn shard_file(out: &Path, task: &str, shards: usize) -> String {
    format!("{}.shard-{task}-of-{shards}.csv", out.display())
}

/// The sbatch script running `exe` (kasim) on `grid` in `shards` array tasks, results next to `out`.
pub fn script(exe: &Path, grid: &GridArgs, shards: usize, out: &Path) -> String {
    let args: Vec<String> = grid_cli(grid).iter().map(|a| quote(a)).collect();
    let shard_out = format!(
        "{}\"${{SLURM_ARRAY_TASK_ID}}\"{}",
        quote(&format!("{}.shard-", out.display())),
        quote(&format!("-of-{shards}.csv"))
    );
    let log = format!("{}.slurm-%A_%a.out", out.display());
    let merge: Vec<String> = (0..shards)
        .map(|i| quote(&shard_file(out, &i.to_string(), shards)))
        .collect();
    format!(
        "#!/bin/sh\n\
         # kasim sweep: {shards} shards of one grid as a Slurm job array.\n\
         # Submit: sbatch {script_hint}\n\
         # Then:   {exe} sweep merge -o {out} {merge}\n\
         #SBATCH --job-name=kasim-sweep\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --ntasks=1\n\
         #SBATCH --output={log}\n\
         set -eu\n\
         exec {exe} sweep {args} --shard \"${{SLURM_ARRAY_TASK_ID}}/{shards}\" --out {shard_out}\n",
        script_hint = "THIS_FILE",
        exe = quote(&exe.display().to_string()),
        out = quote(&out.display().to_string()),
        merge = merge.join(" "),
        last = shards - 1,
        log = log,
        args = args.join(" "),
        shard_out = shard_out,
    )
}
