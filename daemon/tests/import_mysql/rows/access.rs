//! The generated rights, node states and statistics rows (the second half of [`Generated`]).

use super::*;

impl Generated {
    pub(super) fn rights(&mut self) {
        let rows = [
            ("root", "*", "*"),
            ("alice", "node-1", "/dev/sda3"),
            ("alice", "node-1", "/dev/sda5"),
            ("alice", "node-2", "/dev/sda3"),
            ("bob", "*", "/dev/sda3"),
            ("carol", "node-7", "*"),
            ("alice", "node-1", "/dev/sda3"),
            ("", "node-3", "*"),
        ];
        for (user, node, part) in rows {
            let node = if node == "*" {
                node.to_string()
            } else {
                format!("{node}.{DOMAIN}")
            };
            self.sql.push_str(&format!(
                "INSERT INTO rights (user, node, part) VALUES ({}, {}, {});\n",
                q(Some(user)),
                q(Some(&node)),
                q(Some(part))
            ));
        }
        let line = |u: &str, n: &str, p: &[&str]| {
            (
                u.to_string(),
                n.to_string(),
                p.iter().map(|s| s.to_string()).collect(),
            )
        };
        self.rights = vec![
            line("alice", &host(1), &["/dev/sda3", "/dev/sda5"]),
            line("alice", &host(2), &["/dev/sda3"]),
            line("bob", "*", &["/dev/sda3"]),
            line("carol", &host(7), &["*"]),
            line("root", "*", &["*"]),
        ];
        self.skipped
            .push(("rights", "user=\"\" node=".into(), "the user is empty"));
        self.counts.insert("rights", [8, 6, 1, 1, 0]);
    }

    fn env_ref(&self, id: u32) -> Value {
        let e = self
            .envs
            .iter()
            .find(|e| e.id == id)
            .expect("generated env");
        json!({"name": e.name, "version": e.version, "user": e.user})
    }

    pub(super) fn nodes(&mut self) {
        let (a, b, c) = (self.envs[0].id, self.envs[4].id, self.envs[39].id);
        let null = json!({"name": null, "version": null, "user": null});
        // The duplicate environment 906 has the key of self.envs[1]: nodes on it show that one.
        let dup_target = self.envs[1].id;
        let rows: [(u32, &str, i64, i64, &str); 9] = [
            (1, "deployed", i64::from(a), 1_700_000_100, "alice"),
            (1, "deploy_failed", i64::from(b), 1_700_000_000, "bob"),
            (2, "deploy_failed", i64::from(b), 1_700_000_200, "bob"),
            (3, "deploying", -1, 1_700_000_300, "root"),
            (4, "aborted", i64::from(a), 1_700_000_400, "alice"),
            (5, "rebooted", 906, 1_700_000_500, "bob"),
            (6, "deployed", 9999, 1_700_000_600, "alice"),
            (7, "recorded_env", i64::from(c), 1_700_000_700, "carol"),
            (8, "deploy_env", -1, 1_700_000_800, "root"),
        ];
        for (n, state, env, date, user) in rows {
            self.sql.push_str(&format!(
                "INSERT INTO nodes (hostname, state, env_id, date, user) VALUES ({}, {}, {env}, {date}, {});\n",
                q(Some(&host(n))),
                q(Some(state)),
                q(Some(user))
            ));
        }
        for (n, state, env, _, user) in rows
            .iter()
            .filter(|r| !(r.0 == 1 && r.1 == "deploy_failed"))
        {
            let environment = match *env {
                -1 | 9999 => null.clone(),
                906 => self.env_ref(dup_target),
                id => self.env_ref(id as u32),
            };
            self.nodes.insert(
                host(*n),
                json!({"state": state, "user": user, "environment": environment}),
            );
        }
        self.skipped.push((
            "nodes",
            format!("hostname=\"{}\" date=1700000000", host(1)),
            "is more recent and was imported",
        ));
        self.altered.push((
            "nodes",
            format!("hostname=\"{}\"", host(6)),
            "env_id 9999 is not an imported environment",
        ));
        self.counts.insert("nodes", [9, 8, 0, 1, 1]);
    }

    pub(super) fn log(&mut self) {
        let mut rng = Lcg(42);
        let mut rows: Vec<[String; 21]> = Vec::new();
        for w in 0..18u64 {
            let op = match w % 6 {
                4 => 'R',
                5 => 'P',
                _ => 'D',
            };
            let wid = format!(
                "{op}-{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                rng.next(1 << 32),
                rng.next(1 << 16),
                rng.next(1 << 12),
                rng.next(1 << 12),
                rng.next(1 << 40)
            );
            let user = USERS[(w % 3) as usize];
            let start = 1_400_000_000 + w * 86_400;
            let anonymous = w % 7 == 3;
            let count = 1 + rng.next(5);
            for k in 0..count {
                let node = host((1 + (w + k * 3) % 10) as u32);
                let ok = rng.next(10) < 7;
                let steps: [&str; 3] = match op {
                    'D' => [
                        ["SetDeploymentEnvUntrusted", "SetDeploymentEnvKexec"][(w % 2) as usize],
                        ["BroadcastEnvKascade", "BroadcastEnvChain"][(k % 2) as usize],
                        ["BootNewEnvKexec", "BootNewEnvClassical"][(w % 2) as usize],
                    ],
                    'R' => [
                        ["Simple", "SetPXE", "DeployEnv", "RecordedEnv"][(w % 4) as usize],
                        "",
                        "",
                    ],
                    _ => [["On", "Off", "Status"][(k % 3) as usize], "", ""],
                };
                let timeouts = if op == 'D' {
                    [200, 400, 300]
                } else {
                    [0, 0, 0]
                };
                let retries = [rng.next(3) as i64, rng.next(2) as i64, 0];
                let durations = [rng.next(300), rng.next(200), rng.next(100)];
                let env = if op == 'D' && !anonymous {
                    format!("env-{}:1", KINDS[(w % 9) as usize])
                } else {
                    String::new()
                };
                let error = match (ok, k % 2) {
                    (true, _) => String::new(),
                    (false, 0) => {
                        "BroadcastEnvKascade-send_environment: Timeout, the node did not answer"
                            .into()
                    }
                    (false, _) => format!("{}-reboot: the node {node} is unreachable", steps[0]),
                };
                rows.push([
                    wid.clone(),
                    node,
                    steps[0].into(),
                    steps[1].into(),
                    steps[2].into(),
                    timeouts[0].to_string(),
                    timeouts[1].to_string(),
                    timeouts[2].to_string(),
                    retries[0].to_string(),
                    retries[1].to_string(),
                    retries[2].to_string(),
                    start.to_string(),
                    durations[0].to_string(),
                    durations[1].to_string(),
                    durations[2].to_string(),
                    env,
                    (if anonymous && op == 'D' {
                        "true"
                    } else {
                        "false"
                    })
                    .into(),
                    (if w == 0 {
                        "0123456789abcdef0123456789abcdef"
                    } else {
                        ""
                    })
                    .into(),
                    (if ok { "true" } else { "false" }).into(),
                    error,
                    user.into(),
                ]);
            }
        }
        // Two identical rows are kept as two rows, as Kadeploy 3.3 counted them.
        rows.push(rows[3].clone());
        let good = rows.len() as u64;
        let mut bad_success = rows[0].clone();
        bad_success[18] = "maybe".into();
        let mut bad_anonymous = rows[1].clone();
        bad_anonymous[16] = String::new();
        for table_row in rows.iter().chain([&bad_success, &bad_anonymous]) {
            let values: Vec<String> = table_row
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if (5..=14).contains(&i) {
                        v.clone()
                    } else {
                        q(Some(v))
                    }
                })
                .collect();
            self.sql.push_str(&format!(
                "INSERT INTO log (wid, hostname, step1, step2, step3, timeout_step1, timeout_step2, timeout_step3, \
                 retry_step1, retry_step2, retry_step3, start, step1_duration, step2_duration, step3_duration, env, \
                 anonymous_env, md5, success, error, user) VALUES ({});\n",
                values.join(", ")
            ));
        }
        self.skipped.push((
            "log",
            format!("wid={:?} hostname={:?}", bad_success[0], bad_success[1]),
            "success \"maybe\"",
        ));
        self.skipped.push((
            "log",
            format!("wid={:?} hostname={:?}", bad_anonymous[0], bad_anonymous[1]),
            "anonymous_env \"\"",
        ));
        for r in &rows {
            // kastat3's field order: wid, user, hostname, steps, timeouts, retries, start, durations, env, md5,
            // success, error.
            let fields: Vec<&str> = [
                0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19,
            ]
            .iter()
            .map(|&i| r[i].as_str())
            .collect();
            self.log_lines.push(fields.join(","));
            let retries = [8, 9, 10].map(|i| r[i].parse::<i64>().unwrap_or(0));
            self.log_rows
                .push((r[0].clone(), r[1].clone(), r[18] == "true", retries));
        }
        self.counts.insert("log", [good + 2, good, 0, 2, 0]);
    }
}
