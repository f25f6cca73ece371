"""hvac, the Python Vault client, drives Welkin's transit engine unchanged.

Run by the process test with VAULT_ADDR (a node's API) and VAULT_TOKEN (the root token), after
the test has enabled a transit mount at `transit/`. The first failure exits non-zero.
"""

import base64
import os

import hvac

client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
transit = client.secrets.transit


def b64(text):
    return base64.b64encode(text.encode()).decode()


transit.create_key(name="hvac-key")
key = transit.read_key(name="hvac-key")["data"]
assert key["type"] == "chacha20-poly1305", key
assert key["latest_version"] == 1, key

secret = "hvac says hello"
ciphertext = transit.encrypt_data(name="hvac-key", plaintext=b64(secret))["data"]["ciphertext"]
assert ciphertext.startswith("vault:v1:"), ciphertext
plain = transit.decrypt_data(name="hvac-key", ciphertext=ciphertext)["data"]["plaintext"]
assert base64.b64decode(plain).decode() == secret, plain

batch = transit.encrypt_data(
    name="hvac-key", batch_input=[{"plaintext": b64("one")}, {"plaintext": b64("two")}]
)["data"]["batch_results"]
opened = transit.decrypt_data(
    name="hvac-key", batch_input=[{"ciphertext": item["ciphertext"]} for item in batch]
)["data"]["batch_results"]
assert [base64.b64decode(item["plaintext"]).decode() for item in opened] == ["one", "two"], opened

transit.rotate_key(name="hvac-key")
assert transit.read_key(name="hvac-key")["data"]["latest_version"] == 2
rewrapped = transit.rewrap_data(name="hvac-key", ciphertext=ciphertext)["data"]["ciphertext"]
assert rewrapped.startswith("vault:v2:"), rewrapped
plain = transit.decrypt_data(name="hvac-key", ciphertext=rewrapped)["data"]["plaintext"]
assert base64.b64decode(plain).decode() == secret, plain

mac = transit.generate_hmac(name="hvac-key", hash_input=b64("message"))["data"]["hmac"]
assert mac.startswith("vault:v2:"), mac
valid = transit.verify_signed_data(name="hvac-key", hash_input=b64("message"), hmac=mac)
assert valid["data"]["valid"] is True, valid
forged = transit.verify_signed_data(name="hvac-key", hash_input=b64("other"), hmac=mac)
assert forged["data"]["valid"] is False, forged

# Signing keys the nodes generate together; PyNaCl, an independent verifier, accepts the
# signatures.
import time

import nacl.signing

transit.create_key(name="hvac-signer", key_type="ed25519")
public_key = ""
for _ in range(600):
    public_key = transit.read_key(name="hvac-signer")["data"]["keys"]["1"]["public_key"]
    if public_key:
        break
    time.sleep(0.1)
assert public_key, "the nodes generate the signing key"
message = "signed by no single node"
signature = transit.sign_data(name="hvac-signer", hash_input=b64(message))["data"]["signature"]
assert signature.startswith("vault:v1:"), signature
raw = base64.b64decode(signature.split(":", 2)[2])
nacl.signing.VerifyKey(base64.b64decode(public_key)).verify(message.encode(), raw)
valid = transit.verify_signed_data(name="hvac-signer", hash_input=b64(message), signature=signature)
assert valid["data"]["valid"] is True, valid
forged = transit.verify_signed_data(name="hvac-signer", hash_input=b64("other"), signature=signature)
assert forged["data"]["valid"] is False, forged

print("hvac transit: all steps passed")
