//! `welkin key new`.

use crate::{cli::KeyNewArgs, output};
use commonware_codec::Encode as _;
use welkin_node::ceremony::NodeKey;

pub(crate) fn new(args: KeyNewArgs) -> anyhow::Result<()> {
    let key = NodeKey::generate(&mut commonware_utils::sys_rng());
    super::write_secret(&args.out, &key.to_json())?;
    let public_key = hex::encode(key.public_key().encode());
    let encryption_key = hex::encode(key.encryption_key());
    if args.json {
        return output::json(&serde_json::json!({
            "path": args.out,
            "public_key": public_key,
            "encryption_key": encryption_key,
        }));
    }
    println!(
        "wrote {} (keep it secret: it holds private keys)",
        args.out.display()
    );
    println!("public key      {public_key}");
    println!("encryption key  {encryption_key}");
    Ok(())
}
