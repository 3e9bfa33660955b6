//! `kasim`'s prediction of a lab deployment: the simulator run on a copy of the lab's configuration
//! with a `simulation.conf`, once per seed, the prediction being the mean. Each seed draws every
//! node's boot phases anew from the spread the calibration measured ([`super::spread`]); the engine
//! finds the nodes on a grid of probe rounds, so one draw's time jumps by a round where the boots
//! cross one, while the mean over seeds moves with the boots.

use crate::e2e::options::BootPath;
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Seeds a prediction averages (`kasim --seed 1` to `--seed SEEDS`).
pub const SEEDS: u64 = 16;

/// A prediction over seeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Prediction {
    /// The mean of the seeds' deployment times (s).
    pub mean: f64,
    /// Their standard deviation (s): the run-to-run spread the model expects.
    pub sd: f64,
    /// The shortest (s).
    pub min: f64,
    /// The longest (s).
    pub max: f64,
    /// Seeds run.
    pub seeds: u64,
}

/// The mean (and spread) of `run(seed)` over seeds `1..=seeds`.
pub fn over_seeds(
    seeds: u64,
    mut run: impl FnMut(u64) -> anyhow::Result<f64>,
) -> anyhow::Result<Prediction> {
    let times: Vec<f64> = (1..=seeds.max(1))
        .map(&mut run)
        .collect::<anyhow::Result<_>>()?;
    let n = times.len() as f64;
    let mean = times.iter().sum::<f64>() / n;
    let var = times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Ok(Prediction {
        mean,
        sd: var.sqrt(),
        min: times.iter().copied().fold(f64::INFINITY, f64::min),
        max: times.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        seeds: times.len() as u64,
    })
}

/// Runs `kasim` on a copy of the lab's configuration whose BootNewEnv is `boot`, with `params`
/// (a `simulation.conf` text), once per seed ([`SEEDS`]); the predicted deployment time.
pub fn predict(
    kasim: &Path,
    config_dir: &Path,
    work: &Path,
    params: &str,
    boot: BootPath,
    nodes: usize,
) -> anyhow::Result<Prediction> {
    let dir: PathBuf = work.join("sim");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for file in [
        "server.conf",
        "clusters.conf",
        "partition.sh",
        "install_bootloader",
    ] {
        std::fs::copy(config_dir.join(file), dir.join(file))?;
    }
    // The configuration is loaded whole: the power backends' password files (IPMI, Redfish, the PDU's
    // community and SNMPv3 keys, all `*.pass`) come along.
    for entry in std::fs::read_dir(config_dir)? {
        let path = entry?.path();
        if let Some(name) = path.file_name()
            && path.is_file()
            && path.extension().is_some_and(|e| e == "pass")
        {
            std::fs::copy(&path, dir.join(name))?;
        }
    }
    let other = match boot {
        BootPath::Kexec => "type: Classical",
        BootPath::Classical => "type: Kexec",
    };
    let cluster = std::fs::read_to_string(config_dir.join("lab-cluster.conf"))?;
    let mut in_boot_new_env = false;
    let cluster: String = cluster
        .lines()
        .filter(|l| {
            if l.trim_start().starts_with("BootNewEnv:") {
                in_boot_new_env = true;
            } else if !l.trim_start().starts_with('-') {
                in_boot_new_env = false;
            }
            !(in_boot_new_env && l.contains(other))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("lab-cluster.conf"), cluster)?;
    std::fs::write(dir.join("simulation.conf"), params)?;
    over_seeds(SEEDS, |seed| run_kasim(kasim, &dir, nodes, seed))
}

/// One `kasim deploy` of `nodes` nodes on the configuration `dir` with `seed`: its virtual seconds.
fn run_kasim(kasim: &Path, dir: &Path, nodes: usize, seed: u64) -> anyhow::Result<f64> {
    let out = Command::new(kasim)
        .args(["deploy", "--json", "-V", "0", "--key", "--seed"])
        .arg(seed.to_string())
        .args(["--nodes", &nodes.to_string(), "--config"])
        .arg(dir)
        .output()
        .with_context(|| format!("running {}", kasim.display()))?;
    if !out.status.success() {
        bail!(
            "kasim: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).context("kasim's JSON line")?;
    v["virtual_seconds"]
        .as_f64()
        .context("kasim's JSON has no virtual_seconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prediction_is_the_mean_over_its_seeds() {
        let p = over_seeds(4, |seed| Ok(if seed % 2 == 0 { 40.0 } else { 33.0 })).unwrap();
        assert_eq!(p.seeds, 4);
        assert!((p.mean - 36.5).abs() < 1e-12);
        assert_eq!((p.min, p.max), (33.0, 40.0));
        assert!((p.sd - (4.0 * 3.5f64.powi(2) / 3.0).sqrt()).abs() < 1e-12);
        assert!(over_seeds(2, |_| bail!("kasim failed")).is_err());
    }
}
