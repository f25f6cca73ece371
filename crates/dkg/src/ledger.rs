//! The dealer logs of a round that every node agrees on (in Welkin, those the state machine
//! recorded from committed transactions), and the round's result from them.

use crate::{DkgError, Faults, Output, Round, SignedLog};
use commonware_codec::Encode as _;
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{self, DealerLog};
use commonware_parallel::Sequential;
use rand_core::CryptoRng;
use std::collections::{BTreeMap, BTreeSet};
use welkin_types::{PublicKey, Variant};

/// What [`Ledger::record`] did with a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The dealer's first log: kept.
    Kept,
    /// The same log again: nothing changes.
    Duplicate,
    /// A second, different log from a dealer that had given one: both are dropped and the
    /// dealer is excluded from the round.
    Equivocation(PublicKey),
    /// The dealer was already excluded for equivocating.
    Excluded,
}

/// The logs of one round, at most one per dealer.
pub struct Ledger {
    round: Round,
    /// Each dealer's checked log, with its signed encoding (to tell a repeat from a second
    /// log).
    logs: BTreeMap<PublicKey, (Vec<u8>, DealerLog<Variant, PublicKey>)>,
    equivocators: BTreeSet<PublicKey>,
}

impl Ledger {
    /// An empty ledger for `round`.
    pub fn new(round: Round) -> Self {
        Self {
            round,
            logs: BTreeMap::new(),
            equivocators: BTreeSet::new(),
        }
    }

    /// Checks `log` against the round (signed by a dealer of this round, for this round) and
    /// records it.
    pub fn record(&mut self, log: SignedLog) -> Result<Recorded, DkgError> {
        self.record_signed(log).map(|(_, recorded)| recorded)
    }

    /// [`Ledger::record`], also naming the dealer whose signature the log carries.
    pub fn record_signed(&mut self, log: SignedLog) -> Result<(PublicKey, Recorded), DkgError> {
        let bytes = log.encode().to_vec();
        let (dealer, checked) = log.check(self.round.info()).ok_or_else(|| {
            DkgError::Log("not signed by a dealer of this round, or not for this round".into())
        })?;
        if self.equivocators.contains(&dealer) {
            return Ok((dealer, Recorded::Excluded));
        }
        let recorded = match self.logs.get(&dealer) {
            None => {
                self.logs.insert(dealer.clone(), (bytes, checked));
                Recorded::Kept
            }
            Some((kept, _)) if *kept == bytes => Recorded::Duplicate,
            Some(_) => {
                self.logs.remove(&dealer);
                self.equivocators.insert(dealer.clone());
                Recorded::Equivocation(dealer.clone())
            }
        };
        Ok((dealer, recorded))
    }

    /// Dealers whose logs are recorded.
    pub fn dealers(&self) -> impl Iterator<Item = &PublicKey> {
        self.logs.keys()
    }

    /// Dealers excluded for giving two different logs.
    pub fn equivocators(&self) -> &BTreeSet<PublicKey> {
        &self.equivocators
    }

    /// The round's public result from the recorded logs, the same for everyone who recorded
    /// the same logs; an error if too few of them are usable.
    pub fn outcome(&self, rng: &mut impl CryptoRng) -> Result<Output, DkgError> {
        feldman_desmedt::observe::<Variant, PublicKey, Faults>(rng, self.logs(), &Sequential)
            .map_err(|e| DkgError::NoResult(format!("{e:?}")))
    }

    /// [`Ledger::outcome`] with its verification randomness drawn from a hash of the recorded
    /// logs, for state machines, which have no randomness of their own. Batch verification
    /// only needs coefficients a log's author could not choose: a log is fixed before the
    /// hash that checks it, so tuning one to pass is a search over 2^255 values.
    pub fn agreed_outcome(&self) -> Result<Output, DkgError> {
        use rand_chacha::rand_core::SeedableRng as _;
        let mut parts: Vec<&[u8]> = vec![b"welkin/dkg/observe/v1"];
        parts.extend(self.logs.values().map(|(bytes, _)| bytes.as_slice()));
        let seed: [u8; 32] = welkin_types::hash_parts(&parts)
            .as_ref()
            .try_into()
            .expect("SHA-256 digests are 32 bytes");
        self.outcome(&mut rand_chacha::ChaCha20Rng::from_seed(seed))
    }

    /// [`Ledger::agreed_outcome`] with the signed logs of the dealers it selected, in dealer
    /// order: what a state records beside the output (every node makes its share from them).
    pub fn agreed_selection(&self) -> Result<(Output, Vec<Vec<u8>>), DkgError> {
        let output = self.agreed_outcome()?;
        let logs = self
            .signed_logs()
            .filter(|(dealer, _)| output.dealers().position(dealer).is_some())
            .map(|(_, bytes)| bytes.to_vec())
            .collect();
        Ok((output, logs))
    }

    /// The signed encoding of each recorded log, in dealer order.
    pub fn signed_logs(&self) -> impl Iterator<Item = (&PublicKey, &[u8])> {
        self.logs
            .iter()
            .map(|(dealer, (bytes, _))| (dealer, bytes.as_slice()))
    }

    /// How many dealers' logs are recorded.
    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// Whether no log is recorded.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }

    /// The round the ledger is for.
    pub fn round(&self) -> &Round {
        &self.round
    }

    /// The recorded logs in the library's form.
    pub(crate) fn logs(&self) -> feldman_desmedt::Logs<Variant, PublicKey, Faults> {
        let mut logs = feldman_desmedt::Logs::new(self.round.info().clone());
        for (dealer, (_, log)) in &self.logs {
            logs.record(dealer.clone(), log.clone());
        }
        logs
    }
}
