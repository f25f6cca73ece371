//! Where an object's shards go: a pure function of the object, the members' failure domains
//! and free space, and the cluster's placement seed, so every node computes the same answer.
//!
//! Every member with room for a shard is ranked by a hash of (seed, object id, member key)
//! (rendezvous hashing: an object's ranking does not depend on the other members, so adding
//! a member moves few shards). Shards then go, in order, to the best-ranked member whose
//! failure domain holds the fewest of this object's shards so far: one shard per domain while
//! there are enough domains, then evenly across domains. A member never holds two shards of
//! one object. With fewer members that have room than shards, the put is refused.

use std::collections::BTreeMap;
use welkin_types::{Digest, PublicKey, hash_parts};

/// A member that could hold a shard.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// Its index in the membership.
    pub member: u32,
    /// Its key (ranks it).
    pub key: &'a PublicKey,
    /// Its failure domain.
    pub domain: &'a str,
    /// Bytes it can still take for new objects.
    pub free: u64,
}

/// Why an object cannot be placed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Fewer members than shards have room.
    #[error(
        "not enough free space: the object needs {shards} nodes with {shard_bytes} bytes free \
         each, and {fit} of the cluster's {members} nodes have that much (the most free on any \
         node is {most_free} bytes); use fewer shards, or free or add space"
    )]
    NoRoom {
        /// Shards to place (k + m).
        shards: usize,
        /// Bytes each shard takes.
        shard_bytes: u64,
        /// Members with room for one.
        fit: usize,
        /// Members in all.
        members: usize,
        /// The most bytes free on one member.
        most_free: u64,
    },
}

/// The outcome of placing an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The member for each shard, shard `i` at index `i`.
    pub members: Vec<u32>,
    /// Distinct failure domains used.
    pub domains: usize,
}

/// Places `shards` shards of `shard_bytes` each of object `object`.
pub fn place(
    seed: &Digest,
    object: &Digest,
    shards: usize,
    shard_bytes: u64,
    candidates: &[Candidate<'_>],
) -> Result<Placement, PlacementError> {
    let mut ranked: Vec<(Digest, &Candidate<'_>)> = candidates
        .iter()
        .filter(|c| c.free >= shard_bytes)
        .map(|c| {
            let score = hash_parts(&[
                b"welkin/object-placement/v1",
                seed.as_ref(),
                object.as_ref(),
                c.key.as_ref(),
            ]);
            (score, c)
        })
        .collect();
    if ranked.len() < shards {
        return Err(PlacementError::NoRoom {
            shards,
            shard_bytes,
            fit: ranked.len(),
            members: candidates.len(),
            most_free: candidates.iter().map(|c| c.free).max().unwrap_or(0),
        });
    }
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.member.cmp(&b.1.member)));
    let mut per_domain: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, candidate) in &ranked {
        per_domain.insert(candidate.domain, 0);
    }
    let mut taken = vec![false; ranked.len()];
    let mut members = Vec::with_capacity(shards);
    for _ in 0..shards {
        // The fewest shards any domain with a free member holds so far.
        let fewest = ranked
            .iter()
            .zip(&taken)
            .filter(|(_, taken)| !**taken)
            .map(|((_, c), _)| per_domain[c.domain])
            .min()
            .expect("at least as many candidates as shards");
        let (index, (_, chosen)) = ranked
            .iter()
            .enumerate()
            .find(|(i, (_, c))| !taken[*i] && per_domain[c.domain] == fewest)
            .expect("the minimum is attained");
        taken[index] = true;
        *per_domain
            .get_mut(chosen.domain)
            .expect("every domain counted") += 1;
        members.push(chosen.member);
    }
    let domains = per_domain.values().filter(|n| **n > 0).count();
    Ok(Placement { members, domains })
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
    use proptest::prelude::*;

    fn keys(n: usize) -> Vec<PublicKey> {
        (0..n as u64)
            .map(|i| PrivateKey::from_seed(i).public_key())
            .collect()
    }

    fn candidates<'a>(
        keys: &'a [PublicKey],
        domains: &'a [String],
        free: &[u64],
    ) -> Vec<Candidate<'a>> {
        keys.iter()
            .zip(domains)
            .zip(free)
            .enumerate()
            .map(|(i, ((key, domain), free))| Candidate {
                member: i as u32,
                key,
                domain,
                free: *free,
            })
            .collect()
    }

    #[test]
    fn one_shard_per_domain_while_there_are_enough() {
        let keys = keys(8);
        let domains: Vec<String> = (0..8).map(|i| format!("rack-{}", i / 2)).collect();
        let free = vec![1000; 8];
        let placed = place(
            &Digest::from([1; 32]),
            &Digest::from([2; 32]),
            4,
            10,
            &candidates(&keys, &domains, &free),
        )
        .expect("fits");
        assert_eq!(placed.domains, 4);
        let racks: std::collections::BTreeSet<_> = placed.members.iter().map(|m| m / 2).collect();
        assert_eq!(racks.len(), 4, "{placed:?}");
    }

    #[test]
    fn fewer_domains_than_shards_spread_evenly_on_distinct_nodes() {
        let keys = keys(6);
        let domains: Vec<String> = (0..6).map(|i| format!("zone-{}", i % 2)).collect();
        let free = vec![1000; 6];
        let placed = place(
            &Digest::from([1; 32]),
            &Digest::from([3; 32]),
            4,
            10,
            &candidates(&keys, &domains, &free),
        )
        .expect("fits");
        assert_eq!(placed.domains, 2);
        let in_zone0 = placed.members.iter().filter(|m| *m % 2 == 0).count();
        assert_eq!(in_zone0, 2, "{placed:?}");
        let distinct: std::collections::BTreeSet<_> = placed.members.iter().collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn too_little_space_is_refused_with_the_figures() {
        let keys = keys(4);
        let domains: Vec<String> = (0..4).map(|i| format!("d{i}")).collect();
        let free = vec![1000, 1000, 1000, 5];
        let error = place(
            &Digest::from([1; 32]),
            &Digest::from([3; 32]),
            4,
            10,
            &candidates(&keys, &domains, &free),
        )
        .expect_err("one node is full");
        assert_eq!(
            error,
            PlacementError::NoRoom {
                shards: 4,
                shard_bytes: 10,
                fit: 3,
                members: 4,
                most_free: 1000
            }
        );
        assert!(
            error.to_string().contains("3 of the cluster's 4 nodes"),
            "{error}"
        );
    }

    proptest! {
        #[test]
        fn placement_is_deterministic_distinct_and_fits(
            n in 1usize..12,
            shards in 1usize..8,
            domain_count in 1usize..5,
            seed in any::<[u8; 32]>(),
            object in any::<[u8; 32]>(),
            free in proptest::collection::vec(0u64..100, 12),
        ) {
            let keys = keys(n);
            let domains: Vec<String> = (0..n).map(|i| format!("d{}", i % domain_count)).collect();
            let cands = candidates(&keys, &domains, &free[..n]);
            let seed = Digest::from(seed);
            let object = Digest::from(object);
            let first = place(&seed, &object, shards, 50, &cands);
            // The order candidates are listed in does not matter.
            let mut reversed = cands.clone();
            reversed.reverse();
            prop_assert_eq!(&first, &place(&seed, &object, shards, 50, &reversed));
            match first {
                Ok(placed) => {
                    prop_assert_eq!(placed.members.len(), shards);
                    let distinct: std::collections::BTreeSet<_> = placed.members.iter().collect();
                    prop_assert_eq!(distinct.len(), shards);
                    for member in &placed.members {
                        prop_assert!(free[*member as usize] >= 50);
                    }
                    // Domains are used as evenly as the free members allow: no domain holds
                    // two more than another domain that still had a free member.
                    let per: Vec<usize> = (0..domain_count)
                        .map(|d| placed.members.iter().filter(|m| **m as usize % domain_count == d).count())
                        .collect();
                    for d in 0..domain_count {
                        let spare = (0..n).any(|i| i % domain_count == d && free[i] >= 50
                            && !placed.members.contains(&(i as u32)));
                        if spare {
                            prop_assert!(per.iter().all(|p| *p <= per[d] + 1), "{:?}", per);
                        }
                    }
                }
                Err(PlacementError::NoRoom { fit, .. }) => prop_assert!(fit < shards),
            }
        }
    }
}
