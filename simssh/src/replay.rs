//! Replays a node's journal events into its files, running with the simulated shell the scripts they
//! leave (post-install scripts, custom operations).

use crate::archive::ArchiveCache;
use crate::node_fs::NodeFs;
use crate::shell::Shell;
use simulator::cluster::NodeEvent;
use tracing::debug;

/// Applies `event` to `fs`, then runs the script it leaves, if any.
pub fn apply(fs: &mut NodeFs, event: &NodeEvent, cache: &ArchiveCache) {
    let Some(script) = fs.apply(event, cache) else {
        return;
    };
    let mut shell = Shell::new(fs, &script.env);
    shell.cwd = script.cwd;
    let run = shell.run_text(&script.text, b"");
    debug!(node = %fs.name(), status = run.status, "script run by the simulated shell");
}
