//! Hard limits on everything a peer or client can send. Decoders enforce them.

/// Largest encoded transaction (envelope and signature), in bytes.
pub const MAX_TX_BYTES: usize = 16 * 1024;
/// Largest memo payload, in bytes.
pub const MAX_MEMO_BYTES: usize = 8 * 1024;
/// Largest key of a `Put` payload, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value of a `Put` payload, in bytes.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
/// Largest media type of a record, in bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 128;
/// Largest record content, in bytes.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;
/// Most log entries (or proof hashes) returned by one API call.
pub const MAX_LOG_RANGE: u64 = 256;
/// Largest KERI key event message (event and attachments), in bytes.
pub const MAX_KEY_EVENT_BYTES: usize = 12 * 1024;
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 8192;
/// Most bytes of encoded transactions in one block.
pub const MAX_BLOCK_TX_BYTES: usize = 2 * 1024 * 1024;
/// Most nodes in a cluster.
pub const MAX_NODES: usize = 128;
/// Most transactions in one HTTP batch submission.
pub const MAX_SUBMIT_BATCH: usize = 4096;
/// Most bytes of the reason a log entry gives for its outcome.
pub const MAX_LOG_DETAIL_BYTES: usize = 1024;
/// Largest encoded audit log entry: a transaction, its outcome and the reason given.
pub const MAX_LOG_ENTRY_BYTES: usize = MAX_TX_BYTES + MAX_LOG_DETAIL_BYTES + 32;
