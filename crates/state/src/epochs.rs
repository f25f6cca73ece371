//! Epochs: the members change only at epoch boundaries, after the outgoing members have
//! reshared the cluster key to the incoming ones.
//!
//! An epoch is a fixed number of blocks, `epoch_blocks` in the genesis's membership policy
//! (a cluster without one has one epoch for ever). Epoch `e` holds heights
//! `e * epoch_blocks .. (e + 1) * epoch_blocks`; consensus runs one engine per epoch over
//! that epoch's members, and the last block of an epoch is the first engine's last.
//!
//! 1. **Opening.** Once the cluster key exists and joins or leaves are waiting
//!    ([`crate::membership::Changes`]), a resharing round opens: its dealers are the current
//!    members, its players the members after the changes (leavers out, admitted nodes in).
//!    The round reshares the output that holds the current shares, so the cluster key (its
//!    constant term) stays the same. The changes it carries are fixed when it opens; later
//!    ones wait for the next round.
//! 2. **Logs.** Each dealer deals over the p2p network with its current share and submits its
//!    signed log ([`welkin_types::membership::MembershipOp::DealerLog`] with the round's
//!    number). A log is kept as in key generation (see [`crate::keygen`]): from a dealer of
//!    the round, signed by its sender, once; a second, different log excludes the dealer.
//! 3. **Boundary.** At the last block of the epoch the round is decided from its logs. If a
//!    quorum of dealers gave usable logs, the new output is recorded as the current key
//!    ([`keys::epoch_key`]) with the logs it was computed from, the roster and the retired
//!    list change, and the next epoch's members are the round's players. If not, the round
//!    carries on into the next epoch when it opened less than half an epoch ago (it had no
//!    time); otherwise it fails, its reason is kept ([`EpochState::failures`]), the members
//!    stay as they were, and a new round opens for the waiting changes.
//!
//! Nothing here sees a secret, as in key generation. A node that left holds a share of an
//! output nobody uses any more: shares of different rounds do not combine.
//!
//! ```text
//! EpochState := 0x01 | epoch u64 | start_height u64 | last_round u64
//!             | joined u16 (registration u16 len bytes | signature [64])*
//!             | retired u16 (position u32)* | reshare u8 (0 | 1 Reshare)
//!             | failures u16 (str)*
//! Reshare    := round u64 | opened_height u64 | dealers u16 (position u32)*
//!             | players u16 ([32])* | joins u16 ([32])* | leaves u16 (position u32)*
//!             | logs u16 (position u32 | log u32 len bytes)* | excluded u16 (position u32)*
//! ```

use crate::{
    Env, Overlay, Snapshot,
    keygen::GeneratedKey,
    keys,
    membership::{Changes, JoinRequest},
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use commonware_codec::Encode as _;
use welkin_dkg::{Ledger, Output, Recorded, Round};
use welkin_types::{
    Block, Digest, NodeInfo, PublicKey, Sender, Signature, SignedTransaction,
    genesis::NodeRegistration,
};

/// Most failure reasons kept (the latest).
pub const MAX_FAILURES: usize = 8;

const VERSION: u8 = 1;

/// Where the epochs stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochState {
    /// The current epoch.
    pub epoch: u64,
    /// Its first height.
    pub start_height: u64,
    /// The last key round used (the first key's, then each resharing's): a new round takes
    /// the next number.
    pub last_round: u64,
    /// The nodes admitted since genesis, in roster order after the genesis nodes.
    pub joined: Vec<NodeInfo>,
    /// Roster positions of the nodes no longer members, sorted.
    pub retired: Vec<u32>,
    /// The resharing round in progress, if any.
    pub reshare: Option<Reshare>,
    /// Why earlier resharings gave no new epoch (the latest [`MAX_FAILURES`]).
    pub failures: Vec<String>,
}

/// A resharing round in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reshare {
    /// The round's number.
    pub round: u64,
    /// The height of the block that opened it.
    pub opened_height: u64,
    /// Its dealers: the members when it opened, by roster position.
    pub dealers: Vec<u32>,
    /// Its players, sorted: the members the round makes.
    pub players: Vec<PublicKey>,
    /// The admitted join requests it carries out.
    pub joins: Vec<Digest>,
    /// The leaves it carries out, by roster position.
    pub leaves: Vec<u32>,
    /// Its recorded logs: (dealer's roster position, signed log), in the order they came.
    pub logs: Vec<(u32, Vec<u8>)>,
    /// Dealers excluded for giving two different logs.
    pub excluded: Vec<u32>,
}

fn write_registration(w: &mut Writer, node: &NodeInfo) {
    let message = node.registration().message();
    w.u16(message.len());
    w.raw(&message);
    w.raw(&node.signature.encode());
}

fn read_registration(r: &mut Reader<'_>) -> Result<NodeInfo, StoredError> {
    let len = r.u16()?;
    let registration = NodeRegistration::from_message(r.raw(len)?)
        .map_err(|e| r.error(format!("registration: {e}")))?;
    let signature = welkin_types::decode::<Signature>(r.raw(64)?)
        .map_err(|e| r.error(format!("signature: {e}")))?;
    Ok(registration.with_signature(signature))
}

fn write_positions(w: &mut Writer, positions: &[u32]) {
    write_list(w, positions, |w, p| w.u32(*p as usize));
}

fn read_positions(r: &mut Reader<'_>) -> Result<Vec<u32>, StoredError> {
    read_list(r, |r| Ok(r.u32()? as u32))
}

impl EpochState {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.epoch);
        w.u64(self.start_height);
        w.u64(self.last_round);
        write_list(&mut w, &self.joined, write_registration);
        write_positions(&mut w, &self.retired);
        match &self.reshare {
            None => w.u8(0),
            Some(reshare) => {
                w.u8(1);
                w.u64(reshare.round);
                w.u64(reshare.opened_height);
                write_positions(&mut w, &reshare.dealers);
                write_list(&mut w, &reshare.players, |w, p| w.raw(&p.encode()));
                write_list(&mut w, &reshare.joins, |w, id| w.raw(id.as_ref()));
                write_positions(&mut w, &reshare.leaves);
                write_list(&mut w, &reshare.logs, |w, (dealer, log)| {
                    w.u32(*dealer as usize);
                    w.u32(log.len());
                    w.raw(log);
                });
                write_positions(&mut w, &reshare.excluded);
            }
        }
        write_list(&mut w, &self.failures, |w, f| w.str(f));
        w.0
    }

    /// Decodes the value at [`keys::epoch`].
    pub fn decode(value: &[u8]) -> Result<Self, StoredError> {
        let mut r = Reader::new("epoch state", value);
        r.version(VERSION)?;
        let epoch = r.u64()?;
        let start_height = r.u64()?;
        let last_round = r.u64()?;
        let joined = read_list(&mut r, read_registration)?;
        let retired = read_positions(&mut r)?;
        let reshare = match r.u8()? {
            0 => None,
            1 => Some(Reshare {
                round: r.u64()?,
                opened_height: r.u64()?,
                dealers: read_positions(&mut r)?,
                players: read_list(&mut r, |r| {
                    welkin_types::decode::<PublicKey>(r.raw(32)?)
                        .map_err(|e| r.error(format!("player: {e}")))
                })?,
                joins: read_list(&mut r, |r| Ok(Digest::from(r.bytes32()?)))?,
                leaves: read_positions(&mut r)?,
                logs: read_list(&mut r, |r| {
                    let dealer = r.u32()? as u32;
                    let len = r.u32()?;
                    Ok((dealer, r.raw(len)?.to_vec()))
                })?,
                excluded: read_positions(&mut r)?,
            }),
            other => return Err(r.error(format!("reshare flag {other}"))),
        };
        let failures = read_list(&mut r, |r| r.str())?;
        r.end()?;
        Ok(Self {
            epoch,
            start_height,
            last_round,
            joined,
            retired,
            reshare,
            failures,
        })
    }

    fn fail(&mut self, reason: String) {
        self.failures.push(reason);
        if self.failures.len() > MAX_FAILURES {
            self.failures.remove(0);
        }
    }
}

impl Reshare {
    /// The round as `welkin-dkg` runs it: `previous` is the output being reshared, `env` the
    /// cluster's (the round's dealers are its members).
    pub fn round_of(&self, env: &Env, previous: Output) -> Result<Round, String> {
        self.round_with(&env.cluster_id, &env.members, previous)
    }

    /// The round as `welkin-dkg` runs it, for cluster `cluster_id` whose roster (genesis
    /// nodes, then joined ones) is `roster`.
    pub fn round_with(
        &self,
        cluster_id: &Digest,
        roster: &[PublicKey],
        previous: Output,
    ) -> Result<Round, String> {
        let dealers = self
            .dealers
            .iter()
            .map(|&p| {
                roster
                    .get(p as usize)
                    .cloned()
                    .ok_or_else(|| format!("dealer position {p} is not on the roster"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Round::new(
            cluster_id,
            self.round,
            Some(previous),
            dealers,
            self.players.clone(),
        )
        .map_err(|e| e.to_string())
    }
}

/// The epoch state (epoch 0 with the genesis members while nothing was stored).
pub fn epoch_state<S: Snapshot>(state: &Overlay<'_, S>) -> EpochState {
    state
        .decoded(&keys::epoch(), EpochState::decode)
        .unwrap_or_default()
}

/// The environment of the epoch `epochs` describes, from the genesis environment `genesis`:
/// the roster grows by the nodes that joined, and the threshold follows the members.
pub fn env_at(genesis: &Env, epochs: &EpochState) -> Env {
    let mut env = genesis.clone();
    for node in &epochs.joined {
        env.members.push(node.public_key.clone());
        env.domains.push(node.failure_domain.clone());
    }
    env.retired = epochs.retired.clone();
    env.threshold =
        u16::try_from(welkin_types::genesis::quorum(env.active_count())).unwrap_or(u16::MAX);
    env
}

/// The key output that holds the current shares: the last resharing's, or the first key's.
/// `None` before a dealerless cluster has its key, and for a dealt key.
pub fn current_key<S: Snapshot>(state: &Overlay<'_, S>) -> Option<GeneratedKey> {
    state
        .decoded(&keys::epoch_key(), GeneratedKey::decode)
        .or_else(|| state.decoded(&keys::cluster_key(), GeneratedKey::decode))
}

/// The open resharing round's number, if one is open.
pub(crate) fn open_round<S: Snapshot>(state: &Overlay<'_, S>) -> Option<u64> {
    epoch_state(state).reshare.map(|r| r.round)
}

fn previous_output<S: Snapshot>(env: &Env, state: &Overlay<'_, S>) -> Result<Output, String> {
    let key = current_key(state).ok_or("the cluster key does not exist yet")?;
    key.output(env.members.len().max(env.active_count()))
        .map_err(|e| e.to_string())
}

fn ledger_of<S: Snapshot>(
    env: &Env,
    state: &Overlay<'_, S>,
    reshare: &Reshare,
) -> Result<Ledger, String> {
    let round = reshare.round_of(env, previous_output(env, state)?)?;
    let mut ledger = Ledger::new(round);
    for (_, bytes) in &reshare.logs {
        let recorded = welkin_dkg::decode_log(bytes, ledger.round().max_participants())
            .and_then(|log| ledger.record(log));
        if !matches!(recorded, Ok(Recorded::Kept)) {
            state.corrupt(
                keys::epoch(),
                StoredError::new("epoch state", "a recorded resharing log no longer checks"),
            );
            return Err("the recorded logs are corrupt".into());
        }
    }
    Ok(ledger)
}

/// Records a dealer's log for the open resharing round (see the module docs).
pub(crate) fn record_log<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    signed: &SignedTransaction,
    (round, log): (&u64, &Vec<u8>),
) -> Result<Option<String>, String> {
    let Sender::Key(sender) = &signed.tx.sender else {
        return Err("a dealer log is sent by the dealer's node key, not an identifier".into());
    };
    let mut epochs = epoch_state(state);
    let Some(mut reshare) = epochs.reshare.take() else {
        return Err("no resharing is open".into());
    };
    if *round != reshare.round {
        return Err(format!(
            "the log is for round {round}, but resharing round {} is open",
            reshare.round
        ));
    }
    let Some(position) = env.member_position(sender) else {
        return Err("only a member deals in a resharing".into());
    };
    if !reshare.dealers.contains(&position) {
        return Err(format!(
            "member {position} is not a dealer of round {round}"
        ));
    }
    if reshare.excluded.contains(&position) {
        return Err("this dealer is excluded for giving two different logs".into());
    }
    let mut ledger = ledger_of(env, state, &reshare)?;
    let decoded = welkin_dkg::decode_log(log, ledger.round().max_participants())
        .map_err(|e| e.to_string())?;
    let (dealer, recorded) = ledger.record_signed(decoded).map_err(|e| e.to_string())?;
    if dealer != *sender {
        return Err("the log is signed by another dealer than its sender".into());
    }
    let note = match recorded {
        Recorded::Kept => {
            reshare.logs.push((position, log.clone()));
            None
        }
        Recorded::Duplicate => Some("this log is recorded already".to_string()),
        Recorded::Excluded => {
            return Err("this dealer is excluded for giving two different logs".into());
        }
        Recorded::Equivocation(_) => {
            reshare.logs.retain(|(p, _)| *p != position);
            reshare.excluded.push(position);
            Some(format!(
                "member {position} gave two different logs in resharing round {round}: it is \
                 excluded from dealing (both logs are in the audit log)"
            ))
        }
    };
    epochs.reshare = Some(reshare);
    state.put(keys::epoch(), epochs.encode());
    Ok(note)
}

/// The last height of the epoch that holds `height`, for epochs of `epoch_blocks` blocks.
pub fn last_height_of_epoch(height: u64, epoch_blocks: u64) -> u64 {
    let epoch_blocks = epoch_blocks.max(2);
    (height / epoch_blocks + 1) * epoch_blocks - 1
}

/// Runs after every block's transactions: opens a resharing for waiting changes, and at an
/// epoch's last block decides it and moves to the next epoch. Returns whether the block
/// ended an epoch.
pub(crate) fn end_of_block<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
) -> bool {
    let Some(policy) = env.membership.as_ref() else {
        return false;
    };
    let mut epochs = epoch_state(state);
    let mut changed = false;
    if epochs.reshare.is_none() {
        changed |= open(env, state, block, &mut epochs);
    }
    let boundary = block.height == last_height_of_epoch(block.height, policy.epoch_blocks);
    if boundary {
        if let Some(reshare) = epochs.reshare.take() {
            decide(env, state, block, &mut epochs, reshare, policy.epoch_blocks);
        } else if env.cluster_key.is_some() && has_changes(state) {
            epochs.fail(format!(
                "epoch {}: the cluster key was dealt at genesis (--trusted-dealer) and is not \
                 reshared, so the members cannot change",
                epochs.epoch
            ));
        }
        epochs.epoch += 1;
        epochs.start_height = block.height + 1;
        changed = true;
    }
    if changed {
        state.put(keys::epoch(), epochs.encode());
    }
    boundary
}

fn has_changes<S: Snapshot>(state: &Overlay<'_, S>) -> bool {
    state
        .decoded(&keys::membership_changes(), Changes::decode)
        .is_some_and(|c| !c.joins.is_empty() || !c.leaves.is_empty())
}

/// Opens a resharing round for the waiting changes, if there are any and the key exists.
fn open<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    epochs: &mut EpochState,
) -> bool {
    if env.cluster_key.is_some() {
        return false;
    }
    let Some(changes) = state.decoded(&keys::membership_changes(), Changes::decode) else {
        return false;
    };
    if changes.joins.is_empty() && changes.leaves.is_empty() {
        return false;
    }
    let Some(key) = current_key(state) else {
        return false;
    };
    let mut players: Vec<PublicKey> = env
        .active()
        .filter(|(p, _)| !changes.leaves.contains(p))
        .map(|(_, key)| key.clone())
        .collect();
    for id in &changes.joins {
        let Some(request) = state.decoded(&keys::membership_request(id), JoinRequest::decode)
        else {
            continue;
        };
        if !players.contains(&request.registration.public_key) {
            players.push(request.registration.public_key.clone());
        }
    }
    players.sort();
    epochs.last_round = epochs.last_round.max(key.round) + 1;
    epochs.reshare = Some(Reshare {
        round: epochs.last_round,
        opened_height: block.height,
        dealers: env.active().map(|(p, _)| p).collect(),
        players,
        joins: changes.joins.clone(),
        leaves: changes.leaves.clone(),
        logs: Vec::new(),
        excluded: Vec::new(),
    });
    true
}

/// Decides `reshare` at an epoch's last block (see the module docs).
fn decide<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    epochs: &mut EpochState,
    reshare: Reshare,
    epoch_blocks: u64,
) {
    let result = ledger_of(env, state, &reshare).and_then(|ledger| {
        let previous = previous_output(env, state)?;
        let (output, logs) = ledger.agreed_selection().map_err(|e| e.to_string())?;
        if output.public().public() != previous.public().public() {
            return Err("the resharing's key differs from the cluster key".into());
        }
        Ok((output, logs))
    });
    match result {
        Ok((output, logs)) => {
            let key = GeneratedKey {
                round: reshare.round,
                height: block.height,
                output: output.encode().to_vec(),
                logs,
                excluded: Vec::new(),
            };
            state.put(keys::epoch_key(), key.encode());
            let mut changes = state
                .decoded(&keys::membership_changes(), Changes::decode)
                .unwrap_or_default();
            for id in &reshare.joins {
                if let Some(request) =
                    state.decoded(&keys::membership_request(id), JoinRequest::decode)
                {
                    epochs.joined.push(request.registration);
                }
            }
            changes.joins.retain(|id| !reshare.joins.contains(id));
            changes.leaves.retain(|p| !reshare.leaves.contains(p));
            state.put(keys::membership_changes(), changes.encode());
            epochs.retired.extend(&reshare.leaves);
            epochs.retired.sort_unstable();
            epochs.retired.dedup();
        }
        Err(reason) => {
            let age = block.height.saturating_sub(reshare.opened_height);
            if age < epoch_blocks / 2 {
                epochs.reshare = Some(reshare);
            } else {
                epochs.fail(format!(
                    "epoch {}: resharing round {} failed ({reason}); the members stay as they \
                     were and a new round opens for the waiting changes",
                    epochs.epoch, reshare.round
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
