use super::{SEGMENT, Stored, key, layout, plaintext};
use crate::{
    BlockFault, DecodeError, EncodeError, Encoder, Layout, block_hash, content_id, decode_segment,
    encode_reader, rebuild_blocks, shard_root,
};
use proptest::prelude::*;

/// Sizes worth covering: empty, one byte, exact segment multiples and their neighbours,
/// and anything up to three and a half segments.
fn sizes() -> impl Strategy<Value = u64> {
    let per = u64::from(SEGMENT - 16);
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(per),
        Just(2 * per),
        Just(2 * per + 1),
        Just(per - 1),
        0..(7 * per / 2),
    ]
}

/// A random choice of `count` distinct shards out of `shards`.
fn pick(shards: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..shards).collect();
    let mut state = seed | 1;
    for i in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = i + (state % (shards - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(count);
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_k_blocks_rebuild_every_segment(
        size in sizes(),
        k in 1u16..=4,
        m in 1u16..=3,
        pattern in any::<u64>(),
    ) {
        let (layout, key) = (layout(k, m), key(size));
        let data = plaintext(size, 7);
        let stored = Stored::new(layout, &key, &data);
        prop_assert_eq!(stored.segments.len() as u64, layout.segments(size));
        for shard in &stored.shards {
            prop_assert_eq!(shard.root, shard_root(&shard.block_hashes));
        }
        let mut decoded = Vec::new();
        for segment in 0..layout.segments(size) {
            let present = pick(layout.shards(), usize::from(k), pattern ^ segment);
            let blocks = stored.blocks(segment, &present);
            let plain = decode_segment(&layout, &key, size, segment, &blocks, &stored.expected(segment))
                .expect("k good blocks decode");
            decoded.extend_from_slice(&plain);
        }
        prop_assert_eq!(decoded, data);
    }

    #[test]
    fn a_corrupt_block_is_named_and_never_changes_the_output(
        size in sizes(),
        k in 1u16..=3,
        m in 1u16..=3,
        pattern in any::<u64>(),
        flip in any::<usize>(),
    ) {
        let (layout, key) = (layout(k, m), key(size ^ 1));
        let data = plaintext(size, 3);
        let stored = Stored::new(layout, &key, &data);
        let segment = pattern % layout.segments(size);
        // k + 1 blocks, one of them corrupt: the other k still decode to the same bytes.
        let present = pick(layout.shards(), usize::from(k) + 1, pattern);
        let victim = present[flip % present.len()];
        let mut bad = stored.segments[segment as usize].blocks[victim].clone();
        let at = flip % bad.len();
        bad[at] ^= 0x01;
        let mut blocks = stored.blocks(segment, &present);
        blocks[victim] = Some(&bad);
        let expected = stored.expected(segment);
        let start = layout.segment_offset(segment) as usize;
        let len = layout.segment_len(size, segment).expect("in range") as usize;
        let plain = decode_segment(&layout, &key, size, segment, &blocks, &expected)
            .expect("k good blocks remain");
        prop_assert_eq!(&plain[..], &data[start..start + len]);
        // Without the spare, the corrupt block is named and nothing is decoded.
        blocks[present.iter().copied().find(|&s| s != victim).expect("k + 1 >= 2")] = None;
        match decode_segment(&layout, &key, size, segment, &blocks, &expected) {
            Err(DecodeError::NotEnough { good, faults, .. }) => {
                prop_assert_eq!(good, usize::from(k) - 1);
                prop_assert!(faults.contains(&(victim as u16, BlockFault::Corrupt)));
            }
            other => prop_assert!(false, "expected NotEnough, got {:?}", other),
        }
    }

    #[test]
    fn repair_rebuilds_exactly_the_lost_blocks(
        size in sizes(),
        k in 1u16..=4,
        m in 1u16..=3,
        pattern in any::<u64>(),
    ) {
        let layout = layout(k, m);
        let stored = Stored::new(layout, &key(size), &plaintext(size, 1));
        let segment = pattern % layout.segments(size);
        let present = pick(layout.shards(), usize::from(k), pattern);
        let wanted: Vec<u16> = (0..layout.shards() as u16)
            .filter(|s| !present.contains(&usize::from(*s)))
            .collect();
        let rebuilt = rebuild_blocks(
            &layout, size, segment, &stored.blocks(segment, &present), &stored.expected(segment), &wanted,
        ).expect("k good blocks rebuild");
        for (shard, block) in wanted.iter().zip(&rebuilt) {
            prop_assert_eq!(block, &stored.segments[segment as usize].blocks[usize::from(*shard)]);
        }
    }

    #[test]
    fn a_range_decodes_to_its_slice(size in 1u64..(4 * u64::from(SEGMENT)), a in any::<u64>(), b in any::<u64>()) {
        let layout = layout(2, 2);
        let key = key(size);
        let data = plaintext(size, 9);
        let stored = Stored::new(layout, &key, &data);
        let (start, end) = { let (x, y) = (a % (size + 1), b % (size + 1)); (x.min(y), x.max(y)) };
        let mut out = Vec::new();
        for segment in layout.segment_range(size, start, end).expect("within") {
            let blocks = stored.blocks(segment, &[2, 3]);
            let plain = decode_segment(&layout, &key, size, segment, &blocks, &stored.expected(segment))
                .expect("decodes");
            let offset = layout.segment_offset(segment);
            let from = start.max(offset) - offset;
            let to = end.min(offset + plain.len() as u64) - offset;
            out.extend_from_slice(&plain[from as usize..to as usize]);
        }
        prop_assert_eq!(&out[..], &data[start as usize..end as usize]);
    }
}

#[test]
fn the_error_names_each_shard_that_failed() {
    let layout = layout(2, 2);
    let key = key(1);
    let per = u64::from(SEGMENT - 16);
    let size = 4 * per;
    let stored = Stored::new(layout, &key, &plaintext(size, 0));
    let mut corrupt = stored.segments[3].blocks[0].clone();
    corrupt[10] ^= 0xff;
    let short = &stored.segments[3].blocks[3][..64];
    let blocks = [
        Some(&corrupt[..]),
        Some(&stored.segments[3].blocks[1][..]),
        None,
        Some(short),
    ];
    let error =
        decode_segment(&layout, &key, size, 3, &blocks, &stored.expected(3)).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "segment 3: only 1 of the 2 blocks needed verify (shard 0 corrupt, shard 2 missing, \
         shard 3 is 64 bytes, not 32768)"
    );
    let error = decode_segment(&layout, &key, size, 3, &blocks[..3], &stored.expected(3));
    assert_eq!(
        error.expect_err("refused").to_string(),
        "segment 3: 3 blocks given, the layout has 4 shards"
    );
    let error = decode_segment(&layout, &key, size, 4, &blocks, &stored.expected(3));
    assert_eq!(
        error.expect_err("refused").to_string(),
        "segment 4 is out of range: the object has 4 segments"
    );
}

/// Decodes `segment` of `stored` as segment `as_index` of an object of `size` bytes under
/// `layout` and `key`, from its data blocks (whose hashes are the stored ones).
fn decode_as(
    stored: &Stored,
    segment: u64,
    layout: &Layout,
    key: &crate::ObjectKey,
    size: u64,
    as_index: u64,
) -> Result<zeroize::Zeroizing<Vec<u8>>, DecodeError> {
    let k = usize::from(layout.k);
    let mut blocks: Vec<Option<&[u8]>> = vec![None; layout.shards()];
    let mut expected = vec![[0u8; 32]; layout.shards()];
    for shard in 0..k {
        let block = &stored.segments[segment as usize].blocks[shard];
        blocks[shard] = Some(block);
        expected[shard] = block_hash(block);
    }
    decode_segment(layout, key, size, as_index, &blocks, &expected)
}

#[test]
fn truncation_reordering_flags_keys_and_layouts_fail_authentication() {
    let layout = layout(2, 2);
    let key = key(5);
    let per = u64::from(SEGMENT - 16);
    let size = 3 * per;
    let stored = Stored::new(layout, &key, &plaintext(size, 2));
    let failed = |result: Result<_, DecodeError>, segment| {
        assert_eq!(
            result.expect_err("refused"),
            DecodeError::Authentication { segment }
        );
    };
    // The blocks decode as themselves.
    assert!(decode_as(&stored, 1, &layout, &key, size, 1).is_ok());
    // Reordering: segment 0 read at index 1.
    failed(decode_as(&stored, 0, &layout, &key, size, 1), 1);
    // Truncation: the last segment dropped, so segment 1 is read as the final one.
    failed(decode_as(&stored, 1, &layout, &key, 2 * per, 1), 1);
    // An inner segment's blocks offered as the final segment of the whole object.
    failed(decode_as(&stored, 1, &layout, &key, size, 2), 2);
    // Wrong key.
    failed(decode_as(&stored, 1, &layout, &super::key(6), size, 1), 1);
    // Another layout with the same data blocks (m differs), and another size.
    failed(
        decode_as(&stored, 1, &super::layout(2, 3), &key, size, 1),
        1,
    );
    failed(decode_as(&stored, 1, &layout, &key, size + 1, 1), 1);
    // A last segment shrunk within its block length: same blocks, other size.
    let small = Stored::new(layout, &key, &plaintext(90, 0));
    assert!(decode_as(&small, 0, &layout, &key, 90, 0).is_ok());
    failed(decode_as(&small, 0, &layout, &key, 100, 0), 0);
    // Shrunk instead: the tail of the ciphertext lands in what must be zero padding.
    assert_eq!(
        decode_as(&small, 0, &layout, &key, 80, 0).expect_err("refused"),
        DecodeError::Padding { segment: 0 }
    );
}

#[test]
fn the_encoder_checks_lengths_and_order() {
    let layout = layout(2, 1);
    let key = key(0);
    let per = u64::from(SEGMENT - 16);
    let mut encoder = Encoder::new(layout, &key, per + 5).expect("valid");
    let error = encoder.encode_segment(&[0u8; 5]).expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!("segment 0: plaintext is 5 bytes, expected {per}")
    );
    let first = encoder
        .encode_segment(&vec![0u8; per as usize])
        .expect("right length");
    encoder.recycle(first);
    assert_eq!(
        Encoder::new(layout, &key, per + 5)
            .expect("valid")
            .finish()
            .expect_err("refused")
            .to_string(),
        "only 0 of 2 segments are encoded"
    );
    let last = encoder.encode_segment(&[1u8; 5]).expect("right length");
    assert_eq!(
        (last.index, last.blocks.len(), last.blocks[0].len()),
        (1, 3, 64)
    );
    assert!(matches!(
        encoder.encode_segment(&[]),
        Err(EncodeError::Finished { segments: 2 })
    ));
    let shards = encoder.finish().expect("complete");
    assert_eq!(shards.len(), 3);
    assert!(matches!(
        Encoder::new(Layout { k: 0, ..layout }, &key, 1),
        Err(EncodeError::Layout(_))
    ));
}

#[test]
fn the_reader_must_hold_exactly_size_bytes() {
    let layout = layout(2, 2);
    let key = key(0);
    let data = plaintext(100, 0);
    let short = encode_reader(layout, &key, 101, &data[..], |_| Ok(()));
    assert_eq!(
        short.expect_err("refused").to_string(),
        "the object ended after 100 of 101 bytes"
    );
    let long = encode_reader(layout, &key, 99, &data[..], |_| Ok(()));
    assert_eq!(
        long.expect_err("refused").to_string(),
        "the object is longer than 99 bytes"
    );
    let refused = encode_reader(layout, &key, 100, &data[..], |_| {
        Err(std::io::Error::other("disk full"))
    });
    assert_eq!(
        refused.expect_err("refused").to_string(),
        "storing segment 0: disk full"
    );
}

#[test]
fn rebuilding_checks_its_output_and_wanted_shards() {
    let layout = layout(2, 2);
    let stored = Stored::new(layout, &key(3), &plaintext(1000, 0));
    let blocks = stored.blocks(0, &[0, 3]);
    let expected = stored.expected(0);
    assert_eq!(
        rebuild_blocks(&layout, 1000, 0, &blocks, &expected, &[4])
            .expect_err("refused")
            .to_string(),
        "shard 4 is out of range: the layout has 4 shards"
    );
    // Expected hashes that are not the stored blocks': the rebuilt block is refused.
    let mut lying = expected.clone();
    lying[1] = [9; 32];
    assert_eq!(
        rebuild_blocks(&layout, 1000, 0, &blocks, &lying, &[1]),
        Err(DecodeError::Rebuilt {
            segment: 0,
            shard: 1
        })
    );
    let mine = rebuild_blocks(&layout, 1000, 0, &blocks, &expected, &[0, 2]).expect("rebuilds");
    assert_eq!(mine[0], stored.segments[0].blocks[0]);
    assert_eq!(mine[1], stored.segments[0].blocks[2]);
}

#[test]
fn encodings_are_frozen() {
    // A change here is a format change: new context strings (v2), then update the fixture.
    let key = crate::ObjectKey::from_bytes([7; 32]);
    let layout = layout(2, 2);
    let size = 2 * u64::from(SEGMENT - 16) + 100;
    let stored = Stored::new(layout, &key, &plaintext(size, 0));
    let hashes: Vec<String> = stored.segments[2].hashes.iter().map(hex::encode).collect();
    assert_eq!(
        [
            hex::encode(content_id(&layout, size, &stored.shards)),
            hex::encode(stored.shards[0].root),
            hashes.join(","),
        ],
        [
            "0c48a51b99c828bc1f4e0edfe43e0541bf07ad4b78d931b2b6bbb072b79c8498",
            "502de2544f922293ae24c9e7f10f82e6ca6fafd05ba303fb9378e83331bbb38f",
            "ed52488c4f194fb631c0cd99f014071ba272ba8c7d0cd521dca6333fe3f57e47,\
             5bced1cad6cc414132cc6fd72db2b8107e653493814f23433a02a239b4622b72,\
             a9ba467c025886cd5b05b040ae3076f578d3e260851cc3365d7350e61dfe5473,\
             72ca54527910a758c97ced8e59968b3dde5dea614b60fb61610311a2f396e3e4",
        ]
    );
}

#[test]
fn striped_parity_is_whole_block_parity() {
    use commonware_cryptography::reed_solomon::Encoder as Whole;
    // 1 MiB segments: blocks of many stripes, and for k = 3 a short last stripe.
    for (k, m) in [(2u16, 2u16), (3, 2)] {
        let layout = Layout {
            k,
            m,
            segment_bytes: 1 << 20,
        };
        let size = layout.plaintext_per_segment() + 5000;
        let stored = Stored::new(layout, &key(k.into()), &plaintext(size, 5));
        for segment in &stored.segments {
            let (k, m) = (usize::from(k), usize::from(m));
            let mut whole = Whole::new(k, m, segment.blocks[0].len()).expect("supported");
            for block in &segment.blocks[..k] {
                whole.add_original_shard(block).expect("equal lengths");
            }
            let encoded = whole.encode().expect("k originals");
            for j in 0..m {
                assert_eq!(encoded.recovery(j), Some(&segment.blocks[k + j][..]));
            }
            for (block, hash) in segment.blocks.iter().zip(&segment.hashes) {
                assert_eq!(&block_hash(block), hash);
            }
        }
        // Striped decoding and rebuilding from the parity blocks and the last data blocks.
        let data = plaintext(size, 5);
        let present: Vec<usize> = (usize::from(m)..layout.shards()).collect();
        let lost: Vec<u16> = (0..m).collect();
        for index in 0..2u64 {
            let blocks = stored.blocks(index, &present);
            let expected = stored.expected(index);
            let plain = decode_segment(&layout, &key(k.into()), size, index, &blocks, &expected)
                .expect("decodes");
            let start = layout.segment_offset(index) as usize;
            assert_eq!(&plain[..], &data[start..start + plain.len()]);
            let rebuilt =
                rebuild_blocks(&layout, size, index, &blocks, &expected, &lost).expect("rebuilds");
            for (shard, block) in lost.iter().zip(rebuilt) {
                assert_eq!(
                    block,
                    stored.segments[index as usize].blocks[usize::from(*shard)]
                );
            }
        }
    }
}

#[test]
fn blocks_swapped_between_shards_or_segments_are_caught_by_their_hashes() {
    let layout = layout(2, 1);
    let key = key(4);
    let size = 2 * u64::from(SEGMENT - 16);
    let stored = Stored::new(layout, &key, &plaintext(size, 6));
    let seg = |s: usize, shard: usize| Some(&stored.segments[s].blocks[shard][..]);
    // Shards 0 and 1 swapped within segment 0; then segment 1's block 2 in segment 0.
    let swapped = [seg(0, 1), seg(0, 0), None];
    let moved = [seg(0, 0), None, seg(1, 2)];
    for blocks in [swapped, moved] {
        match decode_segment(&layout, &key, size, 0, &blocks, &stored.expected(0)) {
            Err(DecodeError::NotEnough { good, .. }) => assert!(good < 2),
            other => panic!("expected NotEnough, got {other:?}"),
        }
    }
}
