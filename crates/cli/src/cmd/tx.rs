//! `welkin tx submit`.

use super::signing::Signing;
use crate::cli::{PayloadArg, TxSubmitArgs};
use std::time::Duration;
use welkin_client::Client;
use welkin_types::Payload;

pub(crate) fn submit(args: TxSubmitArgs) -> anyhow::Result<()> {
    let signing = Signing::load(&args.signer)?;
    let client = Client::new(&args.api.api);
    let trust = super::trust::cluster(&client, args.trust.genesis.as_deref())?;
    let cluster_id = trust.trusted.cluster_id;
    let payload = match args.payload {
        PayloadArg::Memo { text } => Payload::Memo(text.into_bytes()),
        PayloadArg::Put { key, value } => Payload::Put {
            key: key.into_bytes(),
            value: value.into_bytes(),
        },
    };
    let nonce = args.nonce.unwrap_or_else(welkin_node::ceremony::random_u64);
    let tx = signing.sign(
        &cluster_id,
        nonce,
        super::now_ms() + args.ttl * 1000,
        payload,
    );
    let status = client.submit(&tx, args.wait.then_some(Duration::from_secs(30)))?;
    super::query::report_status(&client, &trust, &status, args.api.json)
}
