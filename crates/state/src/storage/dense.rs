//! Dense lists in state: a count, items in slots `0..count`, and one slot record per item,
//! so that adding or removing an item costs a few writes whatever the list's length, and a
//! slot can be picked at random (audits pick shards this way). A removed item's slot is
//! filled by the last item.

use crate::{Overlay, Snapshot, stored::decode_u64};
use welkin_types::Digest;

/// The keys of one list.
pub(crate) struct Dense<At, SlotOf> {
    /// Where the count is.
    pub(crate) count: Digest,
    /// Where the item in a slot is.
    pub(crate) at: At,
    /// Where an item's slot record is, from the item's bytes.
    pub(crate) slot_of: SlotOf,
}

impl<At: Fn(u64) -> Digest, SlotOf: Fn(&[u8]) -> Digest> Dense<At, SlotOf> {
    /// Appends `item` (the caller makes sure it is not in the list).
    pub(crate) fn push<S: Snapshot>(&self, state: &mut Overlay<'_, S>, item: Vec<u8>) {
        let count = state.u64(&self.count);
        state.put((self.slot_of)(&item), count.to_be_bytes().to_vec());
        state.put((self.at)(count), item);
        state.put(self.count, (count + 1).to_be_bytes().to_vec());
    }

    /// Removes `item` if it is in the list; returns whether it was. Needs up to three read
    /// rounds (the slot, then the count and last item).
    pub(crate) fn remove<S: Snapshot>(&self, state: &mut Overlay<'_, S>, item: &[u8]) -> bool {
        let slot_key = (self.slot_of)(item);
        let Some(slot) = state.decoded(&slot_key, decode_u64) else {
            return false;
        };
        let count = state.u64(&self.count);
        let Some(last_slot) = count.checked_sub(1) else {
            return false;
        };
        if slot != last_slot {
            let Some(last) = state.get(&(self.at)(last_slot)).map(<[u8]>::to_vec) else {
                return false; // still to be read
            };
            state.put((self.slot_of)(&last), slot.to_be_bytes().to_vec());
            state.put((self.at)(slot), last);
        }
        state.delete((self.at)(last_slot));
        state.delete(slot_key);
        state.put(self.count, last_slot.to_be_bytes().to_vec());
        true
    }
}
