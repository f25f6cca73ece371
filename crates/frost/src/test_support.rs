//! Helpers shared by the tests: seeded randomness, whole key generations, signing rounds and
//! the independent verifier.

use crate::{
    Coordinator, DkgConfig, DkgRound1, DkgRound2, Index, KeyShare, PublicKeys, Round1Package,
    Round2Package, Session, SignatureShare, Signer,
};
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use std::collections::BTreeMap;

/// A deterministic generator for `seed`.
pub(crate) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Round 1 for every participant of `config`: their states and the packages as committed.
pub(crate) fn round1(
    config: &DkgConfig,
    rng: &mut ChaCha20Rng,
) -> (BTreeMap<Index, DkgRound1>, BTreeMap<Index, Round1Package>) {
    let mut states = BTreeMap::new();
    let mut packages = BTreeMap::new();
    for &me in config.participants() {
        let (state, package) = DkgRound1::start(config, me, rng).expect("round 1 starts");
        states.insert(me, state);
        packages.insert(me, package);
    }
    (states, packages)
}

/// Round-2 packages regrouped by recipient: `inbox[recipient][sender]`.
pub(crate) type Inbox = BTreeMap<Index, BTreeMap<Index, Round2Package>>;

/// Round 2 for every participant: their states and the packages delivered to each.
pub(crate) fn round2(
    states: BTreeMap<Index, DkgRound1>,
    committed: &BTreeMap<Index, Round1Package>,
) -> (BTreeMap<Index, DkgRound2>, Inbox) {
    let mut seconds = BTreeMap::new();
    let mut inbox = Inbox::new();
    for (me, state) in states {
        let (second, outgoing) = state.round2(committed).expect("round 2");
        seconds.insert(me, second);
        for (to, package) in outgoing {
            inbox.entry(to).or_default().insert(me, package);
        }
    }
    (seconds, inbox)
}

/// A whole honest key generation: every participant's share and the public keys (checked to
/// be the same for all of them and equal to what the state machine computes).
pub(crate) fn dkg(participants: &[Index], threshold: u16, seed: u8) -> (Vec<KeyShare>, PublicKeys) {
    let config = DkgConfig::new(participants.iter().copied(), threshold).expect("valid config");
    let mut rng = rng(seed);
    let (states, committed) = round1(&config, &mut rng);
    let (seconds, inbox) = round2(states, &committed);
    let expected = crate::public_keys(&config, &committed).expect("public keys");
    let mut shares = Vec::new();
    for (me, second) in seconds {
        let (share, public) = second.finish(&inbox[&me]).expect("round 3");
        assert_eq!(public, expected, "node {me} derived other public keys");
        assert!(public.holds(&share));
        shares.push(share);
    }
    (shares, expected)
}

/// Signers for every share, each with commitments issued to `coordinator` and recorded by it.
pub(crate) fn signers(
    shares: &[KeyShare],
    coordinator_index: Index,
    coordinator: &mut Coordinator,
    rng: &mut ChaCha20Rng,
) -> BTreeMap<Index, Signer> {
    let mut signers = BTreeMap::new();
    for share in shares {
        let mut signer = Signer::new(share.index(), rng).expect("signer");
        let commitments = signer.issue(coordinator_index, 4, rng).expect("issue");
        coordinator
            .add(share.index(), &commitments)
            .expect("recorded");
        signers.insert(share.index(), signer);
    }
    signers
}

/// Every chosen signer's share for `session`, honestly.
pub(crate) fn shares_for(
    session: &Session,
    coordinator: Index,
    shares: &[KeyShare],
    signers: &mut BTreeMap<Index, Signer>,
    message: &[u8],
) -> BTreeMap<Index, SignatureShare> {
    session
        .signers()
        .map(|index| {
            let key = shares.iter().find(|s| s.index() == index).expect("a share");
            let signer = signers.get_mut(&index).expect("a signer");
            let share = signer
                .sign(coordinator, key, message, session.request())
                .expect("signs");
            (index, share)
        })
        .collect()
}

/// Whether `signature` verifies under `key` with `ed25519-dalek`'s strict verifier, which
/// shares no code with this crate.
pub(crate) fn dalek_verifies(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
        .is_ok()
}
