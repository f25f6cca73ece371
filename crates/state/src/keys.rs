//! State keys. Every key is a SHA-256 hash over a module prefix and the key's parts, so
//! modules cannot collide and every key has the same size in the authenticated store.

use welkin_types::{Digest, Sender, TxId, hash_parts};

/// The chain parameters.
pub fn params() -> Digest {
    hash_parts(&[b"system/params"])
}

/// The member at position `index` of the membership list.
pub fn member(index: u32) -> Digest {
    hash_parts(&[b"system/member", &index.to_be_bytes()])
}

/// The number of members.
pub fn member_count() -> Digest {
    hash_parts(&[b"system/member-count"])
}

/// Marks that `sender` used `nonce`; the value is the transaction's expiry. An identifier's
/// nonces belong to the identifier, not to its keys: they survive rotations.
pub fn nonce(sender: &Sender, nonce: u64) -> Digest {
    match sender {
        Sender::Key(key) => hash_parts(&[b"system/nonce", key.as_ref(), &nonce.to_be_bytes()]),
        Sender::Identifier { prefix, .. } => hash_parts(&[
            b"system/identifier-nonce",
            prefix.as_bytes(),
            &nonce.to_be_bytes(),
        ]),
    }
}

/// The receipt of a transaction.
pub fn receipt(id: &TxId) -> Digest {
    hash_parts(&[b"system/receipt", id.as_ref()])
}

/// The number of entries in the audit log.
pub fn log_size() -> Digest {
    hash_parts(&[b"log/size"])
}

/// The height at which the audit log first held `size` entries (written only for sizes a
/// block ended at, which are exactly the sizes certified checkpoints have).
pub fn log_height(size: u64) -> Digest {
    hash_parts(&[b"log/height", &size.to_be_bytes()])
}

/// A value in a sender's own key-value namespace (a key's, or an identifier's whatever keys
/// it signs with).
pub fn kv(sender: &Sender, key: &[u8]) -> Digest {
    match sender {
        Sender::Key(public) => hash_parts(&[b"kv", public.as_ref(), key]),
        Sender::Identifier { prefix, .. } => {
            hash_parts(&[b"kv/identifier", prefix.as_bytes(), key])
        }
    }
}

/// Why a transaction's payload did not take effect (UTF-8): the reason for a `Rejected`
/// outcome, or what an `Escrowed` one waits for.
pub fn outcome_detail(id: &TxId) -> Digest {
    hash_parts(&[b"system/outcome-detail", id.as_ref()])
}

/// The key state of a KERI identifier after its latest accepted event (see [`crate::stored`]).
pub fn id_state(prefix: &str) -> Digest {
    hash_parts(&[b"id/state", prefix.as_bytes()])
}

/// The key state of a KERI identifier after its event `sn` (see [`crate::stored`]).
pub fn id_state_at(prefix: &str, sn: u64) -> Digest {
    hash_parts(&[b"id/state-at", prefix.as_bytes(), &sn.to_be_bytes()])
}

/// The accepted key event message of an identifier at `sn`.
pub fn id_event(prefix: &str, sn: u64) -> Digest {
    hash_parts(&[b"id/event", prefix.as_bytes(), &sn.to_be_bytes()])
}

/// The id of the transaction that carried the accepted event `sn` of an identifier.
pub fn id_event_tx(prefix: &str, sn: u64) -> Digest {
    hash_parts(&[b"id/event-tx", prefix.as_bytes(), &sn.to_be_bytes()])
}

/// The SAID (qb64) that `delegator` anchored for event `sn` of `delegate`.
pub fn id_anchor(delegator: &str, delegate: &str, sn: u64) -> Digest {
    hash_parts(&[
        b"id/anchor",
        delegator.as_bytes(),
        b"/",
        delegate.as_bytes(),
        &sn.to_be_bytes(),
    ])
}

/// Key event messages waiting for what comes before (`sn` of `prefix`): see [`crate::escrow`].
pub fn id_escrow(prefix: &str, sn: u64) -> Digest {
    hash_parts(&[b"id/escrow", prefix.as_bytes(), &sn.to_be_bytes()])
}

/// The number of duplicity records of an identifier.
pub fn id_duplicity_count(prefix: &str) -> Digest {
    hash_parts(&[b"id/duplicity-count", prefix.as_bytes()])
}

/// Duplicity record `index` of an identifier: the conflicting message.
pub fn id_duplicity(prefix: &str, index: u64) -> Digest {
    hash_parts(&[b"id/duplicity", prefix.as_bytes(), &index.to_be_bytes()])
}

/// Marks that the conflicting event `said` at `sn` is already recorded.
pub fn id_duplicity_seen(prefix: &str, sn: u64, said: &str) -> Digest {
    hash_parts(&[
        b"id/duplicity-seen",
        prefix.as_bytes(),
        &sn.to_be_bytes(),
        said.as_bytes(),
    ])
}

/// The sequence number (u64) of the event of `delegator` that first anchored the SAID now at
/// [`id_anchor`]: a recovery rotation superseding that event removes the anchor, while an
/// anchor an earlier event also made stays.
pub fn id_anchor_source(delegator: &str, delegate: &str, sn: u64) -> Digest {
    hash_parts(&[
        b"id/anchor-source",
        delegator.as_bytes(),
        b"/",
        delegate.as_bytes(),
        &sn.to_be_bytes(),
    ])
}

/// The number of events of an identifier that recovery rotations superseded.
pub fn id_superseded_count(prefix: &str) -> Digest {
    hash_parts(&[b"id/superseded-count", prefix.as_bytes()])
}

/// Superseded event `index` of an identifier (oldest first): see
/// [`crate::identity::SupersededEvent`] for the value.
pub fn id_superseded(prefix: &str, index: u64) -> Digest {
    hash_parts(&[b"id/superseded", prefix.as_bytes(), &index.to_be_bytes()])
}

/// Marks that the event `said` at `sn` of an identifier was superseded.
pub fn id_superseded_seen(prefix: &str, sn: u64, said: &str) -> Digest {
    hash_parts(&[
        b"id/superseded-seen",
        prefix.as_bytes(),
        &sn.to_be_bytes(),
        said.as_bytes(),
    ])
}

/// The number of escrowed key event messages of an identifier (u64).
pub fn id_escrow_count(prefix: &str) -> Digest {
    hash_parts(&[b"id/escrow-count", prefix.as_bytes()])
}

/// The number of escrowed key event messages of all identifiers (u64).
pub fn id_escrow_total() -> Digest {
    hash_parts(&[b"id/escrow-total"])
}

/// The sequence number of the first batch of an expiry queue still kept (u64).
pub fn queue_head(queue: &[u8]) -> Digest {
    hash_parts(&[b"expiry/head", queue])
}

/// The sequence number the next batch of an expiry queue gets (u64).
pub fn queue_tail(queue: &[u8]) -> Digest {
    hash_parts(&[b"expiry/tail", queue])
}

/// Batch `seq` of an expiry queue.
pub fn queue_batch(queue: &[u8], seq: u64) -> Digest {
    hash_parts(&[b"expiry/batch", queue, &seq.to_be_bytes()])
}

/// The secrets engine mounted at `path`.
pub fn secrets_mount(path: &str) -> Digest {
    hash_parts(&[b"secrets/mount", path.as_bytes()])
}

/// The sorted list of mount paths.
pub fn secrets_mounts() -> Digest {
    hash_parts(&[b"secrets/mounts"])
}

/// Disabled mounts whose data is still to be deleted (see `secrets::teardown`).
pub fn secrets_teardown() -> Digest {
    hash_parts(&[b"secrets/teardown"])
}

/// A KV v2 secret's metadata, in the mount enabled with id `mount`.
pub fn kv_meta(mount: &Digest, path: &str) -> Digest {
    hash_parts(&[b"secrets/kv/meta", mount.as_ref(), path.as_bytes()])
}

/// One version of a KV v2 secret: its target and sealed value.
pub fn kv_value(mount: &Digest, path: &str, version: u64) -> Digest {
    hash_parts(&[
        b"secrets/kv/value",
        mount.as_ref(),
        path.as_bytes(),
        &version.to_be_bytes(),
    ])
}

/// The entries of a KV v2 directory (`""` is the mount's top, else ends with `/`).
pub fn kv_dir(mount: &Digest, dir: &str) -> Digest {
    hash_parts(&[b"secrets/kv/dir", mount.as_ref(), dir.as_bytes()])
}

/// Page `page` of a KV v2 directory's entries (see `secrets::dir`).
pub fn kv_dir_page(mount: &Digest, dir: &str, page: u32) -> Digest {
    hash_parts(&[
        b"secrets/kv/dir-page",
        mount.as_ref(),
        dir.as_bytes(),
        &page.to_be_bytes(),
    ])
}

/// Where `entry` sits in the pages of a KV v2 directory (see `secrets::dir`).
pub fn kv_dir_slot(mount: &Digest, dir: &str, entry: &str) -> Digest {
    hash_parts(&[
        b"secrets/kv/dir-slot",
        mount.as_ref(),
        dir.as_bytes(),
        entry.as_bytes(),
    ])
}

/// A token, by its public key.
pub fn token(key: &welkin_types::PublicKey) -> Digest {
    hash_parts(&[b"secrets/token", key.as_ref()])
}

/// The public key of the token with `accessor`.
pub fn token_accessor(accessor: &str) -> Digest {
    hash_parts(&[b"secrets/token-accessor", accessor.as_bytes()])
}

/// An ACL policy, by name (welkin-policy encoding).
pub fn policy(name: &str) -> Digest {
    hash_parts(&[b"secrets/policy", name.as_bytes()])
}

/// The sorted list of stored policy names.
pub fn policies() -> Digest {
    hash_parts(&[b"secrets/policies"])
}

/// A wrapped response, by its wrapping token's public key.
pub fn wrapping(key: &welkin_types::PublicKey) -> Digest {
    hash_parts(&[b"secrets/wrapping", key.as_ref()])
}

/// A transit key, in the mount enabled with id `mount`.
pub fn transit_key(mount: &Digest, name: &str) -> Digest {
    hash_parts(&[b"secrets/transit/key", mount.as_ref(), name.as_bytes()])
}

/// The key generation in progress for `version` of the transit key with id `key`.
pub fn transit_dkg(key: &Digest, version: u64) -> Digest {
    hash_parts(&[b"secrets/transit/dkg", key.as_ref(), &version.to_be_bytes()])
}

/// The group public keys (welkin-frost encoding) of `version` of the signing key with id
/// `key`: what a coordinator checks signature shares against.
pub fn transit_public_keys(key: &Digest, version: u64) -> Digest {
    hash_parts(&[
        b"secrets/transit/public-keys",
        key.as_ref(),
        &version.to_be_bytes(),
    ])
}

/// The key generations the nodes have to run (see
/// [`crate::secrets::transit::dkg::Open`]): every open one, oldest first.
pub fn transit_dkgs_open() -> Digest {
    hash_parts(&[b"secrets/transit/dkgs-open"])
}

/// The sorted names of a transit mount's keys.
pub fn transit_keys(mount: &Digest) -> Digest {
    hash_parts(&[b"secrets/transit/keys", mount.as_ref()])
}

/// The policies and TTL a KERI identifier's logins get.
pub fn keri_role(prefix: &str) -> Digest {
    hash_parts(&[b"secrets/keri-role", prefix.as_bytes()])
}

/// A KERI identifier's registered X25519 encryption key, for values sealed to it.
pub fn encryption_key(prefix: &str) -> Digest {
    hash_parts(&[b"secrets/encryption-key", prefix.as_bytes()])
}

/// The recipients of a recipient-sealed KV v2 version and their envelope.
pub fn kv_recipients(mount: &Digest, path: &str, version: u64) -> Digest {
    hash_parts(&[
        b"secrets/kv/recipients",
        mount.as_ref(),
        path.as_bytes(),
        &version.to_be_bytes(),
    ])
}

/// A member's storage space: its offer and what it holds or has reserved (see
/// [`crate::storage`]).
pub fn storage_node(member: u32) -> Digest {
    hash_parts(&[b"storage/node", &member.to_be_bytes()])
}

/// An object's record: its manifest, owner, placement and which shards are stored.
pub fn object(id: &Digest) -> Digest {
    hash_parts(&[b"storage/object", id.as_ref()])
}

/// An object's recent audits and repairs (see [`crate::storage::history`]).
pub fn object_history(id: &Digest) -> Digest {
    hash_parts(&[b"storage/object-history", id.as_ref()])
}

/// The number of objects an owner has.
pub fn owned_count(owner: &welkin_types::PublicKey) -> Digest {
    hash_parts(&[b"storage/owned-count", owner.as_ref()])
}

/// The object in slot `slot` of an owner's list.
pub fn owned_at(owner: &welkin_types::PublicKey, slot: u64) -> Digest {
    hash_parts(&[b"storage/owned", owner.as_ref(), &slot.to_be_bytes()])
}

/// The slot of an object in its owner's list.
pub fn owned_slot(id: &Digest) -> Digest {
    hash_parts(&[b"storage/owned-slot", id.as_ref()])
}

/// The number of shards a member holds (acknowledged).
pub fn held_count(member: u32) -> Digest {
    hash_parts(&[b"storage/held-count", &member.to_be_bytes()])
}

/// The shard (object id and index) in slot `slot` of a member's list.
pub fn held_at(member: u32, slot: u64) -> Digest {
    hash_parts(&[b"storage/held", &member.to_be_bytes(), &slot.to_be_bytes()])
}

/// The slot of a shard in its holder's list.
pub fn held_slot(member: u32, id: &Digest, shard: u16) -> Digest {
    hash_parts(&[
        b"storage/held-slot",
        &member.to_be_bytes(),
        id.as_ref(),
        &shard.to_be_bytes(),
    ])
}

/// The cluster's storage totals (objects, bytes).
pub fn storage_totals() -> Digest {
    hash_parts(&[b"storage/totals"])
}

/// The current audit epoch (see [`crate::storage::audit`]).
pub fn audit_epoch() -> Digest {
    hash_parts(&[b"storage/audit-epoch"])
}

/// A member's challenge in the current audit epoch.
pub fn audit_challenge(member: u32) -> Digest {
    hash_parts(&[b"storage/audit-challenge", &member.to_be_bytes()])
}

/// A member's audit history in brief.
pub fn audit_record(member: u32) -> Digest {
    hash_parts(&[b"storage/audit-record", &member.to_be_bytes()])
}

/// The number of objects with a lost shard.
pub fn degraded_count() -> Digest {
    hash_parts(&[b"storage/degraded-count"])
}

/// The object in slot `slot` of the degraded list.
pub fn degraded_at(slot: u64) -> Digest {
    hash_parts(&[b"storage/degraded", &slot.to_be_bytes()])
}

/// The slot of an object in the degraded list.
pub fn degraded_slot(id: &Digest) -> Digest {
    hash_parts(&[b"storage/degraded-slot", id.as_ref()])
}

/// An object's repair order (open, or expired and cooling down).
pub fn repair(id: &Digest) -> Digest {
    hash_parts(&[b"storage/repair", id.as_ref()])
}

/// Where the next block's look at the degraded list starts.
pub fn repair_cursor() -> Digest {
    hash_parts(&[b"storage/repair-cursor"])
}

/// The number of open repair orders.
pub fn repairs_count() -> Digest {
    hash_parts(&[b"storage/repairs-count"])
}

/// The object in slot `slot` of the open repair orders.
pub fn repairs_at(slot: u64) -> Digest {
    hash_parts(&[b"storage/repairs", &slot.to_be_bytes()])
}

/// The slot of an object in the open repair orders.
pub fn repairs_slot(id: &Digest) -> Digest {
    hash_parts(&[b"storage/repairs-slot", id.as_ref()])
}

/// The cluster key generation in progress (see [`crate::keygen`]).
pub fn keygen() -> Digest {
    hash_parts(&[b"membership/keygen"])
}

/// The cluster key a dealerless cluster generated: its round's output and the logs it was
/// computed from (see [`crate::keygen`]).
pub fn cluster_key() -> Digest {
    hash_parts(&[b"membership/cluster-key"])
}

/// Where the epochs stand: the roster's changes, the resharing in progress (see
/// [`crate::epochs`]).
pub fn epoch() -> Digest {
    hash_parts(&[b"membership/epoch"])
}

/// The key output that holds the current shares after a resharing, with the logs it was
/// computed from (see [`crate::epochs`]).
pub fn epoch_key() -> Digest {
    hash_parts(&[b"membership/epoch-key"])
}

/// The operators that voted to remove a member, by the member's key (see
/// [`crate::membership`]).
pub fn membership_removal(member: &welkin_types::PublicKey) -> Digest {
    use commonware_codec::Encode as _;
    hash_parts(&[b"membership/removal", member.encode().as_ref()])
}

/// A join request, by id (see [`crate::membership`]).
pub fn membership_request(id: &Digest) -> Digest {
    hash_parts(&[b"membership/request", id.as_ref()])
}

/// The ids of the join requests still waiting for approvals.
pub fn membership_open() -> Digest {
    hash_parts(&[b"membership/open"])
}

/// The admitted joins and the leaves that take effect at the next epoch.
pub fn membership_changes() -> Digest {
    hash_parts(&[b"membership/changes"])
}
