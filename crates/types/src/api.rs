//! JSON bodies of the node's HTTP API, shared by the node and the SDK.
//!
//! Binary values (keys, ids, signatures, encodings) travel as lowercase hex strings.

use crate::receipt::Receipt;
use serde::{Deserialize, Serialize};

/// `POST /v1/tx`: one hex-encoded signed transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// Hex of the canonical encoding of a signed transaction.
    pub tx: String,
}

/// `POST /v1/txs`: many hex-encoded signed transactions.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatchRequest {
    /// Hex encodings of signed transactions.
    pub txs: Vec<String>,
}

/// The state of one transaction as a node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// Accepted into the mempool, not yet in a finalized block.
    Pending,
    /// In a finalized, applied block: see the receipt.
    Committed,
    /// This node does not know the transaction.
    Unknown,
}

/// Answer to a submission or a status query.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxStatus {
    /// Transaction id, hex.
    pub tx_id: String,
    /// Where it is.
    pub state: TxState,
    /// The receipt, once committed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt: Option<Receipt>,
    /// Hex of the certified checkpoint at the receipt's height, once the cluster signed it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub checkpoint: Option<String>,
    /// Why a committed transaction did not take effect (rejected, escrowed), if its module
    /// said.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// Answer to a batch submission: one entry per transaction, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResult {
    /// Per transaction: its status, or the error that refused it.
    pub results: Vec<BatchItem>,
}

/// One entry of a [`BatchResult`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchItem {
    /// The status, when accepted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<TxStatus>,
    /// The error, when refused.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<ErrorDetail>,
}

/// A transaction in a block, as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockTx {
    /// Transaction id, hex.
    pub id: String,
    /// Signer public key, hex.
    pub signer: String,
    /// Signer nonce.
    pub nonce: u64,
    /// Payload kind.
    pub kind: String,
}

/// `GET /v1/block/{height}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Height.
    pub height: u64,
    /// Block digest, hex.
    pub digest: String,
    /// Parent digest, hex.
    pub parent: String,
    /// Proposer timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Transactions.
    pub txs: Vec<BlockTx>,
    /// Hex of the full block encoding.
    pub encoded: String,
    /// Hex of the finalization certificate (absent for the genesis block).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub finalization: Option<String>,
}

/// `GET /v1/cluster/key`: what proves a dealerless cluster's key from its genesis. Check it
/// with `welkin_dkg::check_first_key` (the logs give the key), then check any threshold
/// signature under that key (a certified checkpoint): only the key the members hold shares
/// of can sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterKeyProof {
    /// The key generation round that made the key.
    pub round: u64,
    /// The height of the block that decided it.
    pub height: u64,
    /// The signed dealer logs the round selected, hex, in dealer order.
    pub logs: Vec<String>,
    /// Genesis positions of the members that were not the round's dealers (excluded for
    /// equivocating in an earlier round); at most f.
    #[serde(default)]
    pub excluded: Vec<u32>,
}

/// `GET /v1/cluster/keygen`: how the cluster key came to be, as this node's state says (the
/// node's word; prove the key itself with [`ClusterKeyProof`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenStatus {
    /// `dealt` (a trusted dealer made the key at genesis), `generating` or `generated`.
    pub state: String,
    /// The round open (generating) or the round that made the key (generated).
    pub round: u64,
    /// The block time the open round started at, ms since the Unix epoch (generating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// The height of the block that decided the key (generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Names of the members whose logs are in (generating) or were selected (generated).
    pub logs: Vec<String>,
    /// Names of the members whose dealings to them were revealed in a selected log (they
    /// acknowledged nothing from that dealer; generated only).
    pub revealed: Vec<String>,
    /// Names of the members excluded from dealing, for equivocating.
    pub excluded: Vec<String>,
    /// Why earlier rounds gave no key (the latest few).
    pub failures: Vec<String>,
}

/// `GET /v1/cluster/epoch`: the epoch as this node's state records it (the node's word).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochStatus {
    /// The current epoch.
    pub epoch: u64,
    /// Its first height.
    pub start_height: u64,
    /// Blocks per epoch, from the genesis.
    pub epoch_blocks: u64,
    /// The members' names, in roster order.
    pub members: Vec<String>,
    /// The names of nodes that left.
    pub retired: Vec<String>,
    /// The resharing in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reshare: Option<ReshareStatus>,
    /// Why recent resharings failed (the latest few).
    pub failures: Vec<String>,
}

/// A resharing round in progress (see [`EpochStatus`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshareStatus {
    /// The round's number.
    pub round: u64,
    /// The height of the block that opened it.
    pub opened_height: u64,
    /// Its dealers' names.
    pub dealers: Vec<String>,
    /// The names of the members it makes.
    pub players: Vec<String>,
    /// Names of the dealers whose logs are in.
    pub logs: Vec<String>,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This node's name.
    pub node: String,
    /// This node's public key, hex.
    pub public_key: String,
    /// This node's KERI identifier: its public key as a non-transferable (`B`) prefix, so
    /// membership binds it. It is the node's witness identifier and can sign transactions.
    #[serde(default)]
    pub identifier: String,
    /// Cluster id, hex.
    pub cluster_id: String,
    /// Cluster public key, hex; empty while a dealerless cluster is still generating it.
    #[serde(default)]
    pub cluster_key: String,
    /// Highest applied height.
    pub height: u64,
    /// State root after that height, hex.
    pub state_root: String,
    /// Highest height with a certified checkpoint.
    pub certified_height: u64,
    /// The latest consensus view this node has seen finalized.
    pub view: u64,
    /// Peers in the cluster, by name.
    pub peers: Vec<String>,
    /// Transactions waiting in this node's mempool.
    pub mempool: usize,
    /// Clients waiting on this node for their transactions to commit (`wait=true`).
    #[serde(default)]
    pub waiting: usize,
}

/// The error body: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable error code and a human message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `bad_signature`.
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// A self-contained proof that a transaction is in the audit log, checkable offline with only
/// the cluster id and cluster key: `GET /v1/log/receipt/{tx id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogReceipt {
    /// Format tag, `welkin-log-receipt/v1`.
    pub kind: String,
    /// The cluster id, hex.
    pub cluster_id: String,
    /// The transaction id, hex.
    pub tx_id: String,
    /// The log entry (the encoded signed transaction), hex.
    pub entry: String,
    /// The entry's leaf index.
    pub log_index: u64,
    /// The certified checkpoint whose log root the proof leads to, hex.
    pub checkpoint: String,
    /// The RFC 6962 inclusion proof, hex hashes, leaf to root.
    pub proof: Vec<String>,
    /// For a dealerless cluster, the proof of its key (the genesis alone does not hold it):
    /// with it, the genesis and this receipt check offline. The receipt's certified
    /// checkpoint completes the proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_key_proof: Option<ClusterKeyProof>,
}

/// The receipt format tag.
pub const LOG_RECEIPT_KIND: &str = "welkin-log-receipt/v1";

/// An inclusion or consistency proof: `GET /v1/log/proof/...`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogProof {
    /// Leaf index (inclusion) or old size (consistency).
    pub from: u64,
    /// Tree size the proof leads to.
    pub size: u64,
    /// Proof hashes, hex.
    pub proof: Vec<String>,
}

/// Log entries: `GET /v1/log/entries?start=S&end=E`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogEntries {
    /// Index of the first entry.
    pub start: u64,
    /// The entries, hex.
    pub entries: Vec<String>,
}

/// One event of a key event log, as served.
#[derive(Debug, Serialize, Deserialize)]
pub struct KelEvent {
    /// Sequence number.
    pub sn: u64,
    /// Event type (`icp`, `rot`, ...).
    pub ilk: String,
    /// The event's SAID.
    pub said: String,
    /// The event, byte for byte as the controller signed it (KERI JSON).
    pub event: Box<serde_json::value::RawValue>,
    /// Its attachments (controller signatures), CESR text.
    pub attachments: String,
    /// The transaction that carried it (hex): its log receipt proves the cluster committed
    /// the event.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tx_id: Option<String>,
}

/// A key event log page.
#[derive(Debug, Serialize, Deserialize)]
pub struct Kel {
    /// The identifier.
    pub prefix: String,
    /// Its sequence number now.
    pub sn: u64,
    /// Events from `from`, in order.
    pub events: Vec<KelEvent>,
}

/// Duplicity evidence of an identifier.
#[derive(Debug, Serialize, Deserialize)]
pub struct DuplicityEvidence {
    /// The identifier.
    pub prefix: String,
    /// The refused, validly signed events, each with the accepted event it conflicts with.
    pub evidence: Vec<Conflict>,
}

/// One refused event and the accepted one at its sequence number.
#[derive(Debug, Serialize, Deserialize)]
pub struct Conflict {
    /// The sequence number both claim.
    pub sn: u64,
    /// The accepted event's SAID (first seen).
    pub accepted: String,
    /// The refused event and its signatures, as a CESR message.
    pub refused: String,
}

/// `GET /v1/id/{prefix}/superseded`: interaction events a recovery rotation replaced.
#[derive(Debug, Serialize, Deserialize)]
pub struct Superseded {
    /// The identifier.
    pub prefix: String,
    /// The superseded events, oldest first.
    pub events: Vec<SupersededEvent>,
}

/// One event a recovery rotation replaced.
#[derive(Debug, Serialize, Deserialize)]
pub struct SupersededEvent {
    /// The sequence number of the recovery rotation (the KEL's event there now).
    pub recovery_sn: u64,
    /// The superseded event's own sequence number.
    pub sn: u64,
    /// Its SAID.
    pub said: String,
    /// Its type (`ixn`).
    pub ilk: String,
    /// The transaction that had carried it, hex, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tx_id: Option<String>,
    /// The event and its signatures, as a CESR message.
    pub message: String,
}

/// `GET /v1/id/witnesses`: the cluster's nodes as KERI witnesses.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Witnesses {
    /// Every node's non-transferable KERI identifier, in genesis order.
    pub witnesses: Vec<String>,
    /// How many receipts make the cluster's acceptance certain (2f+1).
    pub threshold: u32,
    /// The identifier of the node that answered.
    pub this_node: String,
}

/// An exported key event log: every event with the log receipt of the transaction that
/// carried it, checkable offline with the cluster's genesis (`welkin id verify`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KelExport {
    /// Format tag, [`KEL_EXPORT_KIND`].
    pub kind: String,
    /// The identifier.
    pub prefix: String,
    /// The events, in order.
    pub events: Vec<ExportedEvent>,
}

/// The format tag of [`KelExport`].
pub const KEL_EXPORT_KIND: &str = "welkin-kel/v1";

/// One event of a [`KelExport`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEvent {
    /// The event and its attachments, as a CESR message.
    pub message: String,
    /// The log receipt of the transaction that carried it.
    pub receipt: LogReceipt,
}

/// Applies an RFC 7386 JSON merge patch to `target`: `null` removes a key, objects merge,
/// anything else replaces (Vault's KV v2 `PATCH`).
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    let object = target.as_object_mut().expect("made an object above");
    for (key, value) in changes {
        if value.is_null() {
            object.remove(key);
        } else {
            merge_patch(
                object.entry(key.clone()).or_insert(serde_json::Value::Null),
                value,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut value = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut value, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(value, json!({"a": "z", "c": {"d": "e"}}));
        let mut scalar = json!("x");
        merge_patch(&mut scalar, &json!({"k": 1}));
        assert_eq!(scalar, json!({"k": 1}));
    }

    #[test]
    fn audit_log_events_name_their_kind_in_snake_case_and_omit_empty_fields() {
        let event = super::AuditLogEvent {
            kind: super::AuditLogKind::RepairOrdered,
            height: 130,
            epoch: None,
            shard: 1,
            member: 2,
            node: "node2".into(),
            reason: None,
        };
        let value = serde_json::to_value(&event).expect("serialises");
        assert_eq!(
            value,
            json!({"kind": "repair_ordered", "height": 130, "shard": 1, "member": 2, "node": "node2"})
        );
        assert_eq!(value["kind"], super::AuditLogKind::RepairOrdered.name());
        let back: super::AuditLogEvent = serde_json::from_value(value).expect("parses");
        assert_eq!(back.kind, super::AuditLogKind::RepairOrdered);
        assert!(
            serde_json::from_value::<super::AuditLogEvent>(json!({
                "kind": "audit_lost", "height": 1, "shard": 0, "member": 0, "node": ""
            }))
            .is_err()
        );
    }
}

/// `GET /v1/time?nonce=HEX`: a time certificate over the client's nonce. Only
/// `certificate` is evidence: a client decodes it (`welkin_time::CertifiedTime`) and checks
/// it with the cluster key; the other fields repeat it for reading.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeResponse {
    /// The certified time, hex of its binary encoding.
    pub certificate: String,
    /// The nonce it answers, hex.
    pub nonce: String,
    /// The earliest instant true time may be, in ns since the Unix epoch.
    pub earliest_ns: u64,
    /// The latest instant.
    pub latest_ns: u64,
    /// The interval's midpoint.
    pub midpoint_ns: u64,
    /// Half the interval's width.
    pub radius_ns: u64,
    /// The earliest instant, RFC 3339 (UTC).
    pub earliest: String,
    /// The latest instant, RFC 3339 (UTC).
    pub latest: String,
    /// The names of the nodes whose clocks agreed.
    pub agreed: Vec<String>,
    /// How many nonces the certificate's batch held.
    pub batch_size: u32,
}

/// A node's clock reading in [`TimeStatusResponse`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockReadingInfo {
    /// The clock's value, ns since the Unix epoch.
    pub midpoint_ns: u64,
    /// How far true time may be from it.
    pub radius_ns: u64,
    /// Whether the host is synchronised (the kernel bounds the radius).
    pub synced: bool,
}

/// One node's clock as the answering node sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeClockInfo {
    /// The node's name.
    pub name: String,
    /// Its reading's midpoint minus the certified midpoint, in ns (last round).
    pub offset_ns: i64,
    /// The radius it claimed.
    pub radius_ns: u64,
    /// Whether its host said it is synchronised.
    pub synced: bool,
    /// `unknown`, `agreeing`, `disagreeing`, `quarantined` or `silent`.
    pub state: String,
    /// Disagreements in a row (agreements in a row while quarantined).
    pub streak: u32,
    /// Rounds in which its reading lay outside the agreed interval.
    pub disagreements: u64,
    /// When its last reading arrived (answering node's clock, ms since the epoch).
    pub last_heard_ms: Option<u64>,
}

/// `GET /v1/time/status`: every clock as one node sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeStatusResponse {
    /// The answering node's name.
    pub node: String,
    /// Its own clock now.
    pub reading: ClockReadingInfo,
    /// The certified interval at this instant (from its latest certificate), if recent.
    pub certified_earliest_ns: Option<u64>,
    /// Its latest end.
    pub certified_latest_ns: Option<u64>,
    /// Certificates this node coordinated.
    pub certificates: u64,
    /// Rounds it coordinated that ended without one.
    pub refused: u64,
    /// Every node's clock, in genesis order.
    pub nodes: Vec<NodeClockInfo>,
    /// Where this node serves Roughtime (UDP), if it does.
    pub roughtime_address: Option<String>,
    /// Where this node serves NTP (UDP), if it does.
    pub ntp_address: Option<String>,
    /// The Roughtime long-term public key: this node's ed25519 identity key, base64 (as
    /// Roughtime clients take it).
    pub roughtime_public_key: String,
}

/// One shard of an object, as `GET /v1/objects/{id}` describes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// Its index: `0..k` hold data blocks, `k..k+m` parity.
    pub index: u16,
    /// The Merkle root of its block hashes (hex).
    pub root: String,
    /// The member it is placed on (genesis order).
    pub member: u32,
    /// That node's name.
    pub node: String,
    /// That node's API address.
    pub api_address: String,
    /// Whether the node acknowledged it.
    pub stored: bool,
    /// Whether it is stored and not lost to a failed audit (a lost shard is repaired).
    pub healthy: bool,
}

/// `GET /v1/objects/{id}`: an object's manifest and where its shards are.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectInfo {
    /// The object id (hex): it hashes the manifest's sizes, layout and shard roots, so the
    /// manifest below can be checked against it.
    pub id: String,
    /// The owner's key (hex).
    pub owner: String,
    /// The owner's label.
    pub label: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Data blocks per segment.
    pub k: u16,
    /// Parity blocks per segment.
    pub m: u16,
    /// Plaintext bytes per segment.
    pub segment_bytes: u32,
    /// Bytes each shard takes on its node.
    pub shard_bytes: u64,
    /// `pending`, `stored` or `degraded`.
    pub status: String,
    /// The height its manifest was committed at.
    pub height: u64,
    /// The transaction that committed it (hex).
    pub put_tx: String,
    /// Its shards.
    pub shards: Vec<ShardInfo>,
    /// The manifest (hex of its binary encoding) with the sealed key attached if this node
    /// still holds it.
    pub manifest: String,
}

/// What an event of an object's audit log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLogKind {
    /// f+1 nodes found the holder's proof of the shard good.
    AuditPassed,
    /// f+1 nodes found it bad, or nobody found it good within its epoch: the shard is lost.
    AuditFailed,
    /// The cluster ordered the shard rebuilt by `node`.
    RepairOrdered,
    /// `node` acknowledged the rebuilt shard: it is healthy again.
    RepairDone,
    /// `node` did not acknowledge the rebuilt shard in time; the order is made again later.
    RepairExpired,
}

impl AuditLogKind {
    /// The name used in JSON (`audit_passed`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AuditLogKind::AuditPassed => "audit_passed",
            AuditLogKind::AuditFailed => "audit_failed",
            AuditLogKind::RepairOrdered => "repair_ordered",
            AuditLogKind::RepairDone => "repair_done",
            AuditLogKind::RepairExpired => "repair_expired",
        }
    }
}

/// One event of an object's audit log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLogEvent {
    /// What happened.
    pub kind: AuditLogKind,
    /// The height it was settled at.
    pub height: u64,
    /// The audit epoch (audits only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub epoch: Option<u64>,
    /// The shard.
    pub shard: u16,
    /// The member concerned (genesis order): the audited holder, or the repair's new holder.
    pub member: u32,
    /// That node's name.
    pub node: String,
    /// Why an audit failed or a repair expired, or what an order replaced.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

/// `GET /v1/objects/{id}/audit-log`: the settled audits of an object's shards and its
/// repairs, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectAuditLog {
    /// The object id (hex).
    pub id: String,
    /// `pending`, `stored` or `degraded`.
    pub status: String,
    /// Shards that rebuild the object.
    pub k: u16,
    /// Shards in all (k + m).
    pub shards: u16,
    /// Shards stored and not lost.
    pub healthy: u16,
    /// How many of the newest events the cluster keeps per object (older ones are in the log).
    pub kept: u32,
    /// The events, newest first.
    pub events: Vec<AuditLogEvent>,
}

/// `GET /v1/objects?owner=KEY`: an owner's objects.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectList {
    /// The owner (hex).
    pub owner: String,
    /// How many objects the owner has in all.
    pub total: u64,
    /// The objects from `offset`, at most `limit` of them, in the owner's list order.
    pub objects: Vec<ObjectInfo>,
}

/// One node's storage space, as the state records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpaceInfo {
    /// The member (genesis order).
    pub member: u32,
    /// Its name.
    pub node: String,
    /// Its failure domain.
    pub failure_domain: String,
    /// Bytes it offered.
    pub capacity: u64,
    /// Bytes of shards it acknowledged.
    pub used: u64,
    /// Bytes placed on it and not acknowledged yet.
    pub reserved: u64,
    /// Bytes a new object may still take on it (capacity kept for repairs excluded).
    pub free_for_puts: u64,
    /// Shards it acknowledged.
    pub shards: u64,
    /// Audit challenges it passed.
    pub audits_passed: u64,
    /// Audit challenges it failed.
    pub audits_failed: u64,
    /// Share of its last (up to 64) audits passed, in percent.
    pub reputation_percent: u8,
    /// Why its last failed audit failed.
    pub last_audit_failure: Option<String>,
    /// Its challenge in the current audit epoch: `open`, `passed` or `failed`.
    pub current_audit: Option<String>,
}

/// What a node's own shard store holds (it is not replicated state: each node reports its own).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStoreInfo {
    /// Shards on disk.
    pub shards: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Shards found corrupt (never served; awaiting repair).
    pub corrupt: Vec<String>,
    /// Where the shards are.
    pub directory: String,
}

/// `GET /v1/storage`: every node's space, the cluster's totals, and this node's own store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageStatus {
    /// The answering node's name.
    pub node: String,
    /// Objects with a manifest.
    pub objects: u64,
    /// Objects with a shard lost to a failed audit (to be repaired).
    pub degraded: u64,
    /// The current audit epoch (0 before the first).
    pub audit_epoch: u64,
    /// Their plaintext bytes.
    pub bytes: u64,
    /// Every node's space, in genesis order.
    pub nodes: Vec<NodeSpaceInfo>,
    /// The answering node's store, if it runs one.
    pub local: Option<LocalStoreInfo>,
}

/// `PUT /v1/objects/{id}/shards/{i}`: what an upload did.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardUploadReply {
    /// The object (hex).
    pub object: String,
    /// The shard.
    pub shard: u16,
    /// Bytes of blocks received (0 if the node already held the shard).
    pub bytes: u64,
    /// The acknowledgement transaction the node submitted, if it did.
    pub ack_tx: Option<String>,
}
