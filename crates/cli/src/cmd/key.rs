//! `welkin key new` and `welkin key register`.

use crate::{
    cli::{KeyNewArgs, KeyRegisterArgs},
    output,
};
use anyhow::Context as _;
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

pub(crate) fn register(args: KeyRegisterArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read {}", args.key.display()))?;
    let key = NodeKey::from_json(&text).with_context(|| format!("{}", args.key.display()))?;
    let entry = key.register(
        args.name,
        args.p2p_address,
        args.api_address,
        args.failure_domain,
    );
    let json = serde_json::to_string_pretty(&entry)?;
    match &args.out {
        None => println!("{json}"),
        Some(out) => {
            super::write_new(out, &format!("{json}\n"), 0o644)?;
            eprintln!(
                "wrote {} (public: give it to whoever runs `welkin genesis`)",
                out.display()
            );
        }
    }
    Ok(())
}
