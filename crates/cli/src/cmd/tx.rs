//! `welkin tx submit`.

use crate::{
    cli::{PayloadArg, TxSubmitArgs},
    output,
};
use anyhow::Context as _;
use std::time::Duration;
use welkin_client::Client;
use welkin_node::ceremony::NodeKey;
use welkin_types::{Payload, TX_VERSION, Transaction};

pub(crate) fn submit(args: TxSubmitArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read key file {}", args.key.display()))?;
    let key = NodeKey::from_json(&text).with_context(|| {
        format!(
            "{} is not a welkin key file (make one with `welkin key new`)",
            args.key.display()
        )
    })?;
    let client = Client::new(&args.api.api);
    let status = client.status()?;
    let cluster_id = welkin_types::hexser::decode_hex::<welkin_types::Digest>(&status.cluster_id)
        .map_err(|e| anyhow::anyhow!("node sent a bad cluster id: {e}"))?;
    let payload = match args.payload {
        PayloadArg::Memo { text } => Payload::Memo(text.into_bytes()),
        PayloadArg::Put { key, value } => Payload::Put {
            key: key.into_bytes(),
            value: value.into_bytes(),
        },
    };
    let nonce = args.nonce.unwrap_or_else(welkin_node::ceremony::random_u64);
    let tx = Transaction {
        version: TX_VERSION,
        signer: key.public_key(),
        nonce,
        expiry_ms: super::now_ms() + args.ttl * 1000,
        payload,
    }
    .sign(&key.signer, &cluster_id);
    let status = client.submit(&tx, args.wait.then_some(Duration::from_secs(30)))?;
    if args.api.json {
        return output::json(&status);
    }
    super::query::print_status(&status);
    Ok(())
}
