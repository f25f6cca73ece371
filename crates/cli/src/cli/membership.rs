//! Flags of `welkin membership`: the cluster's members and how its key was made.

use super::{ApiArgs, TrustArgs};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub(crate) enum MembershipCommand {
    /// List the cluster's members: name, identity key, failure domain and addresses from the
    /// genesis, and each member's part in the cluster key.
    ///
    /// The genesis is the trusted one (--genesis, or the node's once its hash matches the
    /// pinned cluster). For a dealerless cluster the key is proven first (the dealer logs the
    /// state selected, and a checkpoint under the key), then each member is shown as a
    /// selected dealer or not, and whether its dealings from some dealer were revealed
    /// (it acknowledged nothing from that dealer). Members are fixed at genesis for now.
    List(MembershipListArgs),
    /// Show how the cluster key was made, or the round that is making it: the open round, the
    /// members whose dealer logs are in, those excluded for equivocating, and why earlier
    /// rounds gave no key. This is the node's word (its state, unproven); once the key exists,
    /// `welkin membership list` proves it.
    Keygen(ApiArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MembershipListArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}
