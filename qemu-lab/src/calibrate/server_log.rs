//! The broadcast's time to the microsecond from kadeploy3d's log (the lab runs it with the engine's
//! micro-step ends at debug level): kadeploy's own `Broadcast time` is in whole seconds, ±0.5 s of the
//! 3 s a 4-VM broadcast takes, and a 16-VM prediction scales it.

/// What an engine micro-step's end looks like in the log.
const DONE: &str = "kadeploy::engine::trace: done";
/// The broadcast's micro-step.
const SEND: &str = "micro_step{name=send_environment ";

/// Seconds from the end of the micro-step before the first `send_environment` to that broadcast's
/// end; `None` when the log lacks either.
pub fn broadcast_seconds(log: &str) -> Option<f64> {
    let mut previous = None;
    for line in log.lines().filter(|l| l.contains(DONE)) {
        let t = seconds_of_day(line)?;
        if line.contains(SEND) {
            let start = previous?;
            // A run across midnight.
            let d = if t >= start {
                t - start
            } else {
                t + 86_400.0 - start
            };
            return Some(d);
        }
        previous = Some(t);
    }
    None
}

/// The seconds since midnight of a log line's RFC 3339 UTC timestamp (`2026-12-06T00:26:27.156648Z`).
fn seconds_of_day(line: &str) -> Option<f64> {
    let time = line.get(11..)?.split(['Z', ' ']).next()?;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    (line.get(10..11) == Some("T")).then_some(h * 3600.0 + m * 60.0 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-VM lab run's log (2026-12-06, abridged): kadeploy said `Broadcast time: 3s`.
    const LOG: &str = "\
2026-12-06T00:26:23.887750Z DEBUG nodeset{id=8 task=format_swap_part attempt=0 nodes=node-[1-2].lab}:micro_step{name=format_swap_part attempt=0 nodes=node-[1-2].lab ok=2 ko=0}: kadeploy::engine::trace: done
2026-12-06T00:26:23.888176Z DEBUG nodeset{id=8 task=format_swap_part attempt=0 nodes=node-[1-2].lab ok=2 ko=0 timed_out=false}: kadeploy::engine::trace: done
2026-12-06T00:26:24.332541Z  INFO hal::broadcast::deployer: broadcast starts job=x strategy=ft-chain nodes=2 chunks=7
2026-12-06T00:26:27.156648Z DEBUG nodeset{id=1 task=send_environment attempt=0 nodes=node-[1-2].lab}:micro_step{name=send_environment attempt=0 nodes=node-[1-2].lab ok=2 ko=0}: kadeploy::engine::trace: done
2026-12-06T00:26:27.156830Z DEBUG nodeset{id=1 task=send_environment attempt=0 nodes=node-[1-2].lab ok=2 ko=0 timed_out=false}: kadeploy::engine::trace: done
";

    #[test]
    fn the_broadcast_is_timed_from_the_previous_micro_steps_end() {
        let t = broadcast_seconds(LOG).unwrap();
        assert!((t - 3.268472).abs() < 1e-6, "{t}");
    }

    #[test]
    fn a_log_without_the_engines_steps_or_across_midnight() {
        assert_eq!(broadcast_seconds("kadeploy3d listening\n"), None);
        let only_send: String = LOG.lines().skip(3).collect::<Vec<_>>().join("\n");
        assert_eq!(broadcast_seconds(&only_send), None);
        let midnight = LOG
            .replace("2026-12-06T00:26:23", "2026-12-05T23:59:58")
            .replace("2026-12-06T00:26:27", "2026-12-06T00:00:02");
        let t = broadcast_seconds(&midnight).unwrap();
        assert!((t - 3.268472).abs() < 1e-6, "{t}");
        assert_eq!(seconds_of_day("garbage"), None);
    }
}
