//! Admission and departure: who asks to join, which operators approved, who leaves.
//!
//! The genesis names the policy ([`welkin_types::genesis::MembershipPolicy`]): the operators'
//! KERI identifiers, how many must approve, and what evidence about the machine a request
//! carries. Without one, a cluster's members are fixed and every request is refused.
//!
//! 1. **Join.** A node sends its registration (the same signed bytes a genesis entry holds)
//!    with its own key. It is refused unless the registration's signature is the sender's,
//!    the node is not a member and takes no member's name or p2p address, no request for it
//!    is open, at most [`MAX_OPEN_REQUESTS`] are, and its evidence satisfies the attestation
//!    policy ([`AttestationVerifier`]). The request then waits for approvals.
//! 2. **Approve.** An operator, sending as its KERI identifier (the system module has checked
//!    that the signing keys are the identifier's current ones and meet its threshold),
//!    approves an open request once. With enough distinct operators the request is admitted.
//! 3. **Leave.** A member leaves, with its own node key, while at least [`MIN_MEMBERS`] remain.
//! 4. **Remove.** Operators vote, each once, to remove a member; with as many votes as a join
//!    needs approvals, the member leaves as if it had asked (same floor). Votes are kept
//!    until then (`Removal := 0x01 | operators u16 (str)*`).
//!
//! Admitted joins and leaves are listed in [`Changes`]; they take effect at an epoch boundary
//! once the members have reshared the key to the new set (see [`crate::epochs`]). A request
//! open for [`REQUEST_TTL_MS`] of block time expires.
//!
//! ```text
//! Request := 0x01 | registration u16 len bytes | signature [64] | submitted_ms u64
//!          | approvals u16 (str)* | status u8 (0 open, 1 admitted, 2 expired)
//! Open    := 0x01 | ids u16 ([32])*
//! Changes := 0x01 | joins u16 ([32])* | leaves u16 (member u32)*
//! ```

use crate::{
    Env, Overlay, Snapshot, authority, identity, keys,
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use commonware_codec::Encode as _;
use commonware_cryptography::Verifier as _;
use welkin_keri::KeyState;
use welkin_types::{
    Block, Digest, IndexedKey, NodeInfo, PublicKey, Sender, Signature, SignedTransaction,
    genesis::NodeRegistration,
    membership::{MembershipOp, request_id},
    namespace,
};

/// Most join requests open at once.
pub const MAX_OPEN_REQUESTS: usize = 64;
/// Block time a join request stays open for approvals (a day).
pub const REQUEST_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// Fewest members a cluster keeps: a member may not leave below it.
pub const MIN_MEMBERS: usize = 4;

const VERSION: u8 = 1;

/// Where a join request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    /// Waiting for approvals.
    Open,
    /// Approved by enough operators: it joins at the next epoch.
    Admitted,
    /// Not approved in time.
    Expired,
}

/// A join request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// The node's signed registration.
    pub registration: NodeInfo,
    /// When it was submitted (block time, ms).
    pub submitted_ms: u64,
    /// The operators that approved it, in order.
    pub approvals: Vec<String>,
    /// Where it stands.
    pub status: RequestStatus,
}

impl JoinRequest {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        let message = self.registration.registration().message();
        w.u16(message.len());
        w.raw(&message);
        w.raw(&self.registration.signature.encode());
        w.u64(self.submitted_ms);
        write_list(&mut w, &self.approvals, |w, a| w.str(a));
        w.u8(match self.status {
            RequestStatus::Open => 0,
            RequestStatus::Admitted => 1,
            RequestStatus::Expired => 2,
        });
        w.0
    }

    /// Decodes the value at [`keys::membership_request`].
    pub fn decode(value: &[u8]) -> Result<Self, StoredError> {
        let mut r = Reader::new("join request", value);
        r.version(VERSION)?;
        let len = r.u16()?;
        let registration = NodeRegistration::from_message(r.raw(len)?)
            .map_err(|e| r.error(format!("registration: {e}")))?;
        let signature = welkin_types::decode::<Signature>(r.raw(64)?)
            .map_err(|e| r.error(format!("signature: {e}")))?;
        let submitted_ms = r.u64()?;
        let approvals = read_list(&mut r, |r| r.str())?;
        let status = match r.u8()? {
            0 => RequestStatus::Open,
            1 => RequestStatus::Admitted,
            2 => RequestStatus::Expired,
            other => return Err(r.error(format!("status {other}"))),
        };
        r.end()?;
        Ok(Self {
            registration: registration.with_signature(signature),
            submitted_ms,
            approvals,
            status,
        })
    }
}

/// The membership changes waiting for the next epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Admitted join requests, by id, in the order they were admitted.
    pub joins: Vec<Digest>,
    /// Members leaving, by genesis position, in the order they asked.
    pub leaves: Vec<u32>,
}

impl Changes {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        write_list(&mut w, &self.joins, |w, id| w.raw(id.as_ref()));
        write_list(&mut w, &self.leaves, |w, m| w.u32(*m as usize));
        w.0
    }

    /// Decodes the value at [`keys::membership_changes`].
    pub fn decode(value: &[u8]) -> Result<Self, StoredError> {
        let mut r = Reader::new("membership changes", value);
        r.version(VERSION)?;
        let joins = read_list(&mut r, |r| Ok(Digest::from(r.bytes32()?)))?;
        let leaves = read_list(&mut r, |r| Ok(r.u32()? as u32))?;
        r.end()?;
        Ok(Self { joins, leaves })
    }
}

fn encode_open(ids: &[Digest]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION);
    write_list(&mut w, ids, |w, id| w.raw(id.as_ref()));
    w.0
}

/// Decodes the value at [`keys::membership_open`].
pub fn decode_open(value: &[u8]) -> Result<Vec<Digest>, StoredError> {
    let mut r = Reader::new("open join requests", value);
    r.version(VERSION)?;
    let ids = read_list(&mut r, |r| Ok(Digest::from(r.bytes32()?)))?;
    r.end()?;
    Ok(ids)
}

/// What an attestation verifier looks at.
pub struct Attestation<'a> {
    /// The cluster the node asks to join.
    pub cluster_id: &'a Digest,
    /// The node's registration.
    pub registration: &'a NodeInfo,
    /// The evidence the request carries.
    pub evidence: &'a [u8],
    /// The operators the genesis names.
    pub operators: &'a [String],
    /// An identifier's current key state, as the identity module holds it.
    pub key_state: &'a dyn Fn(&str) -> Option<KeyState>,
}

/// Checks a join request's evidence about the machine. One exists per policy name in
/// [`welkin_types::genesis::ATTESTATIONS`]; a hardware quote verifier (TDX, SEV-SNP) is
/// another implementation, checking a quote that binds the node's key.
pub trait AttestationVerifier {
    /// The policy name in the genesis.
    fn name(&self) -> &'static str;
    /// `Ok` if the evidence attests the registration.
    fn verify(&self, attestation: &Attestation<'_>) -> Result<(), String>;
}

/// The `none` policy: any evidence, the operators' approvals alone decide.
pub struct NoAttestation;

impl AttestationVerifier for NoAttestation {
    fn name(&self) -> &'static str {
        "none"
    }

    fn verify(&self, _: &Attestation<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// The `operator-statement` policy: an operator, signing with its identifier's current keys
/// (meeting the identifier's threshold), states that this node key is a machine it vouches
/// for. The statement signs [`OperatorStatement::message`] under
/// [`namespace::ATTESTATION`].
///
/// ```text
/// Evidence := prefix (u16 len, qb64) | signers u16 (index u32 | key [32] | signature [64])*
/// ```
pub struct OperatorStatement;

impl OperatorStatement {
    /// What the operator signs: the cluster and the node's whole registration.
    pub fn message(cluster_id: &Digest, registration: &NodeInfo) -> Vec<u8> {
        let mut message = cluster_id.as_ref().to_vec();
        message.extend_from_slice(&registration.registration().message());
        message
    }

    /// The evidence for `prefix`'s statement, signed by `signers` (index, key, signature).
    pub fn evidence(prefix: &str, signers: &[(u32, PublicKey, Signature)]) -> Vec<u8> {
        let mut w = Writer::default();
        w.str(prefix);
        write_list(&mut w, signers, |w, (index, key, signature)| {
            w.u32(*index as usize);
            w.raw(&key.encode());
            w.raw(&signature.encode());
        });
        w.0
    }
}

impl AttestationVerifier for OperatorStatement {
    fn name(&self) -> &'static str {
        "operator-statement"
    }

    fn verify(&self, attestation: &Attestation<'_>) -> Result<(), String> {
        let mut r = Reader::new("operator statement", attestation.evidence);
        let parse = |r: &mut Reader<'_>| -> Result<_, StoredError> {
            let prefix = r.str()?;
            let signers = read_list(r, |r| {
                let index = r.u32()? as u32;
                let key = welkin_types::decode::<PublicKey>(r.raw(32)?)
                    .map_err(|e| r.error(format!("key: {e}")))?;
                let signature = welkin_types::decode::<Signature>(r.raw(64)?)
                    .map_err(|e| r.error(format!("signature: {e}")))?;
                Ok((index, key, signature))
            })?;
            r.end()?;
            Ok((prefix, signers))
        };
        let (prefix, signers) = parse(&mut r).map_err(|e| {
            format!("the evidence is not an operator statement ({e}); see `welkin membership`")
        })?;
        if !attestation.operators.contains(&prefix) {
            return Err(format!(
                "the statement is by {prefix}, who is not an operator of this cluster"
            ));
        }
        if signers.is_empty() {
            return Err("the operator statement carries no signature".into());
        }
        let indexed: Vec<IndexedKey> = signers
            .iter()
            .map(|(index, key, _)| IndexedKey {
                index: *index,
                key: key.clone(),
            })
            .collect();
        authority::check((attestation.key_state)(&prefix).as_ref(), &prefix, &indexed)
            .map_err(|e| format!("the operator statement is not signed with authority: {e}"))?;
        let message = Self::message(attestation.cluster_id, attestation.registration);
        for (index, key, signature) in &signers {
            if !key.verify(namespace::ATTESTATION, &message, signature) {
                return Err(format!(
                    "the operator statement's signature by key {index} does not verify"
                ));
            }
        }
        Ok(())
    }
}

/// The verifier of a policy name.
pub fn verifier(name: &str) -> Option<&'static dyn AttestationVerifier> {
    static NONE: NoAttestation = NoAttestation;
    static OPERATOR: OperatorStatement = OperatorStatement;
    [&NONE as &dyn AttestationVerifier, &OPERATOR]
        .into_iter()
        .find(|v| v.name() == name)
}

/// Runs a membership request (a dealer log goes to [`crate::keygen`]); `Ok` carries a note
/// for the receipt, `Err` the refusal.
pub(crate) fn execute<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    signed: &SignedTransaction,
    op: &MembershipOp,
) -> Result<Option<String>, String> {
    let now = block.timestamp_ms;
    match op {
        MembershipOp::DealerLog { round, log } => {
            if crate::epochs::open_round(state).is_some() {
                crate::epochs::record_log(env, state, signed, (round, log))
            } else {
                crate::keygen::record_log(env, state, block, signed, (round, log))
            }
        }
        MembershipOp::Join {
            registration,
            evidence,
        } => join(env, state, now, signed, registration, evidence),
        MembershipOp::Approve { request } => approve(env, state, now, signed, request),
        MembershipOp::Leave => leave(env, state, signed),
        MembershipOp::Remove { member } => remove(env, state, signed, member),
    }
}

fn policy(env: &Env) -> Result<&welkin_types::genesis::MembershipPolicy, String> {
    env.membership.as_ref().ok_or_else(|| {
        "this cluster admits no nodes: its genesis names no membership policy (operators)".into()
    })
}

/// The open requests, dropping (and marking) those past their time.
fn open_requests<S: Snapshot>(state: &mut Overlay<'_, S>, now: u64) -> Vec<Digest> {
    let ids = state
        .decoded(&keys::membership_open(), decode_open)
        .unwrap_or_default();
    state.prefetch(ids.iter().map(keys::membership_request));
    let mut open = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(mut request) = state.decoded(&keys::membership_request(&id), JoinRequest::decode)
        else {
            continue;
        };
        if now.saturating_sub(request.submitted_ms) > REQUEST_TTL_MS {
            request.status = RequestStatus::Expired;
            state.put(keys::membership_request(&id), request.encode());
        } else {
            open.push(id);
        }
    }
    open
}

fn join<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    now: u64,
    signed: &SignedTransaction,
    registration: &NodeInfo,
    evidence: &[u8],
) -> Result<Option<String>, String> {
    let policy = policy(env)?;
    if signed.tx.sender != Sender::Key(registration.public_key.clone()) {
        return Err("a join request is sent by the joining node's own key".into());
    }
    registration
        .verify_registration()
        .map_err(|e| e.to_string())?;
    if env.members.contains(&registration.public_key) {
        return Err("this node is a member already".into());
    }
    let id = request_id(registration);
    if let Some(existing) = state.decoded(&keys::membership_request(&id), JoinRequest::decode) {
        return Err(format!(
            "this registration was requested already ({:?}); to ask again, sign a changed \
             registration",
            existing.status
        ));
    }
    let mut open = open_requests(state, now);
    if open.len() >= MAX_OPEN_REQUESTS {
        return Err(format!(
            "{MAX_OPEN_REQUESTS} join requests are waiting for approvals, the limit: retry \
             once operators have decided some"
        ));
    }
    // Names and p2p addresses must stay unique across members and open requests.
    let taken = |other: &NodeInfo| {
        other.name == registration.name || other.p2p_address == registration.p2p_address
    };
    for id in &open {
        if let Some(other) = state.decoded(&keys::membership_request(id), JoinRequest::decode)
            && taken(&other.registration)
        {
            return Err(format!(
                "an open request already uses the name {:?} or the p2p address {}",
                registration.name, registration.p2p_address
            ));
        }
    }
    let verifier = verifier(&policy.attestation)
        .ok_or_else(|| format!("unknown attestation policy {:?}", policy.attestation))?;
    let key_state = |prefix: &str| identity::key_state_of(state, prefix);
    verifier
        .verify(&Attestation {
            cluster_id: &env.cluster_id,
            registration,
            evidence,
            operators: &policy.operators,
            key_state: &key_state,
        })
        .map_err(|e| format!("attestation ({}) refused: {e}", verifier.name()))?;
    let request = JoinRequest {
        registration: registration.clone(),
        submitted_ms: now,
        approvals: Vec::new(),
        status: RequestStatus::Open,
    };
    state.put(keys::membership_request(&id), request.encode());
    open.push(id);
    state.put(keys::membership_open(), encode_open(&open));
    Ok(Some(format!(
        "join request {} is open: it needs {} operator approvals",
        hex::encode(id),
        policy.approvals
    )))
}

fn approve<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    now: u64,
    signed: &SignedTransaction,
    id: &Digest,
) -> Result<Option<String>, String> {
    let policy = policy(env)?;
    let Sender::Identifier { prefix, .. } = &signed.tx.sender else {
        return Err("an approval is sent by an operator's KERI identifier".into());
    };
    if !policy.operators.contains(prefix) {
        return Err(format!("{prefix} is not an operator of this cluster"));
    }
    let mut open = open_requests(state, now);
    let Some(mut request) = state.decoded(&keys::membership_request(id), JoinRequest::decode)
    else {
        return Err(format!("no join request {}", hex::encode(id)));
    };
    if request.status != RequestStatus::Open || !open.contains(id) {
        return Err(format!(
            "join request {} is {:?}, not open",
            hex::encode(id),
            request.status
        ));
    }
    if request.approvals.contains(prefix) {
        return Err(format!("{prefix} approved this request already"));
    }
    request.approvals.push(prefix.clone());
    let note = if request.approvals.len() >= policy.approvals as usize {
        request.status = RequestStatus::Admitted;
        open.retain(|o| o != id);
        state.put(keys::membership_open(), encode_open(&open));
        let mut changes = state
            .decoded(&keys::membership_changes(), Changes::decode)
            .unwrap_or_default();
        changes.joins.push(*id);
        state.put(keys::membership_changes(), changes.encode());
        format!(
            "admitted {}: it joins at the next epoch",
            request.registration.name
        )
    } else {
        format!(
            "{} of {} approvals",
            request.approvals.len(),
            policy.approvals
        )
    };
    state.put(keys::membership_request(id), request.encode());
    Ok(Some(note))
}

fn leave<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    signed: &SignedTransaction,
) -> Result<Option<String>, String> {
    let Sender::Key(key) = &signed.tx.sender else {
        return Err("a member leaves with its own node key".into());
    };
    policy(env)?;
    let Some(member) = env.member_position(key) else {
        return Err("only a member leaves".into());
    };
    let mut changes = state
        .decoded(&keys::membership_changes(), Changes::decode)
        .unwrap_or_default();
    if changes.leaves.contains(&member) {
        return Err("this member is leaving already".into());
    }
    let remaining = env.active_count() + changes.joins.len() - changes.leaves.len() - 1;
    if remaining < MIN_MEMBERS {
        return Err(format!(
            "{remaining} members would remain; a cluster keeps at least {MIN_MEMBERS}"
        ));
    }
    changes.leaves.push(member);
    state.put(keys::membership_changes(), changes.encode());
    Ok(Some("leaves at the next epoch".into()))
}

fn remove<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    signed: &SignedTransaction,
    member: &PublicKey,
) -> Result<Option<String>, String> {
    let policy = policy(env)?;
    let Sender::Identifier { prefix, .. } = &signed.tx.sender else {
        return Err("a removal is voted by an operator's KERI identifier".into());
    };
    if !policy.operators.contains(prefix) {
        return Err(format!("{prefix} is not an operator of this cluster"));
    }
    let Some(position) = env.member_position(member) else {
        return Err("that node is not a member".into());
    };
    let mut changes = state
        .decoded(&keys::membership_changes(), Changes::decode)
        .unwrap_or_default();
    if changes.leaves.contains(&position) {
        return Err(format!("member {position} is leaving already"));
    }
    let key = keys::membership_removal(member);
    let mut votes = state.decoded(&key, decode_removal).unwrap_or_default();
    if votes.contains(prefix) {
        return Err(format!(
            "{prefix} voted to remove member {position} already"
        ));
    }
    votes.push(prefix.clone());
    if votes.len() < policy.approvals as usize {
        state.put(key, encode_removal(&votes));
        return Ok(Some(format!(
            "{} of {} votes to remove member {position}",
            votes.len(),
            policy.approvals
        )));
    }
    let remaining = env.active_count() + changes.joins.len() - changes.leaves.len() - 1;
    if remaining < MIN_MEMBERS {
        return Err(format!(
            "{remaining} members would remain; a cluster keeps at least {MIN_MEMBERS}"
        ));
    }
    changes.leaves.push(position);
    state.put(keys::membership_changes(), changes.encode());
    state.delete(key);
    Ok(Some(format!(
        "member {position} is removed at the next epoch"
    )))
}

fn encode_removal(votes: &[String]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION);
    write_list(&mut w, votes, |w, v| w.str(v));
    w.0
}

fn decode_removal(value: &[u8]) -> Result<Vec<String>, StoredError> {
    let mut r = Reader::new("removal votes", value);
    r.version(VERSION)?;
    let votes = read_list(&mut r, |r| r.str())?;
    r.end()?;
    Ok(votes)
}

#[cfg(test)]
mod tests;
