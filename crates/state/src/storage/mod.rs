//! The storage module: object manifests, where their shards are, and each node's space.
//!
//! Object bytes never enter the state: a client commits an [`ObjectManifest`] (see
//! [`welkin_types::storage`]) and uploads each shard to the node this module placed it on;
//! that node checks every block against the manifest's shard root and acknowledges with a
//! [`StorageOp::Stored`] transaction signed by its own key. Rules:
//!
//! - **Offer** (a member's key): sets the member's capacity, which may not go below what it
//!   holds and has reserved.
//! - **Put** (the owner, a raw ed25519 key): refused if the object exists. Its shards are
//!   placed by [`placement::place`] on members with room (see [`records::PUT_SHARE_PERCENT`]:
//!   the rest of a node's capacity is kept for repairs), the space is reserved, and the object
//!   is `pending`. Its upload is settled [`UPLOAD_WINDOW_MS`] later: an object with every
//!   shard acknowledged is already `stored`; one with at least `k` is `degraded` (readable,
//!   its missing shards to be repaired); one with fewer is removed like a deletion.
//! - **Stored** (a placed member's key): marks the sender's shards acknowledged and moves
//!   their space from reserved to used. An acknowledgement of a shard placed elsewhere is
//!   refused; a repeated one changes nothing.
//! - **Delete** (the owner): removes the record and frees the space. The sealed key was
//!   carried beside the log (a [`welkin_types::Detachable`]), so every node destroys its copy,
//!   and every node removes the object's shards: nothing can rebuild the plaintext after.
//!
//! Objects are listed per owner and shards per holder in dense lists (see [`dense`]), so any
//! shard can be picked by index. Each object's recent audits and repairs are kept beside its
//! record (see [`history`]) and removed with it.

pub mod audit;
mod dense;
pub mod history;
pub mod placement;
pub mod records;
pub mod repair;
#[cfg(test)]
mod tests;

use crate::{Env, Overlay, Snapshot, keys, stored::StoredError};
use dense::Dense;
use records::{NodeSpace, ObjectRecord, ObjectStatus, Totals, decode_held, encode_held};
use welkin_types::{
    Block, Digest, PublicKey, Sender, SignedTransaction,
    storage::{ObjectManifest, StorageOp},
};

/// How long after its manifest is committed an object's upload is settled (one hour).
pub const UPLOAD_WINDOW_MS: u64 = 60 * 60 * 1000;

/// The seed placement ranks members with, until the cluster's randomness feeds it.
const PLACEMENT_SEED: [u8; 32] = [0; 32];

/// Runs a storage request; `Err` is the reason it was refused.
pub(crate) fn execute<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    signed: &SignedTransaction,
    op: &StorageOp,
) -> Result<(), String> {
    match op {
        StorageOp::Offer { capacity_bytes } => {
            let member = member_of(env, &signed.tx.sender)
                .ok_or("only a cluster node may offer storage, with its own key")?;
            offer(state, member, *capacity_bytes)
        }
        StorageOp::Put(manifest) => {
            let Sender::Key(owner) = &signed.tx.sender else {
                return Err(
                    "objects are owned by ed25519 keys: sign the put with a key, \
                            not an identifier"
                        .into(),
                );
            };
            put(env, state, block, signed, owner, manifest)
        }
        StorageOp::Stored { object, shards } => {
            let member = member_of(env, &signed.tx.sender)
                .ok_or("only a cluster node may acknowledge shards, with its own key")?;
            stored(state, block.height, member, object, shards)
        }
        StorageOp::Lost { object, shards } => {
            let member = member_of(env, &signed.tx.sender)
                .ok_or("only a cluster node may declare its shards lost, with its own key")?;
            lost(state, member, object, shards)
        }
        StorageOp::Delete { object } => {
            let record = object_record(state, object)
                .ok_or_else(|| format!("no object {}", hex::encode(object)))?;
            if Sender::Key(record.owner.clone()) != signed.tx.sender {
                return Err(format!(
                    "object {} belongs to another key; only its owner may delete it",
                    hex::encode(object)
                ));
            }
            remove(state, object, &record);
            Ok(())
        }
        StorageOp::AuditSeed(checkpoint) => {
            member_of(env, &signed.tx.sender)
                .ok_or("only a cluster node may seed an audit, with its own key")?;
            audit::seed(env, state, block.height, checkpoint)
        }
        StorageOp::AuditVerdicts { epoch, verdicts } => {
            let voter = member_of(env, &signed.tx.sender)
                .ok_or("only a cluster node may judge audits, with its own key")?;
            audit::verdicts(env, state, block.height, voter, *epoch, verdicts)
        }
    }
}

/// Settles the uploads whose window has closed (see the module docs).
pub(crate) fn sweep<S: Snapshot>(state: &mut Overlay<'_, S>, now_ms: u64) {
    crate::expiry::sweep(
        state,
        crate::expiry::Queue::Uploads,
        now_ms,
        |state, item| {
            let Ok(id) = <[u8; 32]>::try_from(item) else {
                state.corrupt(
                    keys::queue_head(crate::expiry::Queue::Uploads.name()),
                    StoredError::new("upload queue item", format!("{} bytes", item.len())),
                );
                return;
            };
            let id = Digest::from(id);
            let Some(mut record) = object_record(state, &id) else {
                return; // deleted meanwhile
            };
            if record.status != ObjectStatus::Pending {
                return;
            }
            if record.stored_count() < usize::from(record.manifest.k) {
                remove(state, &id, &record);
                return;
            }
            // Readable: release the space of the shards that never arrived, and count them as
            // lost so that repair rebuilds them.
            let shard_bytes = record.manifest.shard_bytes();
            let was_healthy = record.lost == 0;
            for (shard, member) in record.placement.iter().enumerate() {
                if !record.is_stored(shard) {
                    update_space(state, *member, |space| {
                        space.reserved = space.reserved.saturating_sub(shard_bytes)
                    });
                    record.lost |= 1 << shard;
                }
            }
            record.status = ObjectStatus::Degraded;
            state.put(keys::object(&id), record.encode());
            if was_healthy {
                audit::degraded().push(state, id.as_ref().to_vec());
            }
        },
    );
}

/// The record of object `id`, if any (a corrupt one is reported and read as absent).
pub fn object_record<S: Snapshot>(state: &Overlay<'_, S>, id: &Digest) -> Option<ObjectRecord> {
    state.decoded(&keys::object(id), ObjectRecord::decode)
}

fn member_of(env: &Env, sender: &Sender) -> Option<u32> {
    let Sender::Key(key) = sender else {
        return None;
    };
    env.member_position(key)
}

fn space_of<S: Snapshot>(state: &Overlay<'_, S>, member: u32) -> NodeSpace {
    state
        .decoded(&keys::storage_node(member), NodeSpace::decode)
        .unwrap_or_default()
}

fn update_space<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    member: u32,
    change: impl FnOnce(&mut NodeSpace),
) {
    let mut space = space_of(state, member);
    change(&mut space);
    state.put(keys::storage_node(member), space.encode());
}

fn update_totals<S: Snapshot>(state: &mut Overlay<'_, S>, change: impl FnOnce(&mut Totals)) {
    let mut totals = state
        .decoded(&keys::storage_totals(), Totals::decode)
        .unwrap_or_default();
    change(&mut totals);
    state.put(keys::storage_totals(), totals.encode());
}

fn owned(owner: &PublicKey) -> Dense<impl Fn(u64) -> Digest + '_, impl Fn(&[u8]) -> Digest> {
    Dense {
        count: keys::owned_count(owner),
        at: move |slot| keys::owned_at(owner, slot),
        slot_of: |item: &[u8]| {
            keys::owned_slot(&Digest::from(<[u8; 32]>::try_from(item).unwrap_or([0; 32])))
        },
    }
}

fn held(member: u32) -> Dense<impl Fn(u64) -> Digest, impl Fn(&[u8]) -> Digest> {
    Dense {
        count: keys::held_count(member),
        at: move |slot| keys::held_at(member, slot),
        slot_of: move |item: &[u8]| {
            let (object, shard) = decode_held(item).unwrap_or((Digest::from([0; 32]), 0));
            keys::held_slot(member, &object, shard)
        },
    }
}

fn offer<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    member: u32,
    capacity: u64,
) -> Result<(), String> {
    let space = space_of(state, member);
    let committed = space.used.saturating_add(space.reserved);
    if capacity < committed {
        return Err(format!(
            "capacity {capacity} is below the {committed} bytes this node holds or has \
             reserved; delete or move objects first"
        ));
    }
    update_space(state, member, |space| space.capacity = capacity);
    Ok(())
}

fn put<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    signed: &SignedTransaction,
    owner: &PublicKey,
    manifest: &ObjectManifest,
) -> Result<(), String> {
    let id = manifest.id();
    let members = env.members.len() as u32;
    state.prefetch((0..members).map(keys::storage_node));
    if object_record(state, &id).is_some() {
        return Err(format!("object {} already exists", hex::encode(id)));
    }
    let spaces: Vec<NodeSpace> = (0..members).map(|m| space_of(state, m)).collect();
    let candidates: Vec<placement::Candidate<'_>> = env
        .members
        .iter()
        .zip(&spaces)
        .enumerate()
        .filter(|(member, _)| env.is_active(*member as u32))
        .map(|(member, (key, space))| placement::Candidate {
            member: member as u32,
            key,
            domain: env.domains.get(member).map(String::as_str).unwrap_or(""),
            free: space.free_for_puts(),
        })
        .collect();
    let shard_bytes = manifest.shard_bytes();
    let placed = placement::place(
        &Digest::from(PLACEMENT_SEED),
        &id,
        manifest.shards(),
        shard_bytes,
        &candidates,
    )
    .map_err(|error| error.to_string())?;
    for member in &placed.members {
        update_space(state, *member, |space| space.reserved += shard_bytes);
    }
    let record = ObjectRecord {
        owner: owner.clone(),
        put_tx: signed.id(),
        height: block.height,
        status: ObjectStatus::Pending,
        manifest: manifest.clone(),
        placement: placed.members,
        stored: 0,
        lost: 0,
    };
    state.put(keys::object(&id), record.encode());
    owned(owner).push(state, id.as_ref().to_vec());
    update_totals(state, |totals| {
        totals.objects += 1;
        totals.bytes = totals.bytes.saturating_add(manifest.size);
    });
    state.schedule.uploads.push(id.as_ref().to_vec());
    Ok(())
}

/// The record of `object`, checked to place every one of `shards` on `member` (what a
/// holder's acknowledgement or loss may speak for).
fn placed_record<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    member: u32,
    object: &Digest,
    shards: &[u16],
) -> Result<ObjectRecord, String> {
    let record =
        object_record(state, object).ok_or_else(|| format!("no object {}", hex::encode(object)))?;
    for shard in shards {
        let placed = record.placement.get(usize::from(*shard)).ok_or_else(|| {
            format!(
                "object {} has {} shards, not {}",
                hex::encode(object),
                record.placement.len(),
                shard + 1
            )
        })?;
        if *placed != member {
            return Err(format!(
                "shard {shard} of object {} is placed on node {placed}, not on node {member}",
                hex::encode(object)
            ));
        }
    }
    Ok(record)
}

fn stored<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    height: u64,
    member: u32,
    object: &Digest,
    shards: &[u16],
) -> Result<(), String> {
    let mut record = placed_record(state, member, object, shards)?;
    let shard_bytes = record.manifest.shard_bytes();
    for shard in shards {
        if record.is_stored(usize::from(*shard)) {
            continue; // a repeated acknowledgement
        }
        record.stored |= 1 << shard;
        let repaired = repair::acknowledged(state, height, object, &mut record, member, *shard);
        let was_reserved = record.status == ObjectStatus::Pending || repaired;
        update_space(state, member, |space| {
            if was_reserved {
                space.reserved = space.reserved.saturating_sub(shard_bytes);
            }
            space.used = space.used.saturating_add(shard_bytes);
        });
        held(member).push(state, encode_held(object, *shard));
    }
    if record.stored_count() == record.manifest.shards() {
        record.status = ObjectStatus::Stored;
    }
    state.put(keys::object(object), record.encode());
    Ok(())
}

/// A holder declares shards of `object` placed on it lost: each stored, healthy one is
/// marked lost (repair takes it from there). The holder's audit record is left alone: saying
/// so is what an honest node does, and its silence would fail audits anyway.
fn lost<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    member: u32,
    object: &Digest,
    shards: &[u16],
) -> Result<(), String> {
    let mut record = placed_record(state, member, object, shards)?;
    for &shard in shards {
        let at = usize::from(shard);
        if record.is_stored(at) && record.lost & (1 << at) == 0 {
            audit::mark_lost(state, object, &mut record, at);
        }
    }
    Ok(())
}

/// Removes an object: its record and audit history, its place in its owner's and holders'
/// lists, its space, and (beside the log) its sealed key; every node then removes its shards.
fn remove<S: Snapshot>(state: &mut Overlay<'_, S>, id: &Digest, record: &ObjectRecord) {
    let shard_bytes = record.manifest.shard_bytes();
    for (shard, member) in record.placement.iter().enumerate() {
        if record.is_stored(shard) {
            update_space(state, *member, |space| {
                space.used = space.used.saturating_sub(shard_bytes)
            });
            held(*member).remove(state, &encode_held(id, shard as u16));
        } else if record.status == ObjectStatus::Pending {
            update_space(state, *member, |space| {
                space.reserved = space.reserved.saturating_sub(shard_bytes)
            });
        }
    }
    owned(&record.owner).remove(state, id.as_ref());
    if record.lost != 0 {
        audit::degraded().remove(state, id.as_ref());
    }
    repair::forget(state, id);
    history::forget(state, id);
    state.delete(keys::object(id));
    update_totals(state, |totals| {
        totals.objects = totals.objects.saturating_sub(1);
        totals.bytes = totals.bytes.saturating_sub(record.manifest.size);
    });
    state.shredded.push(record.put_tx);
    state.objects_removed.push(*id);
}
