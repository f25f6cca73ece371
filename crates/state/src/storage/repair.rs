//! Repair: the state machine decides which lost shards are rebuilt, where, and when.
//!
//! An object is listed as degraded when one of its shards is lost (its holder failed an
//! audit, or never stored it in the upload window). Every block looks at a few degraded
//! objects ([`SCAN_PER_BLOCK`], from a rotating cursor) and orders repairs for at most
//! [`MAX_ORDERS_PER_BLOCK`] of them, those closest to loss first (fewest healthy shards
//! above `k`), when fewer than [`repair_threshold`] shards are healthy. An order names one
//! lost shard and a new holder: a member that holds no shard of the object at all if there
//! is one with room (the full capacity counts: the repair headroom is for this), else the
//! shard's old holder, else a member holding only a lost shard of it (never one holding a
//! healthy one: two shards on one node fall together). The placement moves at once, the old holder's copy stops counting,
//! and the new holder rebuilds the shard from `k` others and acknowledges it like an upload,
//! which clears the loss.
//!
//! Against repair storms: an order that is not acknowledged within [`ORDER_HEIGHTS`] expires
//! and the object waits a cooldown that doubles with each attempt (up to 32 intervals)
//! before it is ordered again; the loss itself is only ever marked by a decided audit, once
//! per epoch, so a node that flaps costs at most one order per object per epoch.

use super::{
    audit::{AUDIT_INTERVAL, degraded},
    dense::Dense,
    held,
    history::{self, EventKind, HistoryEvent},
    object_record,
    placement::{self, Candidate},
    records::{NodeSpace, ObjectRecord, encode_held},
    space_of, update_space,
};
use crate::{
    Env, Overlay, Snapshot, keys,
    stored::{Reader, StoredError, Writer, decode_u64},
};
use welkin_types::Digest;

/// Degraded objects looked at per block.
pub const SCAN_PER_BLOCK: u64 = 8;
/// Repairs ordered per block at most.
pub const MAX_ORDERS_PER_BLOCK: usize = 2;
/// Heights an order has to be acknowledged in.
pub const ORDER_HEIGHTS: u64 = 4 * AUDIT_INTERVAL;

/// Repair starts when fewer shards than this are healthy: every lost shard is repaired
/// (`k + m`), so an object is back at full strength after any loss. Storj repairs only below
/// a lower threshold to save traffic on wide codes; with the narrow codes of small clusters
/// (2+2 on 4 nodes) one more loss already halves the margin, so Welkin repairs at once.
pub fn repair_threshold(k: u16, m: u16) -> usize {
    usize::from(k) + usize::from(m)
}

const VERSION: u8 = 1;

/// An open repair of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairOrder {
    /// The shard to rebuild.
    pub shard: u16,
    /// The member that rebuilds and holds it.
    pub member: u32,
    /// The member that held it before.
    pub from_member: u32,
    /// When the order was made.
    pub height: u64,
    /// When it expires unacknowledged.
    pub deadline: u64,
    /// Orders made for this object so far (1 for the first).
    pub attempt: u32,
    /// No new order before this height (the cooldown after an expired one).
    pub not_before: u64,
    /// Whether it is open (false: expired, waiting out its cooldown).
    pub open: bool,
}

impl RepairOrder {
    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u16(usize::from(self.shard));
        w.u32(self.member as usize);
        w.u32(self.from_member as usize);
        w.u64(self.height);
        w.u64(self.deadline);
        w.u32(self.attempt as usize);
        w.u64(self.not_before);
        w.u8(u8::from(self.open));
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<RepairOrder, StoredError> {
        let r = &mut Reader::new("repair order", value);
        r.version(VERSION)?;
        let order = RepairOrder {
            shard: r.u16()? as u16,
            member: r.u32()? as u32,
            from_member: r.u32()? as u32,
            height: r.u64()?,
            deadline: r.u64()?,
            attempt: r.u32()? as u32,
            not_before: r.u64()?,
            open: r.bool()?,
        };
        r.end()?;
        Ok(order)
    }
}

/// Open repair orders, in a dense list of object ids (nodes read it to find their work).
pub(crate) fn orders() -> Dense<impl Fn(u64) -> Digest, impl Fn(&[u8]) -> Digest> {
    Dense {
        count: keys::repairs_count(),
        at: keys::repairs_at,
        slot_of: |item: &[u8]| {
            keys::repairs_slot(&Digest::from(<[u8; 32]>::try_from(item).unwrap_or([0; 32])))
        },
    }
}

fn order_of<S: Snapshot>(state: &Overlay<'_, S>, id: &Digest) -> Option<RepairOrder> {
    state.decoded(&keys::repair(id), RepairOrder::decode)
}

/// Looks at a few degraded objects and orders the repairs they need (see the module docs).
pub(crate) fn sweep<S: Snapshot>(env: &Env, state: &mut Overlay<'_, S>, height: u64) {
    let count = state.u64(&keys::degraded_count());
    if count == 0 {
        return;
    }
    let cursor = state.u64(&keys::repair_cursor()) % count;
    let scan = SCAN_PER_BLOCK.min(count);
    let slots: Vec<u64> = (0..scan).map(|i| (cursor + i) % count).collect();
    state.prefetch(slots.iter().map(|slot| keys::degraded_at(*slot)));
    let mut ids = Vec::with_capacity(slots.len());
    for slot in &slots {
        match state.get(&keys::degraded_at(*slot)) {
            Some(item) => match <[u8; 32]>::try_from(item) {
                Ok(id) => ids.push(Digest::from(id)),
                Err(_) => state.corrupt(
                    keys::degraded_at(*slot),
                    StoredError::new("degraded entry", format!("{} bytes", item.len())),
                ),
            },
            None => return, // read next round
        }
    }
    state.put(
        keys::repair_cursor(),
        ((cursor + scan) % count).to_be_bytes().to_vec(),
    );
    state.prefetch(
        ids.iter()
            .flat_map(|id| [keys::object(id), keys::repair(id)]),
    );
    // Expire late orders, and collect the objects that need one.
    let mut candidates: Vec<(usize, Digest, ObjectRecord)> = Vec::new();
    for id in ids {
        let Some(record) = object_record(state, &id) else {
            degraded().remove(state, id.as_ref());
            continue;
        };
        if record.lost == 0 {
            degraded().remove(state, id.as_ref());
            continue;
        }
        if let Some(mut order) = order_of(state, &id) {
            if order.open && height <= order.deadline {
                continue;
            }
            if order.open {
                order.open = false;
                let intervals = 1u64 << order.attempt.min(5);
                order.not_before = height + intervals * AUDIT_INTERVAL;
                state.put(keys::repair(&id), order.encode());
                orders().remove(state, id.as_ref());
                history::record(
                    state,
                    &id,
                    HistoryEvent {
                        kind: EventKind::RepairExpired,
                        height,
                        epoch: 0,
                        shard: order.shard,
                        member: order.member,
                        reason: format!(
                            "not acknowledged by height {} (attempt {}); next order not before \
                             height {}",
                            order.deadline, order.attempt, order.not_before
                        ),
                    },
                );
            }
            if height < order.not_before {
                continue;
            }
        }
        if record.healthy_count() >= repair_threshold(record.manifest.k, record.manifest.m) {
            continue;
        }
        candidates.push((record.healthy_count(), id, record));
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let members = env.members.len() as u32;
    state.prefetch((0..members).map(keys::storage_node));
    for (_, id, record) in candidates.into_iter().take(MAX_ORDERS_PER_BLOCK) {
        order(env, state, height, &id, record);
    }
}

fn order<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    height: u64,
    id: &Digest,
    mut record: ObjectRecord,
) {
    let Some(shard) = (0..record.placement.len()).find(|s| record.lost & (1 << s) != 0) else {
        return;
    };
    let shard_bytes = record.manifest.shard_bytes();
    let from = record.placement[shard];
    let healthy_holders: Vec<u32> = (0..record.placement.len())
        .filter(|s| record.is_stored(*s) && record.lost & (1 << s) == 0)
        .map(|s| record.placement[s])
        .collect();
    // Members placed for another shard of the object, healthy or not: a second shard there
    // would fall with the first (two of a k=2, m=1 object on one node is a loss waiting).
    let other_holders: Vec<u32> = (0..record.placement.len())
        .filter(|s| *s != shard)
        .map(|s| record.placement[s])
        .collect();
    let spaces: Vec<NodeSpace> = (0..env.members.len() as u32)
        .map(|m| space_of(state, m))
        .collect();
    let pick = |exclude_old: bool, spread: bool| {
        let candidates: Vec<Candidate<'_>> = env
            .members
            .iter()
            .zip(&spaces)
            .enumerate()
            .filter(|(m, _)| {
                let m = *m as u32;
                env.is_active(m)
                    && !healthy_holders.contains(&m)
                    && (!spread || !other_holders.contains(&m))
                    && (!exclude_old || m != from)
            })
            .map(|(m, (key, space))| Candidate {
                member: m as u32,
                key,
                domain: env.domains.get(m).map(String::as_str).unwrap_or(""),
                free: space
                    .capacity
                    .saturating_sub(space.used)
                    .saturating_sub(space.reserved)
                    .saturating_add(if m as u32 == from && record.is_stored(shard) {
                        shard_bytes
                    } else {
                        0
                    }),
            })
            .collect();
        placement::place(&Digest::from([1; 32]), id, 1, shard_bytes, &candidates)
            .ok()
            .and_then(|placed| placed.members.first().copied())
    };
    // Best a member holding nothing of the object; then its old holder; then, with no such
    // member left, one that holds only a lost shard of it.
    let Some(member) = pick(true, true)
        .or_else(|| pick(false, true))
        .or_else(|| pick(true, false))
        .or_else(|| pick(false, false))
    else {
        return; // no room anywhere: looked at again on a later pass
    };
    let previous = order_of(state, id);
    if record.is_stored(shard) {
        update_space(state, from, |space| {
            space.used = space.used.saturating_sub(shard_bytes)
        });
        held(from).remove(state, &encode_held(id, shard as u16));
        record.stored &= !(1 << shard);
    }
    update_space(state, member, |space| space.reserved += shard_bytes);
    record.placement[shard] = member;
    state.put(keys::object(id), record.encode());
    let attempt = previous.map_or(1, |p| p.attempt + 1);
    let order = RepairOrder {
        shard: shard as u16,
        member,
        from_member: from,
        height,
        deadline: height + ORDER_HEIGHTS,
        attempt,
        not_before: 0,
        open: true,
    };
    state.put(keys::repair(id), order.encode());
    orders().push(state, id.as_ref().to_vec());
    history::record(
        state,
        id,
        HistoryEvent {
            kind: EventKind::RepairOrdered,
            height,
            epoch: 0,
            shard: shard as u16,
            member,
            reason: format!(
                "attempt {attempt}, replacing member {from}, due by height {}",
                order.deadline
            ),
        },
    );
}

/// Called when `member` acknowledges `shard` of `id` at `height`: if that closes a repair, the
/// shard is no longer lost and the reservation is used. Returns whether a repair closed.
pub(crate) fn acknowledged<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    height: u64,
    id: &Digest,
    record: &mut ObjectRecord,
    member: u32,
    shard: u16,
) -> bool {
    let Some(order) = order_of(state, id) else {
        return false;
    };
    if order.shard != shard || order.member != member {
        return false;
    }
    if order.open {
        orders().remove(state, id.as_ref());
    }
    state.delete(keys::repair(id));
    record.lost &= !(1 << shard);
    if record.lost == 0 {
        degraded().remove(state, id.as_ref());
    }
    history::record(
        state,
        id,
        HistoryEvent {
            kind: EventKind::RepairDone,
            height,
            epoch: 0,
            shard,
            member,
            reason: String::new(),
        },
    );
    true
}

/// Forgets the repair state of a removed object.
pub(crate) fn forget<S: Snapshot>(state: &mut Overlay<'_, S>, id: &Digest) {
    if let Some(order) = order_of(state, id) {
        if order.open {
            orders().remove(state, id.as_ref());
        }
        state.delete(keys::repair(id));
    }
}

/// The number of open repair orders.
pub fn open_orders<S: Snapshot>(state: &Overlay<'_, S>) -> u64 {
    state
        .decoded(&keys::repairs_count(), decode_u64)
        .unwrap_or(0)
}
