//! The supervisor of `welkin dev`: keeps a local cluster running through node faults.
//!
//! A cluster of n = 3f+1 nodes commits while a quorum of 2f+1 is up. When a node exits on its
//! own (a crash, `kill -9`), the supervisor says which one, how many are still up and whether
//! that is a quorum, and restarts it after a backoff (1 s, doubling to 30 s; reset once a node
//! has run for a minute), unless `--no-restart` asks it to leave crashed nodes down. A node
//! stopped through the control socket (`welkin dev stop`) stays down until `welkin dev start`.
//! When the supervisor stops (Ctrl-C, SIGTERM, SIGHUP, or an error), it stops every node.

use super::{
    cluster::{LocalCluster, Processes, STOP_GRACE, log_tail, terminate},
    control::{Call, Reply, Request},
};
use std::{
    net::SocketAddr,
    process::{Child, ExitStatus},
    time::{Duration, Instant},
};
use tokio::sync::mpsc;

/// How often node processes are checked.
const TICK: Duration = Duration::from_millis(250);
/// The first restart delay; it doubles with each quick failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest restart delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A node that ran this long before failing starts its backoff afresh.
const STABLE_UPTIME: Duration = Duration::from_secs(60);
/// How often a restarted node's health endpoint is asked whether it is back.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long one health probe may take (the loop waits for it).
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

enum State {
    /// Running. `back` is false until a restarted node's API answers.
    Up {
        child: Child,
        since: Instant,
        back: bool,
        probed: Instant,
    },
    /// Exited on its own; restarted at `restart_at`, or left down if `None`.
    Crashed { restart_at: Option<Instant> },
    /// Stopped by `welkin dev stop`; down until `welkin dev start`.
    Stopped,
}

struct Node {
    name: String,
    api: SocketAddr,
    state: State,
    /// Failures since the node last ran for [`STABLE_UPTIME`]: sets the backoff.
    failures: u32,
}

/// The running cluster and what to do when a node fails.
pub(super) struct Supervisor {
    cluster: LocalCluster,
    nodes: Vec<Node>,
    restart: bool,
}

impl Supervisor {
    /// Takes over the started nodes of `cluster`.
    pub(super) fn new(cluster: LocalCluster, processes: Processes, restart: bool) -> Self {
        let mut children = processes.into_children();
        let now = Instant::now();
        let mut listed: Vec<_> = cluster.genesis.nodes.iter().collect();
        listed.sort_by_key(|info| info.api_address.port());
        let nodes = listed
            .into_iter()
            .map(|info| {
                let at = children
                    .iter()
                    .position(|(name, _)| name == &info.name)
                    .expect("one process per genesis node");
                let (name, child) = children.swap_remove(at);
                Node {
                    name,
                    api: info.api_address,
                    state: State::Up {
                        child,
                        since: now,
                        back: true,
                        probed: now,
                    },
                    failures: 0,
                }
            })
            .collect();
        Self {
            cluster,
            nodes,
            restart,
        }
    }

    /// Supervises until a stop signal, answering the calls that arrive on `calls`.
    pub(super) async fn run(&mut self, mut calls: mpsc::Receiver<Call>) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = terminate.recv() => return Ok(()),
                _ = hangup.recv() => return Ok(()),
                Some(call) = calls.recv() => {
                    let reply = self.handle(call.request).await;
                    let _ = call.reply.send(reply);
                }
                _ = tick.tick() => self.tick(),
            }
        }
    }

    /// Notices exits, restarts nodes whose backoff is over, and announces restarted nodes
    /// once they answer.
    fn tick(&mut self) {
        enum Due {
            Exited(ExitStatus, Duration),
            Probe,
            Restart,
            Nothing,
        }
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            let due = match &mut self.nodes[i].state {
                State::Up { child, since, .. } => match child.try_wait() {
                    Ok(Some(status)) => Due::Exited(status, since.elapsed()),
                    _ => Due::Probe,
                },
                State::Crashed {
                    restart_at: Some(at),
                } if now >= *at => Due::Restart,
                _ => Due::Nothing,
            };
            match due {
                Due::Exited(status, ran) => self.crashed(i, status, ran),
                Due::Probe => self.probe(i, now),
                Due::Restart => self.restart(i),
                Due::Nothing => {}
            }
        }
    }

    fn crashed(&mut self, i: usize, status: ExitStatus, ran: Duration) {
        let restart = self.restart;
        let node = &mut self.nodes[i];
        node.failures = if ran >= STABLE_UPTIME {
            1
        } else {
            node.failures.saturating_add(1)
        };
        let log = self.cluster.dir.join(&node.name).join("node.log");
        println!(
            "{} is down: it exited ({status}) after {}",
            node.name,
            human(ran)
        );
        if status.code().is_some_and(|code| code != 0) {
            println!("{}", log_tail(&log));
        } else {
            println!("  its log: {}", log.display());
        }
        let name = node.name.clone();
        if restart {
            let delay = backoff(node.failures);
            node.state = State::Crashed {
                restart_at: Some(Instant::now() + delay),
            };
            println!("{}", self.quorum());
            println!(
                "restarting {name} in {} (attempt {}); `welkin dev stop {name}` keeps it down",
                human(delay),
                self.nodes[i].failures
            );
        } else {
            node.state = State::Crashed { restart_at: None };
            println!("{}", self.quorum());
            println!("{name} stays down (--no-restart); `welkin dev start {name}` starts it");
        }
    }

    fn restart(&mut self, i: usize) {
        let name = self.nodes[i].name.clone();
        match self.start(i) {
            Ok(pid) => println!(
                "restarted {name} (pid {pid}); it catches up from its data directory and its peers"
            ),
            Err(error) => {
                let node = &mut self.nodes[i];
                node.failures = node.failures.saturating_add(1);
                let delay = backoff(node.failures);
                node.state = State::Crashed {
                    restart_at: Some(Instant::now() + delay),
                };
                println!(
                    "cannot restart {name}: {error:#}; trying again in {}",
                    human(delay)
                );
            }
        }
    }

    /// Starts node `i`'s process; returns its pid.
    fn start(&mut self, i: usize) -> anyhow::Result<u32> {
        let child = self.cluster.node_command(&self.nodes[i].name)?.spawn()?;
        let pid = child.id();
        let now = Instant::now();
        self.nodes[i].state = State::Up {
            child,
            since: now,
            back: false,
            probed: now,
        };
        Ok(pid)
    }

    /// Asks a (re)started node's health endpoint whether it is back, once per second.
    fn probe(&mut self, i: usize, now: Instant) {
        let node = &mut self.nodes[i];
        let State::Up { back, probed, .. } = &mut node.state else {
            return;
        };
        if *back || now.duration_since(*probed) < PROBE_EVERY {
            return;
        }
        *probed = now;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(PROBE_TIMEOUT))
            .build()
            .into();
        if agent
            .get(&format!("http://{}/v1/health", node.api))
            .call()
            .is_ok()
        {
            *back = true;
            let line = format!(
                "{} is back: its API answers at http://{}",
                node.name, node.api
            );
            println!("{line}");
            println!("{}", self.quorum());
        }
    }

    async fn handle(&mut self, request: Request) -> Reply {
        match request {
            Request::Status => Ok(self.status()),
            Request::Stop { node, kill } => self.stop(&node, kill).await,
            Request::Start { node } => {
                let i = self.find(&node)?;
                if let State::Up { child, .. } = &self.nodes[i].state {
                    return Err(format!("{node} is already running (pid {})", child.id()));
                }
                self.nodes[i].failures = 0;
                let pid = self
                    .start(i)
                    .map_err(|e| format!("cannot start {node}: {e:#}"))?;
                let text = format!(
                    "started {node} (pid {pid}); it catches up from its data directory and its \
                     peers"
                );
                println!("{text} (welkin dev start)");
                Ok(text)
            }
        }
    }

    async fn stop(&mut self, name: &str, kill: bool) -> Reply {
        let i = self.find(name)?;
        match std::mem::replace(&mut self.nodes[i].state, State::Stopped) {
            State::Stopped => Err(format!("{name} is already stopped")),
            State::Crashed { .. } => Ok(format!(
                "{name} was already down; it stays down until `welkin dev start {name}`"
            )),
            State::Up { mut child, .. } => {
                let pid = child.id();
                if kill {
                    let _ = child.kill();
                } else {
                    terminate(&child);
                    let deadline = Instant::now() + STOP_GRACE;
                    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let _ = child.kill();
                }
                let status = child
                    .wait()
                    .map_or_else(|e| format!("wait failed: {e}"), |s| s.to_string());
                self.nodes[i].failures = 0;
                let how = if kill { "killed" } else { "stopped" };
                let text = format!(
                    "{how} {name} (pid {pid}, {status}); it stays down until `welkin dev start \
                     {name}`\n{}",
                    self.quorum()
                );
                println!("{text}");
                Ok(text)
            }
        }
    }

    fn find(&self, name: &str) -> Result<usize, String> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| {
                let names: Vec<_> = self.nodes.iter().map(|n| n.name.as_str()).collect();
                format!("no node named {name:?} (nodes: {})", names.join(", "))
            })
    }

    fn status(&self) -> String {
        let now = Instant::now();
        let mut lines: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                let state = match &node.state {
                    State::Up {
                        child, since, back, ..
                    } => format!(
                        "up       pid {:<7} for {}{}",
                        child.id(),
                        human(since.elapsed()),
                        if *back { "" } else { ", starting" }
                    ),
                    State::Crashed {
                        restart_at: Some(at),
                    } => format!(
                        "down     crashed; restarting in {}",
                        human(at.saturating_duration_since(now))
                    ),
                    State::Crashed { restart_at: None } => {
                        "down     crashed; left down (--no-restart)".into()
                    }
                    State::Stopped => "stopped  by `welkin dev stop`".into(),
                };
                format!("{:<8} http://{:<21} {state}", node.name, node.api)
            })
            .collect();
        lines.push(self.quorum());
        lines.join("\n")
    }

    /// How many nodes are up, and whether that is enough to commit.
    fn quorum(&self) -> String {
        let n = self.nodes.len();
        let up = self
            .nodes
            .iter()
            .filter(|node| matches!(node.state, State::Up { .. }))
            .count();
        let quorum = welkin_types::genesis::quorum(n);
        if up >= quorum {
            format!(
                "{up} of {n} nodes up: the cluster keeps serving (it commits while {quorum} are up)"
            )
        } else {
            format!(
                "{up} of {n} nodes up: below the quorum of {quorum}, the cluster cannot commit \
                 until {} more {}; nothing committed is lost",
                quorum - up,
                if quorum - up == 1 {
                    "node returns"
                } else {
                    "nodes return"
                }
            )
        }
    }
}

impl Drop for Supervisor {
    /// Stops every running node, whatever ended the supervision.
    fn drop(&mut self) {
        let mut children = Vec::new();
        for node in &mut self.nodes {
            if let State::Up { child, .. } = std::mem::replace(&mut node.state, State::Stopped) {
                children.push((node.name.clone(), child));
            }
        }
        Processes::new(children, self.cluster.dir.clone()).stop();
    }
}

/// The delay before restart attempt `failures` (1-based): 1 s, doubling, at most 30 s.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// A duration as people read it: `850ms`, `42s`, `5m03s`, `2h05m`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty() {
        let delays: Vec<u64> = (1..=8).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(0), FIRST_BACKOFF);
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(303)), "5m03s");
        assert_eq!(human(Duration::from_secs(7500)), "2h05m");
    }
}
