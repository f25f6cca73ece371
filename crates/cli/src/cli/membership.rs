//! Flags of `welkin membership`: the cluster's members and how its key was made.

use super::{ApiArgs, KeystoreArgs, TrustArgs};
use clap::{Args, Subcommand};
use std::path::PathBuf;

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
    /// Show the epoch the node's state is in: its number and first height, the members, the
    /// resharing in progress (its round, dealers, the players it makes, the logs in), and why
    /// recent resharings failed. Members change only at an epoch's last block, after a
    /// resharing of the same key. This is the node's word (its state, unproven).
    Epochs(ApiArgs),
    /// Ask for a node to join the cluster: submit its signed registration (from `welkin key
    /// register`), signed by the node's own key, with evidence about its machine if the
    /// cluster's policy wants some (`welkin membership attest`). Prints the request id the
    /// operators approve. Admitted nodes join at an epoch boundary, once the members have
    /// reshared the key to them (see `welkin membership epochs`).
    Propose(MembershipProposeArgs),
    /// Approve a join request, as an operator named in the genesis: with --as NAME (a keystore
    /// identity) or --key FILE (the key's own non-transferable identifier).
    Approve(MembershipApproveArgs),
    /// Sign an operator statement about a node's registration (the evidence the
    /// `operator-statement` policy wants), with --as NAME or --key FILE, and write it to a file.
    Attest(MembershipAttestArgs),
    /// Leave the cluster at the next epoch, with the member's node key.
    Leave(MembershipLeaveArgs),
    /// Vote, as an operator, to remove a member: with as many operators' votes as a join
    /// needs approvals, it leaves at the next epoch (refused if fewer than 4 members would
    /// remain). Each operator votes once; the receipt's note says how many votes are in.
    Remove(MembershipRemoveArgs),
    /// Print the KERI identifier of a key file's key (non-transferable, `B...`): an operator
    /// without a keystore identity names this in `welkin genesis --operator`.
    OperatorId(MembershipKeyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MembershipKeyArgs {
    /// The key file (from `welkin key new`).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
}

/// Who signs as an operator.
#[derive(Debug, Args)]
pub(crate) struct OperatorArgs {
    /// Sign as this keystore identity, with all its current keys.
    #[arg(long = "as", value_name = "NAME", conflicts_with = "key")]
    pub(crate) identity: Option<String>,
    /// Sign as the non-transferable identifier of the key in this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) keystore: KeystoreArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MembershipProposeArgs {
    /// The joining node's key file; it signs the request.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// The node's signed registration (from `welkin key register`).
    #[arg(long, value_name = "FILE")]
    pub(crate) registration: PathBuf,
    /// Evidence about the machine (from `welkin membership attest`).
    #[arg(long, value_name = "FILE")]
    pub(crate) evidence: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MembershipRemoveArgs {
    /// The member: its name in the genesis, or its node key (64 hex characters).
    pub(crate) member: String,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MembershipApproveArgs {
    /// The request id `welkin membership propose` printed (64 hex characters).
    pub(crate) request: String,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MembershipAttestArgs {
    /// The node's signed registration.
    #[arg(long, value_name = "FILE")]
    pub(crate) registration: PathBuf,
    /// Write the statement here (binary; pass it to `propose --evidence`).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) operator: OperatorArgs,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MembershipLeaveArgs {
    /// The member's node key file.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MembershipListArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}
