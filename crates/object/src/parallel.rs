//! Encoding on several threads. Segments are independent (each has its own nonce and its own
//! stripes), so workers encode several at once while the caller's sink still sees them one
//! at a time, in order, and the output is byte for byte what [`encode_reader`] gives.
//!
//! One thread reads the object segment by segment into a small pool of buffers, `threads`
//! workers encode, and the calling thread puts the results back in order, hands each to the
//! sink and returns its buffers to the pools. Memory stays at `2 × threads` segments whatever
//! the object's size. Any failure (the reader, the sink) stops every thread: the reader stops
//! when its pool is gone, the workers when the reader is.

use crate::{
    EncodeError, EncodedSegment, Layout, ObjectKey, ShardSummary,
    encode::{SegmentCoder, ShardHashes, encode_reader, expect_end, fill},
};
use std::{
    collections::BTreeMap,
    io::{self, Read},
    sync::{Arc, Mutex, mpsc},
};

/// Segments a worker may have waiting or in hand: enough that no worker idles while the
/// sink takes its turn.
const IN_FLIGHT_PER_THREAD: usize = 2;

/// A segment's plaintext (at the start of its data buffer) on its way to a worker.
struct Job {
    index: u64,
    data: Vec<u8>,
}

/// An encoded segment on its way back, with the data buffer it came in.
struct Done {
    segment: EncodedSegment,
    data: Vec<u8>,
}

/// [`encode_reader`] on `threads` worker threads (1 encodes on the calling thread).
///
/// The reader runs on a thread of its own, so it must be [`Send`]; the sink runs on the
/// calling thread and sees every segment in order, exactly as [`encode_reader`] gives it.
pub fn encode_reader_parallel(
    layout: Layout,
    key: &ObjectKey,
    size: u64,
    threads: usize,
    reader: impl Read + Send,
    mut sink: impl FnMut(&mut EncodedSegment) -> io::Result<()>,
) -> Result<Vec<ShardSummary>, EncodeError> {
    if threads <= 1 {
        return encode_reader(layout, key, size, reader, sink);
    }
    layout.validate_size(size)?;
    let segments = layout.segments(size);
    let in_flight = threads * IN_FLIGHT_PER_THREAD;
    let (free_data, data_pool) = mpsc::sync_channel::<Vec<u8>>(in_flight);
    for _ in 0..in_flight {
        free_data.send(Vec::new()).expect("the pool is alive");
    }
    let (jobs, job_queue) = mpsc::sync_channel::<Job>(in_flight);
    // Shared by the workers only, so that the reader's sends fail once they have all stopped.
    let job_queue = Arc::new(Mutex::new(job_queue));
    let (finished, results) = mpsc::channel::<Done>();
    let segment_pool = Mutex::new(Vec::<EncodedSegment>::new());

    let segment_pool = &segment_pool;
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || -> Result<(), EncodeError> {
            let mut reader = reader;
            let sizer = SegmentCoder::new(layout, key, size);
            let mut read = 0u64;
            for index in 0..segments {
                // No buffer: the caller stopped, and its error is the one that counts.
                let Ok(mut data) = data_pool.recv() else {
                    return Ok(());
                };
                let plaintext = sizer
                    .size_buffer(index, &mut data)
                    .expect("index is below the segment count");
                fill(&mut reader, &mut data[..plaintext], &mut read, size)?;
                if jobs.send(Job { index, data }).is_err() {
                    return Ok(());
                }
            }
            expect_end(&mut reader, size)
        });
        for _ in 0..threads {
            let finished = finished.clone();
            let job_queue = Arc::clone(&job_queue);
            scope.spawn(move || {
                let mut coder = SegmentCoder::new(layout, key, size);
                loop {
                    let next = job_queue.lock().map(|queue| queue.recv());
                    let Ok(Ok(Job { index, mut data })) = next else {
                        return;
                    };
                    let mut segment = segment_pool
                        .lock()
                        .ok()
                        .and_then(|mut pool| pool.pop())
                        .unwrap_or_default();
                    coder.encode(index, &mut data, &mut segment);
                    if finished.send(Done { segment, data }).is_err() {
                        return;
                    }
                }
            });
        }
        drop((finished, job_queue));

        // In order, through the sink. Returning drops the pools' senders and the results'
        // receiver, which stops the reader and the workers before the scope joins them.
        let mut ordered = move || -> Result<Vec<ShardSummary>, EncodeError> {
            let mut hashes = ShardHashes::new(&layout, segments);
            let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
            for next in 0..segments {
                let mut done = loop {
                    if let Some(done) = waiting.remove(&next) {
                        break done;
                    }
                    match results.recv() {
                        Ok(done) => {
                            waiting.insert(done.segment.index, done);
                        }
                        // Every worker stopped: the reader failed (its error is below).
                        Err(_) => {
                            return Err(EncodeError::Unfinished {
                                encoded: next,
                                segments,
                            });
                        }
                    }
                };
                sink(&mut done.segment).map_err(|error| EncodeError::Sink {
                    segment: next,
                    error,
                })?;
                hashes.push(&done.segment);
                if let Ok(mut pool) = segment_pool.lock() {
                    pool.push(done.segment);
                }
                // The reader may have finished and dropped its end of the pool.
                let _ = free_data.send(done.data);
            }
            Ok(hashes.summaries())
        };
        let outcome = ordered();
        drop(ordered);
        let read = reading
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (outcome, read) {
            // A reader's failure explains an unfinished encode; a sink's failure comes first.
            (Err(EncodeError::Unfinished { .. }), Err(read)) => Err(read),
            (Ok(_), Err(read)) => Err(read),
            (outcome, _) => outcome,
        }
    })
}
