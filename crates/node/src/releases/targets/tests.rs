use super::*;
use commonware_cryptography::bls12381::{
    dkg::feldman_desmedt::deal_anonymous,
    primitives::{group::Share, sharing::Mode},
};
use commonware_utils::{N3f1, rng::TestRng, test_rng};
use std::num::NonZeroU32;
use welkin_types::hash_parts;

const ID: [u8; 32] = [9; 32];

fn cluster() -> (Sharing, Vec<Share>) {
    deal_anonymous::<Variant, N3f1>(
        test_rng(),
        Mode::NonZeroCounter,
        NonZeroU32::new(4).expect("positive"),
    )
}

fn cluster_id() -> Digest {
    hash_parts(&[b"cluster"])
}

fn targets() -> Vec<Digest> {
    (0..3u8)
        .map(|i| hash_parts(&[b"mac target", &[i]]))
        .collect()
}

/// A release with the grant and envelopes from `senders` (member index, share used to sign).
fn release(
    shares: &[Share],
    reader: &[u8; 32],
    senders: &[(u32, usize)],
    rng: &mut TestRng,
) -> Release {
    let targets = targets();
    let context = TargetsContext {
        cluster_id: cluster_id(),
        read_id: ID.into(),
        targets: &targets,
    };
    let mut release = Release {
        targets: Some(TargetsGrant {
            height: 1,
            targets: targets.clone(),
            reader: *reader,
        }),
        ..Release::default()
    };
    for &(index, share) in senders {
        let mut partials: Vec<_> = targets
            .iter()
            .map(|t| welkin_sealed::partial(&shares[share], t))
            .collect();
        if share != index as usize {
            // A liar: signs with another share but claims its own index.
            for p in &mut partials {
                p.index = shares[index as usize].index;
            }
        }
        let envelope =
            welkin_sealed::seal_partials(rng, reader, &context, &partials).expect("seals");
        release.envelopes.insert(index, envelope);
    }
    release
}

fn mac_check(
    sharing: &Sharing,
) -> impl FnMut(usize, &Digest, &ClusterSignature) -> Option<ClusterSignature> {
    let sharing = sharing.clone();
    move |_, target, signature| {
        is_cluster_signature(&sharing, target, signature).then_some(*signature)
    }
}

#[test]
fn t_honest_members_give_every_target_its_cluster_signature() {
    let (sharing, shares) = cluster();
    let mut rng = TestRng::new(1);
    let reader = ReaderKey::generate(&mut rng);
    let release = release(
        &shares,
        &reader.public(),
        &[(0, 0), (1, 1), (2, 2)],
        &mut rng,
    );
    let mut opener = TargetsOpener::new(&sharing, cluster_id(), ID.into(), reader);
    let (grant, results) = opener
        .step(&release, &mut mac_check(&sharing))
        .expect("t partials");
    assert_eq!(grant.targets, targets());
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(Option::is_some));
    assert!(opener.liars().is_empty());
}

#[test]
fn a_liar_is_named_and_a_silent_member_is_not_needed() {
    let (sharing, shares) = cluster();
    let mut rng = TestRng::new(2);
    let reader = ReaderKey::generate(&mut rng);
    // Member 3 is silent; member 1 signs with member 0's share under its own index.
    let first = release(
        &shares,
        &reader.public(),
        &[(0, 0), (1, 0), (2, 2)],
        &mut rng,
    );
    let mut opener = TargetsOpener::new(&sharing, cluster_id(), ID.into(), reader);
    assert!(
        opener.step(&first, &mut mac_check(&sharing)).is_none(),
        "two honest partials of three needed"
    );
    assert_eq!(opener.liars().len(), 1);
    assert_eq!(opener.liars()[0].0, 1);
    // Member 3 answers after all: t honest members now.
    let mut later = first.clone();
    let extra = {
        let mut rng = TestRng::new(3);
        let reader_public = later.targets.as_ref().expect("granted").reader;
        release(&shares, &reader_public, &[(3, 3)], &mut rng)
    };
    later.envelopes.extend(extra.envelopes);
    let (_, results) = opener
        .step(&later, &mut mac_check(&sharing))
        .expect("three honest members");
    assert!(results.iter().all(Option::is_some));
    assert_eq!(opener.liars().len(), 1, "each liar named once");
}

#[test]
fn an_item_the_cluster_signature_does_not_pass_blames_no_member() {
    let (sharing, shares) = cluster();
    let mut rng = TestRng::new(4);
    let reader = ReaderKey::generate(&mut rng);
    let release = release(
        &shares,
        &reader.public(),
        &[(0, 0), (1, 1), (2, 2)],
        &mut rng,
    );
    let mut opener = TargetsOpener::new(&sharing, cluster_id(), ID.into(), reader);
    // Item 1 is, say, a ciphertext the client altered: nothing opens it.
    let mut check = |at: usize, _: &Digest, _: &ClusterSignature| (at != 1).then_some(at);
    let (_, results) = opener.step(&release, &mut check).expect("t partials");
    assert_eq!(results, vec![Some(0), None, Some(2)]);
    assert!(opener.liars().is_empty());
}

#[test]
fn an_envelope_for_another_request_names_its_sender() {
    let (sharing, shares) = cluster();
    let mut rng = TestRng::new(5);
    let reader = ReaderKey::generate(&mut rng);
    let mut release = release(
        &shares,
        &reader.public(),
        &[(0, 0), (1, 1), (2, 2)],
        &mut rng,
    );
    let other = release.envelopes.get(&0).expect("sent").clone();
    release.envelopes.insert(3, other);
    let mut opener = TargetsOpener::new(&sharing, cluster_id(), ID.into(), reader);
    opener
        .step(&release, &mut mac_check(&sharing))
        .expect("three honest members");
    assert_eq!(opener.liars().len(), 1);
    assert_eq!(opener.liars()[0].0, 3);
}
