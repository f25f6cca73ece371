use super::{Stored, key, layout, plaintext};
use crate::{
    AuditError, AuditProof, BLOCK_KEY, Layout, MAX_PATH, Sample, SampleProof, ShardTree,
    block_hash, challenges, prove, verify, verify_audit,
};
use commonware_codec::{Encode as _, EncodeSize as _};
use proptest::prelude::*;

fn block(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8) ^ seed ^ (i >> 10) as u8)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_chunk_proves_and_any_flipped_byte_fails(
        units in 1usize..=(300 * 16),
        neighbours in 0usize..6,
        at in 0usize..6,
        flip in any::<usize>(),
    ) {
        let len = units * 64;
        let mine = block(len, 1);
        // A shard of a few blocks with `mine` among them.
        let count = neighbours + 1;
        let segment = (at % count) as u64;
        let leaves: Vec<[u8; 32]> = (0..count)
            .map(|i| if i as u64 == segment { block_hash(&mine) } else { block_hash(&block(640, i as u8)) })
            .collect();
        let tree = ShardTree::new(leaves);
        let root = tree.root();
        prop_assert_eq!(tree.leaves()[segment as usize], *blake3::keyed_hash(&BLOCK_KEY, &mine).as_bytes());
        let chunks = len.div_ceil(1024) as u32;
        for chunk in 0..chunks {
            let sample = Sample { segment, chunk };
            let proof = prove(&sample, &mine, &tree).expect("in range");
            verify(&root, count as u64, len as u64, &sample, &proof).expect("an honest proof verifies");
            let mut bad = proof.clone();
            let i = flip % bad.data.len();
            bad.data[i] ^= 1 << (flip % 8);
            prop_assert!(verify(&root, count as u64, len as u64, &sample, &bad).is_err());
            for entry in 0..proof.block_path.len() {
                let mut bad = proof.clone();
                bad.block_path[entry][flip % 32] ^= 0x40;
                prop_assert!(verify(&root, count as u64, len as u64, &sample, &bad).is_err());
            }
            for entry in 0..proof.shard_path.len() {
                let mut bad = proof.clone();
                bad.shard_path[entry][flip % 32] ^= 0x40;
                prop_assert!(verify(&root, count as u64, len as u64, &sample, &bad).is_err());
            }
        }
        let past = Sample { segment, chunk: chunks };
        let error = prove(&past, &mine, &tree).expect_err("refused");
        prop_assert!(matches!(error, AuditError::ChunkOutOfRange { .. }), "{}", error);
    }
}

#[test]
fn proofs_are_refused_for_the_wrong_sample_length_or_block() {
    let mine = block(5 * 1024 + 64, 3);
    let tree = ShardTree::new(vec![block_hash(&mine), [1; 32], [2; 32]]);
    let root = tree.root();
    let sample = Sample {
        segment: 0,
        chunk: 5,
    };
    let proof = prove(&sample, &mine, &tree).expect("in range");
    assert_eq!(proof.data.len(), 64);
    let len = mine.len() as u64;
    verify(&root, 3, len, &sample, &proof).expect("verifies");
    let other = Sample {
        segment: 0,
        chunk: 4,
    };
    assert_eq!(
        verify(&root, 3, len, &other, &proof)
            .expect_err("refused")
            .to_string(),
        "the proof answers segment 0 chunk 5, the challenge was segment 0 chunk 4"
    );
    assert_eq!(
        verify(&root, 3, len + 64, &sample, &proof)
            .expect_err("refused")
            .to_string(),
        "segment 0 chunk 5: 64 bytes of data, the chunk has 128"
    );
    assert!(matches!(
        verify(&root, 3, len - 64, &sample, &proof),
        Err(AuditError::ChunkOutOfRange { .. })
    ));
    assert_eq!(
        verify(&root, 3, 100, &sample, &proof)
            .expect_err("refused")
            .to_string(),
        "block length 100 is not a positive multiple of 64"
    );
    assert!(matches!(
        verify(&root, 2, len, &sample, &proof),
        Err(AuditError::Root { .. })
    ));
    let mut short = proof.clone();
    short.block_path.pop();
    assert!(matches!(
        verify(&root, 3, len, &sample, &short),
        Err(AuditError::BlockPath { .. })
    ));
    // One-chunk blocks prove with the whole block and no block path.
    let small = block(640, 9);
    let tree = ShardTree::new(vec![block_hash(&small)]);
    let first = Sample {
        segment: 0,
        chunk: 0,
    };
    let proof = prove(&first, &small, &tree).expect("in range");
    assert!(proof.block_path.is_empty() && proof.shard_path.is_empty());
    verify(&tree.root(), 1, 640, &first, &proof).expect("verifies");
}

#[test]
fn challenges_are_deterministic_distinct_and_in_range() {
    let layout = Layout {
        segment_bytes: 64 * 1024,
        ..layout(2, 2)
    };
    let size = 50 * layout.plaintext_per_segment() + 3000;
    let segments = layout.segments(size);
    let a = challenges(&[1; 32], &layout, size, 30).expect("valid");
    assert_eq!(a, challenges(&[1; 32], &layout, size, 30).expect("valid"));
    assert_eq!(a.len(), 30);
    let b = challenges(&[2; 32], &layout, size, 30).expect("valid");
    assert_ne!(a, b);
    for sample in a.iter().chain(&b) {
        assert!(sample.segment < segments);
        let chunks =
            u64::from(layout.block_bytes(size, sample.segment).expect("in range")).div_ceil(1024);
        assert!(u64::from(sample.chunk) < chunks, "{sample:?}");
    }
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), a.len());
    // Over many seeds every segment, the short last one included, is sampled.
    let mut seen = vec![false; segments as usize];
    for seed in 0..40u8 {
        for sample in challenges(&[seed; 32], &layout, size, 30).expect("valid") {
            seen[sample.segment as usize] = true;
        }
    }
    assert!(seen.iter().all(|s| *s));
    // A shard with fewer chunks than samples: every chunk, once.
    let tiny = challenges(&[1; 32], &layout, 10, 30).expect("valid");
    assert_eq!(
        tiny,
        vec![Sample {
            segment: 0,
            chunk: 0
        }]
    );
    assert_eq!(
        challenges(&[1; 32], &layout, size, 257)
            .expect_err("refused")
            .to_string(),
        "samples must be at most 256, got 257"
    );
}

/// A stored object and an honest audit answer for shard 1.
fn answered(seed: &[u8; 32]) -> (Stored, [u8; 32], AuditProof) {
    let layout = layout(2, 2);
    let size = 5 * layout.plaintext_per_segment() + 2000;
    let stored = Stored::new(layout, &key(8), &plaintext(size, 4));
    let tree = ShardTree::new(stored.shards[1].block_hashes.clone());
    let samples = challenges(seed, &layout, size, 30)
        .expect("valid")
        .iter()
        .map(|sample| {
            let block = &stored.segments[sample.segment as usize].blocks[1];
            prove(sample, block, &tree).expect("in range")
        })
        .collect();
    let proof = AuditProof {
        version: 1,
        samples,
    };
    (stored, tree.root(), proof)
}

#[test]
fn an_audit_answer_verifies_and_round_trips() {
    let seed = [5; 32];
    let (stored, root, proof) = answered(&seed);
    let (layout, size) = (stored.layout, stored.size);
    verify_audit(&root, &layout, size, &seed, 30, &proof).expect("honest");
    let bytes = proof.encode();
    assert_eq!(bytes.len(), proof.encode_size());
    let decoded: AuditProof = welkin_decode(&bytes).expect("decodes");
    assert_eq!(decoded, proof);
    // Another seed's challenge is not answered by this proof.
    assert!(verify_audit(&root, &layout, size, &[6; 32], 30, &proof).is_err());
    assert_eq!(
        verify_audit(&root, &layout, size, &seed, 29, &proof)
            .expect_err("refused")
            .to_string(),
        "the proof answers 30 samples, the challenge has 29"
    );
    let mut forged = proof.clone();
    forged.samples[3].data[0] ^= 1;
    assert!(verify_audit(&root, &layout, size, &seed, 30, &forged).is_err());
}

fn welkin_decode(bytes: &[u8]) -> Result<AuditProof, commonware_codec::Error> {
    use commonware_codec::Decode as _;
    AuditProof::decode_cfg(commonware_codec::Copying(bytes), &())
}

#[test]
fn decoding_is_bounded() {
    let (_, _, proof) = answered(&[5; 32]);
    let mut version = proof.encode().to_vec();
    version[0] = 2;
    assert!(welkin_decode(&version).is_err());
    let sample = |data: usize, path: usize| SampleProof {
        segment: 0,
        chunk: 0,
        data: vec![0; data],
        block_path: vec![[0; 32]; path],
        shard_path: Vec::new(),
    };
    let one = |s: SampleProof| AuditProof {
        version: 1,
        samples: vec![s],
    };
    assert!(welkin_decode(&one(sample(1024, MAX_PATH)).encode()).is_ok());
    assert!(welkin_decode(&one(sample(1025, 0)).encode()).is_err());
    assert!(welkin_decode(&one(sample(0, MAX_PATH + 1)).encode()).is_err());
    let many = AuditProof {
        version: 1,
        samples: vec![sample(0, 0); 257],
    };
    assert!(welkin_decode(&many.encode()).is_err());
    let bytes = proof.encode();
    assert!(welkin_decode(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn the_audit_encoding_is_frozen() {
    // A change here is a wire-format change: bump AUDIT_PROOF_VERSION, then update the fixture.
    let (_, root, proof) = answered(&[5; 32]);
    let first = proof.samples[0].encode();
    assert_eq!(
        [
            hex::encode(root),
            hex::encode(&first[..12]),
            hex::encode(blake3::hash(&proof.encode()).as_bytes()),
        ],
        [
            "cb084727c0d3abfbb94b65851da7824db6fb6fa922b781e650dfe0179959353b",
            // Segment 2 (u64), chunk 3 (u32), big-endian.
            "000000000000000200000003",
            "8af9e1804b9fcbf5426311a80c75f5dc1e6aa60df43833e1ac2939004f8b5317",
        ]
    );
}
