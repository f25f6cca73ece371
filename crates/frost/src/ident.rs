//! Node indices and FROST identifiers: node `i` is identifier `i + 1`.

use crate::{Index, MAX_PARTICIPANTS};
use frost_ed25519::Identifier;

/// The FROST identifier of node `index`, or `None` past [`MAX_PARTICIPANTS`].
pub(crate) fn identifier(index: Index) -> Option<Identifier> {
    if index >= MAX_PARTICIPANTS {
        return None;
    }
    Some(Identifier::try_from(index + 1).expect("a nonzero u16 is a valid identifier"))
}

/// The node index of an identifier among `indices` (the participants of a key or a session).
pub(crate) fn index_of(identifier: &Identifier, indices: impl IntoIterator<Item = Index>) -> Index {
    indices
        .into_iter()
        .find(|&index| crate::ident::identifier(index).as_ref() == Some(identifier))
        .expect("frost names only identifiers it was given, all made from these indices")
}
