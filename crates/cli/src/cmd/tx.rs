//! `welkin tx submit`.

use super::signing::Signing;
use crate::{
    cli::{PayloadArg, TxSubmitArgs},
    output,
};
use std::time::Duration;
use welkin_client::Client;
use welkin_types::Payload;

pub(crate) fn submit(args: TxSubmitArgs) -> anyhow::Result<()> {
    let signing = Signing::load(&args.signer)?;
    let client = Client::new(&args.api.api);
    let cluster_id = super::signing::cluster_id(&client)?;
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
    if args.api.json {
        return output::json(&status);
    }
    super::query::print_status(&status);
    Ok(())
}
