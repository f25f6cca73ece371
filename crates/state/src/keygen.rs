//! The cluster key generation of a dealerless cluster, decided through the log.
//!
//! A genesis without a dealt key opens round 0 (see [`genesis_writes`]). Every node deals
//! over the p2p network (`welkin-dkg`), then submits its signed dealer log as a
//! [`welkin_types::membership::MembershipOp::DealerLog`] transaction. This module keeps the logs, one per dealer:
//! 1. A log is refused unless its sender is a member, it is for the current round, it decodes,
//!    and it is signed by its sender as a dealer of the round ([`welkin_dkg::Ledger`] checks
//!    the signature and the round).
//! 2. A second, different log from a dealer is equivocation: the dealer's logs are dropped
//!    and later ones refused, and it deals in no later round. Both signed logs stay in the
//!    audit log as evidence.
//! 3. Once every dealer's log is in, or [`ROUND_MS`] of block time after the round opened
//!    with at least a quorum in, the round is decided: the output (the public polynomial,
//!    whose constant term is the cluster key) is computed from the logs alone, and stored
//!    with the logs it selected ([`GeneratedKey`]). Every node computes its own share from the
//!    same logs.
//! 4. A round that cannot be decided (fewer than a quorum of logs in time, or too few usable
//!    ones) is followed by the next, without the excluded dealers; the reason is kept
//!    ([`Keygen::failures`]).
//!
//! Nothing here ever sees a secret: logs carry commitments, acknowledgements and, for a
//! player that acknowledged nothing, that one dealer's share of that player.
//!
//! ```text
//! Keygen := 0x01 | round u64 | started_ms u64 | excluded u16 (member u32)*
//!         | excluded_at_start u16 (member u32)*
//!         | logs u16 (member u32 | log u32 len bytes)* | failures u16 (str)*
//! GeneratedKey := 0x01 | round u64 | height u64 | output u32 len bytes
//!               | logs u16 (log u32 len bytes)* | excluded u16 (member u32)*
//! ```

use crate::{
    Env, Overlay, Snapshot, keys,
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use std::num::NonZeroU32;
use welkin_dkg::{Ledger, Output, Recorded, Round};
use welkin_types::{Block, ClusterKey, Genesis, PublicKey, Sender, SignedTransaction};

/// Block time a round may take before it is decided with the logs it has, or followed by the
/// next (30 s: dealing takes one round trip, and a log reaches the chain within a block or
/// two).
pub const ROUND_MS: u64 = 30_000;

/// Most failure reasons kept (the latest).
pub const MAX_FAILURES: usize = 8;

const VERSION: u8 = 1;

/// The round of key generation in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keygen {
    /// The round's number.
    pub round: u64,
    /// The block time the round opened at.
    pub started_ms: u64,
    /// Members excluded from dealing, for equivocating: their logs are refused.
    pub excluded: Vec<u32>,
    /// The members excluded when this round opened, who are not its dealers (a round's
    /// dealers are fixed: every log signs them).
    pub excluded_at_start: Vec<u32>,
    /// The round's recorded logs: (dealer's member index, signed log), in the order they came.
    pub logs: Vec<(u32, Vec<u8>)>,
    /// Why earlier rounds gave no key (the latest [`MAX_FAILURES`]).
    pub failures: Vec<String>,
}

impl Keygen {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.round);
        w.u64(self.started_ms);
        write_list(&mut w, &self.excluded, |w, m| w.u32(*m as usize));
        write_list(&mut w, &self.excluded_at_start, |w, m| w.u32(*m as usize));
        write_list(&mut w, &self.logs, |w, (m, log)| {
            w.u32(*m as usize);
            w.u32(log.len());
            w.raw(log);
        });
        write_list(&mut w, &self.failures, |w, f| w.str(f));
        w.0
    }

    /// Decodes the value at [`keys::keygen`].
    pub fn decode(value: &[u8]) -> Result<Self, StoredError> {
        let mut r = Reader::new("key generation", value);
        r.version(VERSION)?;
        let round = r.u64()?;
        let started_ms = r.u64()?;
        let excluded = read_list(&mut r, |r| Ok(r.u32()? as u32))?;
        let excluded_at_start = read_list(&mut r, |r| Ok(r.u32()? as u32))?;
        let logs = read_list(&mut r, |r| {
            let member = r.u32()? as u32;
            let len = r.u32()?;
            Ok((member, r.raw(len)?.to_vec()))
        })?;
        let failures = read_list(&mut r, |r| r.str())?;
        r.end()?;
        Ok(Self {
            round,
            started_ms,
            excluded,
            excluded_at_start,
            logs,
            failures,
        })
    }

    /// The members that deal in this round: every member but those excluded when it opened.
    pub fn dealers(&self, members: &[PublicKey]) -> Vec<PublicKey> {
        members
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.excluded_at_start.contains(&(*i as u32)))
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// This round as `welkin-dkg` runs it, for the cluster `env` describes.
    pub fn round_of(
        &self,
        cluster: &welkin_types::Digest,
        members: &[PublicKey],
    ) -> Result<Round, String> {
        Round::new(
            cluster,
            self.round,
            None,
            self.dealers(members),
            members.to_vec(),
        )
        .map_err(|e| e.to_string())
    }

    fn fail(&mut self, reason: String, now: u64) {
        self.failures
            .push(format!("round {}: {reason}", self.round));
        if self.failures.len() > MAX_FAILURES {
            self.failures.remove(0);
        }
        self.round += 1;
        self.started_ms = now;
        self.logs.clear();
        self.excluded_at_start = self.excluded.clone();
    }
}

/// The key a dealerless cluster generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The round that made it.
    pub round: u64,
    /// The height of the block that decided it.
    pub height: u64,
    /// The round's output (`welkin-dkg`'s encoding): the public polynomial, the selected
    /// dealers, the players and the players whose shares were revealed.
    pub output: Vec<u8>,
    /// The signed logs the output was computed from, in dealer order: with the genesis, they
    /// prove the key (see [`welkin_dkg::check_first_key`]).
    pub logs: Vec<Vec<u8>>,
    /// The members that were not the round's dealers (see [`Keygen::excluded_at_start`]).
    pub excluded: Vec<u32>,
}

impl GeneratedKey {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.round);
        w.u64(self.height);
        w.u32(self.output.len());
        w.raw(&self.output);
        write_list(&mut w, &self.logs, |w, log| {
            w.u32(log.len());
            w.raw(log);
        });
        write_list(&mut w, &self.excluded, |w, m| w.u32(*m as usize));
        w.0
    }

    /// Decodes the value at [`keys::cluster_key`].
    pub fn decode(value: &[u8]) -> Result<Self, StoredError> {
        let mut r = Reader::new("generated cluster key", value);
        r.version(VERSION)?;
        let round = r.u64()?;
        let height = r.u64()?;
        let len = r.u32()?;
        let output = r.raw(len)?.to_vec();
        let logs = read_list(&mut r, |r| {
            let len = r.u32()?;
            Ok(r.raw(len)?.to_vec())
        })?;
        let excluded = read_list(&mut r, |r| Ok(r.u32()? as u32))?;
        r.end()?;
        Ok(Self {
            round,
            height,
            output,
            logs,
            excluded,
        })
    }

    /// The round as it ran: its number and dealers (every member but the excluded).
    pub fn round_of(
        &self,
        cluster: &welkin_types::Digest,
        members: &[PublicKey],
    ) -> Result<Round, String> {
        Keygen {
            round: self.round,
            excluded_at_start: self.excluded.clone(),
            ..Keygen::default()
        }
        .round_of(cluster, members)
    }

    /// The decoded output, for a cluster of `members` nodes.
    pub fn output(&self, members: usize) -> Result<Output, StoredError> {
        welkin_dkg::decode_output(&self.output, max_participants(members))
            .map_err(|e| StoredError::new("generated cluster key", e.to_string()))
    }
}

fn max_participants(members: usize) -> NonZeroU32 {
    NonZeroU32::new(members.max(1) as u32).expect("at least one")
}

/// The write that opens round 0 for a genesis without a dealt key (none for a dealt one).
pub fn genesis_writes(genesis: &Genesis) -> Option<(welkin_types::Digest, Vec<u8>)> {
    genesis.polynomial.is_none().then(|| {
        let keygen = Keygen {
            started_ms: genesis.genesis_time_ms,
            ..Keygen::default()
        };
        (keys::keygen(), keygen.encode())
    })
}

/// The cluster key: dealt at genesis, or generated and recorded in the state; `None` while
/// a dealerless cluster is still generating it.
pub fn cluster_key<S: Snapshot>(env: &Env, state: &Overlay<'_, S>) -> Option<ClusterKey> {
    if let Some(key) = env.cluster_key {
        return Some(key);
    }
    let generated = state.decoded(&keys::cluster_key(), GeneratedKey::decode)?;
    match generated.output(env.members.len()) {
        Ok(output) => Some(*output.public().public()),
        Err(error) => {
            state.corrupt(keys::cluster_key(), error);
            None
        }
    }
}

/// Records a dealer's `log` for `round` ([`welkin_types::membership::MembershipOp::DealerLog`]); `Ok` carries a note
/// for the receipt, `Err` why it was refused.
pub(crate) fn record_log<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    signed: &SignedTransaction,
    (round, log): (&u64, &Vec<u8>),
) -> Result<Option<String>, String> {
    let Sender::Key(sender) = &signed.tx.sender else {
        return Err("a dealer log is sent by the dealer's node key, not an identifier".into());
    };
    let Some(member) = env.members.iter().position(|m| m == sender) else {
        return Err("only a member node deals".into());
    };
    if state.get(&keys::cluster_key()).is_some() || env.cluster_key.is_some() {
        return Err("the cluster key exists already: no round is open".into());
    }
    let Some(mut keygen) = state.decoded(&keys::keygen(), Keygen::decode) else {
        return Err("no key generation is open".into());
    };
    if *round != keygen.round {
        return Err(format!(
            "the log is for round {round}, but round {} is open",
            keygen.round
        ));
    }
    let mut ledger = ledger_of(env, state, &keygen)?;
    let decoded = welkin_dkg::decode_log(log, ledger.round().max_participants())
        .map_err(|e| e.to_string())?;
    let (dealer, recorded) = ledger.record_signed(decoded).map_err(|e| e.to_string())?;
    // The log names its dealer by its signature; the sender must be that dealer, so that
    // nobody spends a member's logs for it.
    if dealer != *sender {
        return Err("the log is signed by another dealer than its sender".into());
    }
    if keygen.excluded.contains(&(member as u32)) {
        return Err("this dealer is excluded for giving two different logs".into());
    }
    let note = match recorded {
        Recorded::Kept => {
            keygen.logs.push((member as u32, log.clone()));
            None
        }
        Recorded::Duplicate => Some("this log is recorded already".to_string()),
        Recorded::Excluded => {
            return Err("this dealer is excluded for giving two different logs".into());
        }
        Recorded::Equivocation(_) => {
            let index = member as u32;
            keygen.logs.retain(|(i, _)| *i != index);
            keygen.excluded.push(index);
            Some(format!(
                "member {index} gave two different logs in round {round}: it is excluded from \
                 dealing (both logs are in the audit log)"
            ))
        }
    };
    // Every dealer that can still give a log has given it.
    let expected = keygen
        .dealers(&env.members)
        .iter()
        .filter(|d| {
            let index = env.members.iter().position(|m| m == *d).unwrap_or(0) as u32;
            !keygen.excluded.contains(&index)
        })
        .count();
    let complete = keygen.logs.len() == expected;
    if complete {
        decide(env, state, block, keygen);
    } else {
        state.put(keys::keygen(), keygen.encode());
    }
    Ok(note)
}

/// Decides the open round once its time is up (see the module docs). Runs before every
/// block's transactions.
pub(crate) fn sweep<S: Snapshot>(env: &Env, state: &mut Overlay<'_, S>, block: &Block) {
    let Some(keygen) = state.decoded(&keys::keygen(), Keygen::decode) else {
        return;
    };
    if block.timestamp_ms < keygen.started_ms.saturating_add(ROUND_MS) {
        return;
    }
    decide(env, state, block, keygen);
}

/// The round's ledger, rebuilt from the stored logs (each was checked when it was recorded).
fn ledger_of<S: Snapshot>(
    env: &Env,
    state: &Overlay<'_, S>,
    keygen: &Keygen,
) -> Result<Ledger, String> {
    let round = keygen.round_of(&env.cluster_id, &env.members)?;
    let mut ledger = Ledger::new(round);
    for (_, bytes) in &keygen.logs {
        let recorded = welkin_dkg::decode_log(bytes, ledger.round().max_participants())
            .and_then(|log| ledger.record(log));
        if !matches!(recorded, Ok(Recorded::Kept)) {
            state.corrupt(
                keys::keygen(),
                StoredError::new("key generation", "a recorded log no longer checks"),
            );
            return Err("the recorded logs are corrupt".into());
        }
    }
    Ok(ledger)
}

/// Computes the round's output from its logs and records the key, or moves to the next
/// round saying why there is none.
fn decide<S: Snapshot>(env: &Env, state: &mut Overlay<'_, S>, block: &Block, mut keygen: Keygen) {
    let now = block.timestamp_ms;
    let needed = welkin_types::genesis::quorum(env.members.len());
    if keygen.logs.len() < needed {
        let have = keygen.logs.len();
        keygen.fail(
            format!("{have} of the {needed} dealer logs a key needs arrived in time"),
            now,
        );
        state.put(keys::keygen(), keygen.encode());
        return;
    }
    let result = ledger_of(env, state, &keygen)
        .and_then(|ledger| ledger.agreed_selection().map_err(|e| e.to_string()));
    match result {
        Ok((output, logs)) => {
            use commonware_codec::Encode as _;
            let key = GeneratedKey {
                round: keygen.round,
                height: block.height,
                output: output.encode().to_vec(),
                logs,
                excluded: keygen.excluded_at_start.clone(),
            };
            state.put(keys::cluster_key(), key.encode());
            state.delete(keys::keygen());
        }
        Err(reason) => {
            keygen.fail(reason, now);
            state.put(keys::keygen(), keygen.encode());
        }
    }
}

#[cfg(test)]
mod tests;
