//! The stored encodings of the storage module.
//!
//! ```text
//! NodeSpace    := 0x01 | capacity u64 | used u64 | reserved u64
//! ObjectRecord := 0x01 | owner [32] | put_tx [32] | height u64 | status u8
//!               | manifest (u32 length, ObjectManifest with the key detached)
//!               | placement (u16 count, u32 member*) | stored bitmap u64 | lost bitmap u64
//! HeldShard    := object [32] | shard u16
//! Totals       := 0x01 | objects u64 | bytes u64
//! ```

use crate::stored::{Reader, StoredError, Writer, read_list, write_list};
use commonware_codec::Encode as _;
use welkin_types::{Digest, PublicKey, TxId, storage::ObjectManifest};

const VERSION: u8 = 1;

/// Percent of a node's capacity that new objects may fill; the rest is kept for repairs.
pub const PUT_SHARE_PERCENT: u64 = 90;

/// A member's storage space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeSpace {
    /// Bytes the node offered.
    pub capacity: u64,
    /// Bytes of the shards it acknowledged.
    pub used: u64,
    /// Bytes of shards placed on it and not acknowledged yet.
    pub reserved: u64,
}

impl NodeSpace {
    /// Bytes a new object may still take on this node (the repair headroom excluded).
    pub fn free_for_puts(&self) -> u64 {
        (self.capacity / 100 * PUT_SHARE_PERCENT)
            .saturating_sub(self.used)
            .saturating_sub(self.reserved)
    }

    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.capacity);
        w.u64(self.used);
        w.u64(self.reserved);
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<NodeSpace, StoredError> {
        let r = &mut Reader::new("node storage space", value);
        r.version(VERSION)?;
        let space = NodeSpace {
            capacity: r.u64()?,
            used: r.u64()?,
            reserved: r.u64()?,
        };
        r.end()?;
        Ok(space)
    }
}

/// Where an object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectStatus {
    /// The manifest is committed; some placed nodes have not acknowledged their shards.
    Pending,
    /// Every placed shard was acknowledged.
    Stored,
    /// The upload window closed with at least `k` but not all shards acknowledged: the object
    /// is readable, and the missing shards are to be repaired.
    Degraded,
}

impl ObjectStatus {
    /// The name used in JSON and listings.
    pub fn name(self) -> &'static str {
        match self {
            ObjectStatus::Pending => "pending",
            ObjectStatus::Stored => "stored",
            ObjectStatus::Degraded => "degraded",
        }
    }

    fn byte(self) -> u8 {
        match self {
            ObjectStatus::Pending => 1,
            ObjectStatus::Stored => 2,
            ObjectStatus::Degraded => 3,
        }
    }
}

/// Everything the state knows of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRecord {
    /// Who put it (and alone may delete it).
    pub owner: PublicKey,
    /// The transaction that committed the manifest (its sealed key is carried beside it).
    pub put_tx: TxId,
    /// The height it was committed at.
    pub height: u64,
    /// Where it is in its life.
    pub status: ObjectStatus,
    /// The manifest, its sealed key as a digest only.
    pub manifest: ObjectManifest,
    /// The member holding each shard, shard `i` at index `i`.
    pub placement: Vec<u32>,
    /// Bit `i` is set once shard `i`'s holder acknowledged it.
    pub stored: u64,
    /// Bit `i` is set once shard `i`'s holder failed an audit of it: the shard counts as
    /// lost until it is repaired.
    pub lost: u64,
}

impl ObjectRecord {
    /// Whether shard `shard` was acknowledged.
    pub fn is_stored(&self, shard: usize) -> bool {
        shard < 64 && self.stored & (1 << shard) != 0
    }

    /// How many shards were acknowledged.
    pub fn stored_count(&self) -> usize {
        self.stored.count_ones() as usize
    }

    /// How many shards are stored and not lost.
    pub fn healthy_count(&self) -> usize {
        (self.stored & !self.lost).count_ones() as usize
    }

    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.raw(self.owner.as_ref());
        w.raw(self.put_tx.as_ref());
        w.u64(self.height);
        w.u8(self.status.byte());
        let mut manifest = self.manifest.clone();
        manifest.sealed_key = manifest.sealed_key.detach();
        let manifest = manifest.encode();
        w.u32(manifest.len());
        w.raw(&manifest);
        write_list(&mut w, &self.placement, |w, member| w.u32(*member as usize));
        w.u64(self.stored);
        w.u64(self.lost);
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<ObjectRecord, StoredError> {
        let r = &mut Reader::new("object record", value);
        r.version(VERSION)?;
        let owner = welkin_types::decode::<PublicKey>(r.raw(32)?)
            .map_err(|e| r.error(format!("owner key: {e}")))?;
        let put_tx = Digest::from(r.bytes32()?);
        let height = r.u64()?;
        let status = match r.u8()? {
            1 => ObjectStatus::Pending,
            2 => ObjectStatus::Stored,
            3 => ObjectStatus::Degraded,
            other => return Err(r.error(format!("status {other}"))),
        };
        let len = r.u32()?;
        let manifest = welkin_types::decode::<ObjectManifest>(r.raw(len)?)
            .map_err(|e| r.error(format!("manifest: {e}")))?;
        let placement = read_list(r, |r| Ok(r.u32()? as u32))?;
        let stored = r.u64()?;
        let lost = r.u64()?;
        r.end()?;
        if placement.len() != manifest.shards() {
            return Err(r.error(format!(
                "{} placements for {} shards",
                placement.len(),
                manifest.shards()
            )));
        }
        Ok(ObjectRecord {
            owner,
            put_tx,
            height,
            status,
            manifest,
            placement,
            stored,
            lost,
        })
    }
}

/// Encodes a held shard (an entry of a member's list).
pub fn encode_held(object: &Digest, shard: u16) -> Vec<u8> {
    let mut bytes = object.as_ref().to_vec();
    bytes.extend_from_slice(&shard.to_be_bytes());
    bytes
}

/// Decodes a held shard.
pub fn decode_held(value: &[u8]) -> Result<(Digest, u16), StoredError> {
    let r = &mut Reader::new("held shard", value);
    let object = Digest::from(r.bytes32()?);
    let shard = r.u16()? as u16;
    r.end()?;
    Ok((object, shard))
}

/// The cluster's storage totals: objects committed and their plaintext bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Objects with a record.
    pub objects: u64,
    /// Their plaintext bytes.
    pub bytes: u64,
}

impl Totals {
    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.objects);
        w.u64(self.bytes);
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<Totals, StoredError> {
        let r = &mut Reader::new("storage totals", value);
        r.version(VERSION)?;
        let totals = Totals {
            objects: r.u64()?,
            bytes: r.u64()?,
        };
        r.end()?;
        Ok(totals)
    }
}
