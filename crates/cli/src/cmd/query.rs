//! Read-only commands: `status`, `tx status`, `block`.

use super::trust::{self, Trust};
use crate::{
    cli::{ApiArgs, BlockArgs, TxStatusArgs},
    output,
};
use anyhow::bail;
use commonware_cryptography::Digestible as _;
use welkin_client::{BlockProof, Client, ClientError, verify_block};
use welkin_types::api::{TxState, TxStatus};

pub(crate) fn status(args: ApiArgs) -> anyhow::Result<()> {
    let status = Client::new(&args.api).status()?;
    if args.json {
        return output::json(&status);
    }
    println!("node            {} ({})", status.node, args.api);
    println!("identifier      {}", status.identifier);
    println!("cluster id      {}", status.cluster_id);
    println!("cluster key     {}", status.cluster_key);
    println!("height          {}", status.height);
    println!("state root      {}", status.state_root);
    println!("certified       {}", status.certified_height);
    println!("view            {}", status.view);
    println!("mempool         {}", status.mempool);
    println!("peers           {}", status.peers.join(", "));
    Ok(())
}

pub(crate) fn tx_status(args: TxStatusArgs) -> anyhow::Result<()> {
    let id = welkin_types::hexser::decode_hex::<welkin_types::Digest>(&args.id)
        .map_err(|e| anyhow::anyhow!("transaction id must be 64 hex characters: {e}"))?;
    let client = Client::new(&args.api.api);
    let trust = trust::cluster(&client, args.trust.genesis.as_deref())?;
    let status = client.tx_status(&id)?;
    report_status(&client, &trust, &status, args.api.json)
}

/// Prints a transaction's status: the receipt only once its proof verifies under a checkpoint
/// the trusted cluster certified; anything else marked as the node's word. A receipt that does
/// not verify is an error.
pub(crate) fn report_status(
    client: &Client,
    trust: &Trust,
    status: &TxStatus,
    json: bool,
) -> anyhow::Result<()> {
    let id = welkin_types::hexser::decode_hex::<welkin_types::Digest>(&status.tx_id)
        .map_err(|e| anyhow::anyhow!("node sent a bad transaction id: {e}"))?;
    let lookup = client
        .verified_receipt(&id, &trust.trusted)
        .map_err(|e| match e {
            ClientError::Unverified(e) => anyhow::anyhow!(
                "transaction {}: the receipt {} sent does not verify against the cluster key ({}): {e}; it is not certified",
                status.tx_id,
                client.base(),
                trust.source
            ),
            e => anyhow::anyhow!("transaction {}: cannot check the receipt: {e}", status.tx_id),
        })?;
    let Some(verified) = lookup else {
        return report_unverified(status, json);
    };
    let receipt = verified.value;
    let checkpoint = verified.checkpoint.checkpoint;
    let detail = if receipt.outcome.is_applied() {
        None
    } else {
        client
            .verified_outcome_detail(&id, &trust.trusted)?
            .map(|d| d.value)
    };
    if json {
        return output::json(&serde_json::json!({
            "tx_id": status.tx_id,
            "state": TxState::Committed,
            "receipt": receipt,
            "detail": detail,
            "verified": true,
            "certified_height": checkpoint.height,
            "state_root": hex::encode(checkpoint.state_root),
            "checkpoint": verified.checkpoint.to_hex(),
        }));
    }
    println!("transaction  {}", status.tx_id);
    println!("state        committed");
    println!("outcome      {:?}", receipt.outcome);
    println!("height       {} (index {})", receipt.height, receipt.index);
    println!("log index    {}", receipt.log_index);
    if let Some(detail) = detail {
        println!("detail       {detail}");
    }
    println!(
        "verified     receipt proven under the state root the cluster certified at height {} (cluster key from {})",
        checkpoint.height, trust.source
    );
    if status.receipt.is_some_and(|r| r != receipt) {
        eprintln!(
            "welkin: warning: {} sent a status whose receipt differs from the certified one; printed the certified one",
            client.base()
        );
    }
    Ok(())
}

/// A status without a provable receipt: what the node says, labelled as such.
fn report_unverified(status: &TxStatus, json: bool) -> anyhow::Result<()> {
    let state = match status.state {
        TxState::Pending => "pending",
        TxState::Unknown => "not found",
        // A node that says committed but has no receipt to prove is contradicting itself.
        TxState::Committed => "committed, but the node serves no receipt to prove it",
    };
    if json {
        return output::json(&serde_json::json!({
            "tx_id": status.tx_id,
            "state": status.state,
            "verified": false,
        }));
    }
    println!("transaction  {}", status.tx_id);
    println!("state        {state} (unverified: this node's word)");
    Ok(())
}

pub(crate) fn block(args: BlockArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let trust = trust::cluster(&client, args.trust.genesis.as_deref())?;
    let height = if args.height == "latest" {
        client.status()?.height
    } else {
        args.height.parse().map_err(|_| {
            anyhow::anyhow!("height must be a number or `latest`, got {:?}", args.height)
        })?
    };
    let info = client.block(height)?;
    // Consensus certificates are signed by the members' keys: take them from the genesis
    // file, or from the node's genesis once its hash matches the trusted cluster id.
    let genesis = match trust.genesis.clone() {
        Some(genesis) => genesis,
        None => {
            let genesis = client.genesis()?;
            // The cluster id hashes the genesis (a dealt key included): it binds the file.
            if genesis.cluster_id() != trust.trusted.cluster_id {
                bail!(
                    "the genesis {} serves is not the trusted cluster's ({}): its hash is {}",
                    client.base(),
                    trust.source,
                    hex::encode(genesis.cluster_id())
                );
            }
            genesis
        }
    };
    let finalized = match verify_block(&info, height, &genesis) {
        Ok((block, BlockProof::Finalized)) => (
            block,
            format!(
                "verified: a finalization certificate signed by a quorum of the members of the cluster (from {}) names this block",
                trust.source
            ),
        ),
        Ok((block, BlockProof::Genesis)) => (
            block,
            format!("verified: the genesis block of {}", trust.source),
        ),
        Err(e) => bail!(
            "block {height} from {} does not verify against the trusted cluster ({}): {e}",
            client.base(),
            trust.source
        ),
    };
    let (block, how) = finalized;
    if args.api.json {
        return output::json(&serde_json::json!({
            "height": block.height,
            "digest": hex::encode(block.digest()),
            "parent": hex::encode(block.parent),
            "timestamp_ms": block.timestamp_ms,
            "txs": block.txs.iter().map(|tx| serde_json::json!({
                "id": hex::encode(tx.id()),
                "signer": tx.tx.sender.to_string(),
                "nonce": tx.tx.nonce,
                "kind": tx.tx.payload.kind(),
            })).collect::<Vec<_>>(),
            "verified": how,
        }));
    }
    println!("height     {}", block.height);
    println!("digest     {}", hex::encode(block.digest()));
    println!("parent     {}", hex::encode(block.parent));
    println!("timestamp  {} ms", block.timestamp_ms);
    println!("finalized  {how}");
    println!("txs        {}", block.txs.len());
    for tx in block.txs.iter().take(20) {
        println!(
            "  {} {} nonce {}",
            hex::encode(tx.id()),
            tx.tx.payload.kind(),
            tx.tx.nonce
        );
    }
    Ok(())
}
