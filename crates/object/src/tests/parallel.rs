//! The parallel encoder gives exactly the sequential encoder's segments and summaries, and
//! fails the same way.

use super::{SEGMENT, key, layout, plaintext};
use crate::{EncodedSegment, encode_reader, encode_reader_parallel};
use proptest::prelude::*;

fn sequential(
    layout: crate::Layout,
    data: &[u8],
) -> (Vec<EncodedSegment>, Vec<crate::ShardSummary>) {
    let mut segments = Vec::new();
    let shards = encode_reader(layout, &key(9), data.len() as u64, data, |segment| {
        segments.push(segment.clone());
        Ok(())
    })
    .expect("encodes");
    (segments, shards)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn parallel_encoding_matches_sequential(
        k in 1u16..5,
        m in 1u16..3,
        // Up to a few segments more than the threads can hold at once, ending anywhere.
        size in 0u64..(SEGMENT as u64 * 13),
        threads in 2usize..5,
    ) {
        let layout = layout(k, m);
        let data = plaintext(size, k as u8);
        let (expected_segments, expected_shards) = sequential(layout, &data);
        let mut segments = Vec::new();
        let shards = encode_reader_parallel(layout, &key(9), size, threads, &data[..], |segment| {
            segments.push(segment.clone());
            Ok(())
        })
        .expect("encodes");
        prop_assert_eq!(segments, expected_segments);
        prop_assert_eq!(shards, expected_shards);
    }
}

#[test]
fn parallel_encoding_refuses_a_reader_of_the_wrong_length() {
    let layout = layout(2, 2);
    let data = plaintext(SEGMENT as u64 * 5, 0);
    let size = data.len() as u64;
    let short = encode_reader_parallel(layout, &key(0), size + 1, 3, &data[..], |_| Ok(()));
    assert_eq!(
        short.expect_err("refused").to_string(),
        format!("the object ended after {size} of {} bytes", size + 1)
    );
    let long = encode_reader_parallel(layout, &key(0), size - 1, 3, &data[..], |_| Ok(()));
    assert_eq!(
        long.expect_err("refused").to_string(),
        format!("the object is longer than {} bytes", size - 1)
    );
}

#[test]
fn a_failing_sink_stops_every_thread_and_names_its_segment() {
    let layout = layout(2, 1);
    // Many more segments than the pools hold, so the reader and workers must be stopped, not
    // merely run out of work.
    let data = plaintext(SEGMENT as u64 * 40, 1);
    let mut seen = 0;
    let refused = encode_reader_parallel(layout, &key(0), data.len() as u64, 2, &data[..], |s| {
        seen += 1;
        if s.index == 3 {
            Err(std::io::Error::other("disk full"))
        } else {
            Ok(())
        }
    });
    assert_eq!(
        refused.expect_err("refused").to_string(),
        "storing segment 3: disk full"
    );
    assert_eq!(
        seen, 4,
        "the sink saw segments 0 to 3 in order, then nothing"
    );
}
