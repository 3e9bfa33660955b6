//! Every option of the eight Kadeploy 3.3.11 clients (spec §2: the 220 long options their `--help` prints,
//! `--[no-]x` counted as `--x` and `--no-x`) parses in ours under the same short and long names, and the
//! short and long forms are the same option.

use clap::parser::ValueSource;
use kadeploy_clients::command;

/// One option: its short name, its long name, and a plausible value when it takes one.
type Opt = (Option<&'static str>, &'static str, Option<&'static str>);

/// The generic options of every client (`Client.global_parse_options`).
const GENERIC: &[Opt] = &[
    (Some("-h"), "--help", None),
    (Some("-v"), "--version", None),
    (Some("-I"), "--server-info", None),
    (Some("-M"), "--multi-server", None),
    (Some("-H"), "--debug-http", None),
    (None, "--no-debug-http", None),
    (Some("-S"), "--server", Some("lille")),
    (None, "--dry-run", None),
    (None, "--no-dry-run", None),
    (None, "--password", Some("secret")),
];

/// The options of the workflow clients (`ClientWorkflow.global_parse_options`).
const WORKFLOW: &[Opt] = &[
    (Some("-d"), "--debug-mode", None),
    (None, "--no-debug-mode", None),
    (Some("-f"), "--file", Some("nodes.txt")),
    (Some("-m"), "--machine", Some("node-1")),
    (Some("-o"), "--output-ok-nodes", Some("ok.txt")),
    (Some("-n"), "--output-ko-nodes", Some("ko.txt")),
    (Some("-s"), "--script", Some("/bin/true")),
    (Some("-V"), "--verbose-level", Some("4")),
    (None, "--write-workflow-id", Some("wid.txt")),
    (None, "--wait", None),
    (None, "--no-wait", None),
    (None, "--force", None),
    (None, "--no-force", None),
    (None, "--breakpoint", Some("BroadcastEnv:send_environment")),
    (None, "--custom-steps", Some("ops.yml")),
    (None, "--hook", None),
    (None, "--no-hook", None),
];

const KADEPLOY3: &[Opt] = &[
    (Some("-a"), "--env-file", Some("env.yml")),
    (Some("-b"), "--block-device", Some("/dev/sda")),
    (Some("-c"), "--boot-partition", Some("0")),
    (Some("-e"), "--env-name", Some("debian12")),
    (Some("-k"), "--key", Some("id.pub")),
    (Some("-p"), "--partition-number", Some("3")),
    (Some("-r"), "--reformat-tmp", Some("ext4")),
    (Some("-u"), "--env-user", Some("root")),
    (None, "--vlan", Some("3")),
    (Some("-w"), "--set-pxe-profile", Some("profile")),
    (None, "--set-pxe-pattern", Some("pattern")),
    (Some("-x"), "--upload-pxe-files", Some("a,b")),
    (None, "--env-version", Some("2")),
    (None, "--no-kexec", None),
    (None, "--disable-bootloader-install", None),
    (None, "--disable-disk-partitioning", None),
    (None, "--reboot-classical-timeout", Some("100+n*2")),
    (None, "--reboot-kexec-timeout", Some("60")),
    (
        None,
        "--force-steps",
        Some(
            "SetDeploymentEnv|SetDeploymentEnvUntrusted:1:300&BroadcastEnv|BroadcastEnvKastafior:1:200&BootNewEnv|BootNewEnvClassical:1:200",
        ),
    ),
    (None, "--secure", None),
    (None, "--no-secure", None),
];

const KAREBOOT3: &[Opt] = &[
    (Some("-r"), "--reboot-kind", Some("deploy_env")),
    (Some("-l"), "--op-level", Some("hard")),
    (Some("-b"), "--block-device", Some("/dev/sda")),
    (Some("-p"), "--partition-number", Some("3")),
    (Some("-c"), "--check-destructive-tag", None),
    (Some("-e"), "--env-name", Some("debian12")),
    (Some("-u"), "--env-user", Some("root")),
    (None, "--env-version", Some("2")),
    (Some("-k"), "--key", Some("id.pub")),
    (None, "--vlan", Some("3")),
    (Some("-w"), "--set-pxe-profile", Some("profile")),
    (None, "--set-pxe-pattern", Some("pattern")),
    (Some("-x"), "--upload-pxe-files", Some("a,b")),
    (None, "--reboot-classical-timeout", Some("300")),
    (None, "--secure", None),
    (None, "--no-secure", None),
];

const KAPOWER3: &[Opt] = &[
    (None, "--on", None),
    (None, "--off", None),
    (None, "--status", None),
    (Some("-l"), "--op-level", Some("soft")),
];

const KAENV3: &[Opt] = &[
    (Some("-a"), "--add", Some("env.yml")),
    (Some("-d"), "--delete", Some("debian12")),
    (Some("-l"), "--list", Some("debian%")),
    (
        Some("-m"),
        "--files-to-move",
        Some("http://a/::http://b/,/x::/y"),
    ),
    (Some("-p"), "--print", Some("debian12")),
    (Some("-s"), "--all-versions", None),
    (Some("-t"), "--visibility-tag", Some("shared")),
    (Some("-u"), "--env-user", Some("root")),
    (None, "--env-version", Some("3")),
    (None, "--toggle-destructive-tag", Some("debian12")),
    (None, "--set-visibility-tag", Some("debian12")),
    (None, "--update-image-checksum", Some("debian12")),
    (None, "--update-preinstall-checksum", Some("debian12")),
    (None, "--update-postinstalls-checksum", Some("debian12")),
    (None, "--move-files", None),
    (None, "--secure", None),
    (None, "--no-secure", None),
];

const KASTAT3: &[Opt] = &[
    (Some("-a"), "--all", None),
    (Some("-b"), "--failure-rate", Some("0.5")),
    (Some("-f"), "--file", Some("nodes.txt")),
    (Some("-F"), "--fields", Some("wid,hostname")),
    (Some("-m"), "--machine", Some("node-1")),
    (Some("-o"), "--operation", Some("deploy")),
    (Some("-r"), "--min-retries", Some("2")),
    (Some("-s"), "--retry-steps", Some("1,2")),
    (Some("-w"), "--workflow-id", Some("D-1")),
    (Some("-x"), "--date-min", Some("2013-10-08 12:00:00")),
    (Some("-y"), "--date-max", Some("2013-10-09 12:00:00")),
    (None, "--limit", Some("10")),
    (None, "--sort", Some("start,hostname")),
];

const KANODES3: &[Opt] = &[
    (Some("-s"), "--get-nodes-state", None),
    (Some("-d"), "--get-deployments-status", None),
    (Some("-r"), "--get-reboots-status", None),
    (Some("-p"), "--get-powers-status", None),
    (Some("-c"), "--get-consoles-status", None),
    (Some("-a"), "--get-all-status", None),
    (Some("-w"), "--workflow-id", Some("D-1")),
    (Some("-f"), "--file", Some("nodes.txt")),
    (Some("-m"), "--machine", Some("node-1")),
];

const KACONSOLE3: &[Opt] = &[(Some("-m"), "--machine", Some("node-1"))];

const KARIGHTS3: &[Opt] = &[
    (Some("-a"), "--add", None),
    (Some("-d"), "--delete", None),
    (Some("-f"), "--file", Some("nodes.txt")),
    (Some("-l"), "--list", None),
    (Some("-m"), "--machine", Some("node-1")),
    (Some("-o"), "--overwrite-rights", None),
    (Some("-p"), "--part", Some("/dev/sda3")),
    (Some("-u"), "--user", Some("bob")),
];

/// Every client with its own options (the generic ones, and the workflow ones where they apply, added).
fn clients() -> Vec<(&'static str, Vec<Opt>)> {
    let with = |own: &[Opt], workflow: bool| {
        let mut all = GENERIC.to_vec();
        if workflow {
            all.extend_from_slice(WORKFLOW);
        }
        all.extend_from_slice(own);
        all
    };
    vec![
        ("kadeploy3", with(KADEPLOY3, true)),
        ("kareboot3", with(KAREBOOT3, true)),
        ("kapower3", with(KAPOWER3, true)),
        ("kaenv3", with(KAENV3, false)),
        ("kastat3", with(KASTAT3, false)),
        ("kanodes3", with(KANODES3, false)),
        ("kaconsole3", with(KACONSOLE3, false)),
        ("karights3", with(KARIGHTS3, false)),
    ]
}

/// The ids of the options given on the command line.
fn given(client: &str, args: &[&str]) -> Result<Vec<String>, String> {
    let cmd = command(client).ok_or("unknown client")?;
    let m = cmd
        .try_get_matches_from(std::iter::once(client).chain(args.iter().copied()))
        .map_err(|e| format!("{}", e.kind()))?;
    let mut ids: Vec<String> = m
        .ids()
        .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.to_string())
        .collect();
    ids.sort();
    Ok(ids)
}

#[test]
fn the_kadeploy_option_list_has_220_long_options() {
    let total: usize = clients().iter().map(|(_, opts)| opts.len()).sum();
    assert_eq!(total, 220);
}

#[test]
fn every_kadeploy_option_parses_under_its_short_and_long_names() {
    let mut failures = Vec::new();
    for (client, opts) in clients() {
        for (short, long, value) in opts {
            if long == "--help" {
                for flag in [Some(long), short].into_iter().flatten() {
                    let cmd = command(client).expect("client");
                    let e = cmd.try_get_matches_from([client, flag]).err();
                    if e.map(|e| e.kind()) != Some(clap::error::ErrorKind::DisplayHelp) {
                        failures.push(format!("{client} {flag}: no help"));
                    }
                }
                continue;
            }
            let long_args: Vec<&str> = match value {
                Some(v) => vec![long, v],
                None => vec![long],
            };
            let by_long = match given(client, &long_args) {
                Ok(ids) if !ids.is_empty() => ids,
                Ok(_) => {
                    failures.push(format!("{client} {long}: parsed to nothing"));
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{client} {}: {e}", long_args.join(" ")));
                    continue;
                }
            };
            if let Some(short) = short {
                let short_args: Vec<&str> = match value {
                    Some(v) => vec![short, v],
                    None => vec![short],
                };
                match given(client, &short_args) {
                    Ok(ids) if ids == by_long => {}
                    Ok(ids) => failures.push(format!(
                        "{client} {short} is {ids:?}, {long} is {by_long:?}"
                    )),
                    Err(e) => failures.push(format!("{client} {}: {e}", short_args.join(" "))),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_forms_undo_their_option() {
    for (client, args, flag) in [
        ("kadeploy3", &["--dry-run", "--no-dry-run"][..], "dry_run"),
        ("kapower3", &["--no-wait", "--wait"][..], "no_wait"),
        ("kareboot3", &["--hook", "--no-hook"][..], "hook"),
        ("kadeploy3", &["-d", "--no-debug-mode"][..], "debug"),
        ("kaenv3", &["-H", "--no-debug-http"][..], "debug_http"),
        ("kadeploy3", &["--secure", "--no-secure"][..], "secure"),
    ] {
        let m = command(client)
            .expect("client")
            .try_get_matches_from(std::iter::once(client).chain(args.iter().copied()))
            .expect("parses");
        assert!(!m.get_flag(flag), "{client} {args:?}: {flag} stays set");
    }
}
