//! Helpers shared by the tests.

use welkin_keri::{
    Digest, Event, InceptionBuilder, IndexedSignature, Kevery, KeveryConfig, KeyState, Message,
    Outcome, Signer, Threshold, ValidationError, sign, signed,
};

/// The signer from seed byte `n` (32 copies), as the keripy fixtures use.
pub(crate) fn signer(n: u8) -> Signer {
    Signer::new(&[n; 32])
}

/// Next-key digests of signers.
pub(crate) fn digests(signers: &[Signer]) -> Vec<Digest> {
    signers.iter().map(|s| s.verkey().next_digest()).collect()
}

/// A processor that does not require witness receipts.
pub(crate) fn kevery() -> Kevery {
    Kevery::new(KeveryConfig {
        require_witness_receipts: false,
        ..KeveryConfig::default()
    })
}

/// Signs and processes, returning the result.
pub(crate) fn submit(
    kevery: &mut Kevery,
    event: Event,
    signers: &[Signer],
) -> Result<Outcome, ValidationError> {
    let sigs = sign(&event, signers);
    kevery.process(signed(event, sigs))
}

/// Processes with explicit signatures.
pub(crate) fn submit_sigs(
    kevery: &mut Kevery,
    event: Event,
    sigs: Vec<IndexedSignature>,
) -> Result<Outcome, ValidationError> {
    kevery.process(signed(event, sigs))
}

/// Asserts acceptance.
pub(crate) fn accepted(result: Result<Outcome, ValidationError>) {
    match result {
        Ok(Outcome::Accepted { .. }) => {}
        other => panic!("expected acceptance, got {other:?}"),
    }
}

/// A single-key identifier committed to one next key: (kevery, state, current, next).
pub(crate) fn single_key(seed: u8) -> (Kevery, KeyState, Signer, Signer) {
    let (current, next) = (signer(seed), signer(seed + 1));
    let icp = InceptionBuilder::new(vec![current.verkey()])
        .next(digests(std::slice::from_ref(&next)), Threshold::Simple(1))
        .build();
    let mut k = kevery();
    let prefix = icp.prefix();
    accepted(submit(&mut k, icp, std::slice::from_ref(&current)));
    let state = k.state(&prefix).expect("accepted").clone();
    (k, state, current, next)
}

/// The stream bytes of messages.
pub(crate) fn stream(messages: &[Message]) -> Vec<u8> {
    messages
        .iter()
        .flat_map(|m| m.to_bytes().expect("encodable"))
        .collect()
}
