//! Properties: CESR round trips, and no mutation of a signed event is accepted.

use proptest::prelude::*;
use welkin_keri::{
    Code, Counter, CounterCode, InceptionBuilder, IndexedSignature, Matter, Outcome, Threshold,
    sign, signed,
};

use crate::common::{digests, kevery, signer};

proptest! {
    #[test]
    fn indexed_signatures_round_trip(
        index in 0u32..=4095,
        ondex in proptest::option::of(0u32..=4095),
        signature in proptest::array::uniform32(any::<u8>()),
    ) {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&signature);
        bytes[32..].copy_from_slice(&signature);
        let s = IndexedSignature { index, ondex, signature: bytes };
        let text = s.qb64().expect("in range");
        prop_assert!(text.len() == 88 || text.len() == 92);
        prop_assert_eq!(IndexedSignature::decode_prefix(&text), Ok((s, text.len())));
    }

    #[test]
    fn primitives_round_trip(raw in proptest::collection::vec(any::<u8>(), 64), which in 0usize..5) {
        let code = [Code::Ed25519N, Code::Ed25519, Code::Blake3_256, Code::Salt128, Code::Ed25519Sig][which];
        let m = Matter::new(code, &raw[..code.raw_size()]).expect("size");
        let text = m.qb64();
        prop_assert_eq!(text.len(), code.full_size());
        prop_assert_eq!(Matter::from_qb64(&text), Ok(m));
    }

    #[test]
    fn counters_round_trip(count in 0u64..4096, which in 0usize..6) {
        let code = [
            CounterCode::ControllerIdxSigs, CounterCode::WitnessIdxSigs,
            CounterCode::NonTransReceiptCouples, CounterCode::TransIdxSigGroups,
            CounterCode::SealSourceCouples, CounterCode::AttachedMaterialQuadlets,
        ][which];
        let c = Counter { code, count };
        let text = c.qb64().expect("fits");
        prop_assert_eq!(Counter::decode_prefix(&text), Ok((c, 4)));
    }

    #[test]
    fn decoding_garbage_never_panics(text in "[-_A-Za-z0-9]{0,100}") {
        let _ = Matter::decode_prefix(&text);
        let _ = IndexedSignature::decode_prefix(&text);
        let _ = Counter::decode_prefix(&text);
    }

    #[test]
    fn no_mutation_of_a_signed_event_is_accepted(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let a = signer(1);
        let icp = InceptionBuilder::new(vec![a.verkey()])
            .next(digests(&[signer(2)]), Threshold::Simple(1))
            .build();
        let sigs = sign(&icp, &[a]);
        let mut bytes = signed(icp.clone(), sigs).to_bytes().expect("encodable");
        let i = position.index(icp.raw().len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let mut k = kevery();
        match k.process_stream(&bytes) {
            Err(_) => {}
            Ok(outcomes) => {
                for o in outcomes {
                    prop_assert!(!matches!(o, Ok(Outcome::Accepted { .. })), "mutation at {} accepted", i);
                }
            }
        }
    }
}
