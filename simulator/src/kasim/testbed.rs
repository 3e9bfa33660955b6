//! `kasim testbed`: the simulator's prediction next to every row of the namespace testbed's CSV
//! (`scripts/bcast-testbed.sh` pipes its output here): two columns appended, `predicted_s` and
//! `error_pct` (prediction over measurement, in percent); other lines pass through unchanged.

use crate::bcast::testbed::{
    TestbedRun, TestbedTool, ToolSpeed, per_host_cost, predict, udpcast_overruns,
};
use anyhow::Context;
use clap::Args;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

/// Arguments of `kasim testbed`.
#[derive(Debug, Args, Clone)]
pub struct TestbedArgs {
    /// The testbed's CSV (default: standard input).
    pub csv: Option<PathBuf>,
    /// Predict from the links alone, ignoring the measured speed of the host's namespace hops.
    #[arg(long)]
    pub links_only: bool,
    /// Relative error counted as a hit in the summary (standard error).
    #[arg(long, default_value_t = 0.10)]
    pub tolerance: f64,
}

/// Longest line read (the testbed's lines are under 200 bytes).
const MAX_LINE: usize = 4096;

/// Columns a row needs, in the testbed's header names.
const COLUMNS: [&str; 8] = [
    "topology",
    "switches",
    "uplink_mbit",
    "mbit",
    "mib",
    "n",
    "strategy",
    "seconds",
];

/// Runs `kasim testbed`: reads the CSV, writes it with the prediction columns to standard output
/// and a summary (rows within the tolerance) to standard error.
pub fn run(args: &TestbedArgs) -> anyhow::Result<std::process::ExitCode> {
    let input: Box<dyn BufRead> = match &args.csv {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut out = std::io::stdout().lock();
    let mut header: Option<Vec<String>> = None;
    let (mut rows, mut hits, mut overrun) = (0usize, 0usize, 0usize);
    let mut line = String::new();
    let mut input = input.take(u64::MAX);
    loop {
        line.clear();
        input.set_limit(MAX_LINE as u64);
        if input.read_line(&mut line)? == 0 {
            break;
        }
        anyhow::ensure!(
            line.ends_with('\n') || line.len() < MAX_LINE,
            "a line over {MAX_LINE} bytes"
        );
        let text = line.trim_end();
        let fields: Vec<&str> = text.split(',').collect();
        if fields.first() == Some(&"topology") {
            header = Some(fields.iter().map(|s| s.to_string()).collect());
            writeln!(out, "{text},predicted_s,error_pct")?;
            continue;
        }
        // Extra trailing fields (columns a newer script appends) are ignored.
        let row = header
            .as_deref()
            .filter(|h| h.len() <= fields.len())
            .and_then(|h| parse_row(h, &fields, args.links_only));
        match row {
            Some((run, measured)) => {
                let predicted = predict(&run);
                overrun += usize::from(udpcast_overruns(&run));
                let error = predicted / measured - 1.0;
                rows += 1;
                hits += usize::from(error.abs() <= args.tolerance);
                writeln!(out, "{text},{predicted:.3},{:+.1}", error * 100.0)?;
            }
            None if header.as_ref().is_some_and(|h| h.len() <= fields.len()) => {
                writeln!(out, "{text},,")?;
            }
            None => writeln!(out, "{text}")?,
        }
    }
    eprintln!(
        "kasim testbed: {hits} of {rows} rows predicted within {:.0}%",
        args.tolerance * 100.0
    );
    if overrun > 0 {
        eprintln!(
            "kasim testbed: {overrun} udpcast rows had receive buffers smaller than udpcast's window \
             (datagrams dropped at the receivers' sockets): their predictions are loss-free lower bounds"
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A measured row as the run it describes and its time; `None` for rows the model does not cover
/// (a killed receiver, a run that did not finish).
pub(crate) fn parse_row(
    header: &[String],
    fields: &[&str],
    links_only: bool,
) -> Option<(TestbedRun, f64)> {
    let get = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .and_then(|i| fields.get(i).copied())
    };
    let num = |name: &str| get(name).and_then(|v| v.parse::<f64>().ok());
    for c in COLUMNS {
        get(c)?;
    }
    let tool = TestbedTool::parse(get("strategy")?)?;
    let measured = num("seconds").filter(|t| t.is_finite() && *t > 0.0)?;
    let n = num("n").filter(|n| (1.0..=100_000.0).contains(n))? as usize;
    let two_level = match get("topology")? {
        "two-level" => Some((
            num("switches").filter(|s| (1.0..=1000.0).contains(s))? as usize,
            num("uplink_mbit").filter(|u| *u > 0.0)?,
        )),
        _ => None,
    };
    let cpu = if links_only {
        None
    } else {
        let hop = num("hop_mbit").map(|m| m * 1e6 / 8.0);
        let uplink = num("uplink_hop_mbit").map(|m| m * 1e6 / 8.0).or(hop);
        hop.zip(uplink)
    };
    let meter = match tool {
        TestbedTool::PlainChain => Some("plain"),
        TestbedTool::Udpcast => Some("udpcast"),
        TestbedTool::Kaagent {
            strategy: hal::Strategy::Multicast,
            ..
        } => Some("mcast"),
        // The swarm's own exchange (requests, a store it serves from) is not the chain's hops: its
        // own meter since stop 18 (older CSVs: the hop meter's hops).
        TestbedTool::Kaagent {
            strategy: hal::Strategy::Swarm,
            ..
        } => Some("swarm"),
        // kaagent's planned strategies (chain, tree, unicast) forward as its chain does (stop 16).
        TestbedTool::Kaagent { .. } => Some("chain"),
    };
    // Older CSVs have no tool columns: the tool then costs what the hop meter's hops do.
    let tool_cpu = meter.filter(|_| !links_only).and_then(|m| {
        let count = |c: &str| num(c).filter(|k| (1.0..=100_000.0).contains(k));
        let speed = |c: String| {
            num(&c)
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(|v| v * 1e6 / 8.0)
        };
        Some(ToolSpeed {
            small: (count("meter_small")?, speed(format!("{m}_small_mbit"))?),
            large: (count("meter_large")?, speed(format!("{m}_large_mbit"))?),
        })
    });
    // udpcast's datagrams reach every host of a bed: the testbed's hosts beyond the meter's bed's
    // (`bed_hosts`, `meter_large`) cost what the meter's run alone says each costs.
    let bed_cost = match (tool, tool_cpu) {
        (TestbedTool::Udpcast, Some(speed)) => {
            let alone = num("udpcast_alone_mbit").map_or(f64::NAN, |v| v * 1e6 / 8.0);
            let extra = num("bed_hosts").map_or(0.0, |h| h - speed.large.0);
            extra * per_host_cost(&speed, alone)
        }
        _ => 0.0,
    };
    Some((
        TestbedRun {
            tool,
            mbit: num("mbit").filter(|m| *m > 0.0)?,
            mib: num("mib").filter(|m| *m > 0.0)?,
            n,
            two_level,
            cpu,
            tool_cpu,
            udpcast_rcvbuf: num("udpcast_rcvbuf").filter(|b| b.is_finite() && *b > 0.0),
            bed_cost,
            // Rows before stop 18 have no such column: kaagent's seed then served any chunk.
            swarm_striped: get("swarm_seed") == Some("stripes"),
        },
        measured,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A testbed CSV header: the columns every row has, then `extra` (comma-separated, may be empty).
    fn header(extra: &str) -> Vec<String> {
        "topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,hop_mbit,uplink_hop_mbit"
            .split(',')
            .chain(extra.split(',').filter(|c| !c.is_empty()))
            .map(String::from)
            .collect()
    }

    #[test]
    fn rows_become_runs_and_other_rows_are_skipped() {
        let header = header("");
        let row = "two-level,2,200,200,64,8,chain-oblivious,11.2,8000,4000";
        let fields: Vec<&str> = row.split(',').collect();
        let (run, measured) = parse_row(&header, &fields, false).expect("a run");
        assert_eq!(measured, 11.2);
        assert_eq!(run.two_level, Some((2, 200.0)));
        assert_eq!(run.cpu, Some((1e9, 5e8)));
        assert!(parse_row(&header, &fields, true).is_some_and(|(r, _)| r.cpu.is_none()));
        let killed = "flat,1,0,200,64,8,ft-chain-kill-host-4,3.1,8000,8000";
        let fields: Vec<&str> = killed.split(',').collect();
        assert!(parse_row(&header, &fields, false).is_none());
        let nan = "flat,1,0,200,64,8,udpcast,NaN,8000,8000";
        let fields: Vec<&str> = nan.split(',').collect();
        assert!(parse_row(&header, &fields, false).is_none());
    }

    #[test]
    fn the_tool_columns_give_each_tool_its_own_speed() {
        let header = header(
            "meter_small,meter_large,plain_small_mbit,plain_large_mbit,udpcast_small_mbit,udpcast_large_mbit,mcast_small_mbit,mcast_large_mbit",
        );
        let parse = |row: &str| {
            let fields: Vec<&str> = row.split(',').collect();
            parse_row(&header, &fields, false).map(|(r, _)| r.tool_cpu)
        };
        let tail = "8000,8000,2,8,4000,3200,2400,2000,1600,800";
        let mcast = parse(&format!("flat,1,0,1000,256,16,multicast,9.0,{tail}"));
        assert_eq!(
            mcast,
            Some(Some(ToolSpeed {
                small: (2.0, 2e8),
                large: (8.0, 1e8),
            }))
        );
        let udpcast = parse(&format!("flat,1,0,1000,256,16,udpcast,9.0,{tail}"));
        assert_eq!(udpcast.flatten().map(|t| t.large), Some((8.0, 2.5e8)));
        let plain = parse(&format!(
            "flat,1,0,1000,256,16,plain-socat-chain,9.0,{tail}"
        ));
        assert_eq!(plain.flatten().map(|t| t.small), Some((2.0, 5e8)));
        // kaagent's TCP strategies keep the hop speed; an empty or zero column is no measurement.
        assert_eq!(
            parse(&format!("flat,1,0,1000,256,16,chain,9.0,{tail}")),
            Some(None)
        );
        let empty = "flat,1,0,1000,256,16,udpcast,9.0,8000,8000,2,8,4000,3200,,,1600,800";
        assert_eq!(parse(empty), Some(None));
        let zero = "flat,1,0,1000,256,16,multicast,9.0,8000,8000,2,8,4000,3200,2400,2000,0,800";
        assert_eq!(parse(zero), Some(None));
    }

    #[test]
    fn udpcasts_idle_hosts_are_read_from_the_alone_and_bed_columns() {
        let header = header(
            "meter_small,meter_large,udpcast_small_mbit,udpcast_large_mbit,udpcast_alone_mbit,bed_hosts",
        );
        let cost = |row: &str| {
            let fields: Vec<&str> = row.split(',').collect();
            parse_row(&header, &fields, false).map(|(r, _)| r.bed_cost)
        };
        // 2 receivers: 1600 Mbit/s on the meter's 8 hosts, 2400 alone; the testbed has 16 hosts.
        let c = cost("flat,1,0,1000,256,2,udpcast,2.8,7000,7000,2,8,1600,3200,2400,16");
        let per_host = (2.0 / 2e8 - 2.0 / 3e8) / 6.0;
        assert!(
            c.is_some_and(|c| (c - 8.0 * per_host).abs() < 1e-20),
            "{c:?}"
        );
        // Without the columns (older CSVs), or another tool: nothing.
        assert_eq!(
            cost("flat,1,0,1000,256,2,udpcast,2.8,7000,7000,2,8,1600,3200,,"),
            Some(0.0)
        );
        assert_eq!(
            cost("flat,1,0,1000,256,2,chain,2.8,7000,7000,2,8,1600,3200,2400,16"),
            Some(0.0)
        );
    }

    #[test]
    fn kaagents_chain_columns_are_the_speed_of_its_tcp_strategies() {
        let header = header(
            "meter_small,meter_large,mcast_small_mbit,mcast_large_mbit,chain_small_mbit,chain_large_mbit",
        );
        let parse = |strategy: &str| {
            let row =
                format!("flat,1,0,1000,256,16,{strategy},4.4,7000,7000,2,8,4000,8000,6000,7200");
            let fields: Vec<&str> = row.split(',').collect();
            parse_row(&header, &fields, false).and_then(|(r, _)| r.tool_cpu)
        };
        let chain = Some(ToolSpeed {
            small: (2.0, 7.5e8),
            large: (8.0, 9e8),
        });
        for strategy in ["chain", "chain-oblivious", "ft-chain", "tree", "unicast"] {
            assert_eq!(parse(strategy), chain, "{strategy}");
        }
        assert_eq!(parse("multicast").map(|t| t.large), Some((8.0, 1e9)));
        // The swarm has no columns here: the hop meter's speed.
        assert_eq!(parse("swarm"), None);
    }

    /// Since stop 18 the swarm has its own meter (`swarm_*`) and its rows say how its nodes ask
    /// the seed (`swarm_seed`); a row without them is the earlier swarm on the hop meter.
    #[test]
    fn the_swarm_reads_its_own_meter_and_seed_rule() {
        let new = header("meter_small,meter_large,swarm_small_mbit,swarm_large_mbit,swarm_seed");
        let row = "flat,1,0,1000,256,16,swarm,4.8,5000,5000,2,8,4000,8000,stripes";
        let fields: Vec<&str> = row.split(',').collect();
        let (run, seconds) = parse_row(&new, &fields, false).expect("a swarm row");
        assert_eq!(seconds, 4.8);
        assert!(run.swarm_striped);
        assert_eq!(
            run.tool_cpu,
            Some(ToolSpeed {
                small: (2.0, 5e8),
                large: (8.0, 1e9),
            })
        );
        let old = header("meter_small,meter_large");
        let row = "flat,1,0,1000,256,16,swarm,4.8,5000,5000,2,8";
        let fields: Vec<&str> = row.split(',').collect();
        let (run, _) = parse_row(&old, &fields, false).expect("an older swarm row");
        assert!(!run.swarm_striped);
        assert_eq!(run.tool_cpu, None);
    }

    #[test]
    fn the_udpcast_buffer_column_is_read_and_extra_trailing_columns_are_ignored() {
        let header = header("udpcast_rcvbuf");
        let parse = |row: &str| {
            let fields: Vec<&str> = row.split(',').collect();
            parse_row(&header, &fields, false).map(|(r, _)| r.udpcast_rcvbuf)
        };
        assert_eq!(
            parse("flat,1,0,1000,256,4,udpcast,2.3,7000,7000,8388608"),
            Some(Some(8388608.0))
        );
        // Empty (the meter did not run udpcast) or nonsense: the kernel's default is assumed.
        assert_eq!(
            parse("flat,1,0,1000,256,4,udpcast,2.3,7000,7000,"),
            Some(None)
        );
        assert_eq!(
            parse("flat,1,0,1000,256,4,udpcast,2.3,7000,7000,-5"),
            Some(None)
        );
        // A newer script's columns after the header's: the row is still read.
        assert_eq!(
            parse("flat,1,0,1000,256,4,udpcast,2.3,7000,7000,8388608,2.31,0.4"),
            Some(Some(8388608.0))
        );
    }
}
