//! Read-only commands: `status`, `tx status`, `block`.

use crate::{
    cli::{ApiArgs, BlockArgs, TxStatusArgs},
    output,
};
use welkin_client::Client;

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
    let status = Client::new(&args.api.api).tx_status(&id)?;
    if args.api.json {
        return output::json(&status);
    }
    print_status(&status);
    Ok(())
}

pub(crate) fn print_status(status: &welkin_types::api::TxStatus) {
    println!("transaction  {}", status.tx_id);
    println!("state        {:?}", status.state);
    if let Some(receipt) = &status.receipt {
        println!("outcome      {:?}", receipt.outcome);
        println!("height       {} (index {})", receipt.height, receipt.index);
    }
    if status.checkpoint.is_some() {
        println!("checkpoint   certified by the cluster");
    }
}

pub(crate) fn block(args: BlockArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let height = if args.height == "latest" {
        client.status()?.height
    } else {
        args.height.parse().map_err(|_| {
            anyhow::anyhow!("height must be a number or `latest`, got {:?}", args.height)
        })?
    };
    let block = client.block(height)?;
    if args.api.json {
        return output::json(&block);
    }
    println!("height     {}", block.height);
    println!("digest     {}", block.digest);
    println!("parent     {}", block.parent);
    println!("timestamp  {} ms", block.timestamp_ms);
    println!(
        "finalized  {}",
        if block.finalization.is_some() {
            "certificate attached"
        } else {
            "by a descendant's certificate"
        }
    );
    println!("txs        {}", block.txs.len());
    for tx in block.txs.iter().take(20) {
        println!("  {} {} nonce {}", tx.id, tx.kind, tx.nonce);
    }
    Ok(())
}
