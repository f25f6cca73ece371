"""hvac, the Python Vault client, against a Welkin node, unchanged.

Run by the process test with VAULT_ADDR (a node's API) and VAULT_TOKEN (the root token).
Each step asserts what Vault would answer; the first failure exits non-zero.
"""

import os
import sys
import time

import hvac
from hvac import exceptions

addr = os.environ["VAULT_ADDR"]
root = hvac.Client(url=addr, token=os.environ["VAULT_TOKEN"])

assert root.is_authenticated(), "the root token authenticates"
assert not root.sys.is_sealed(), "a Welkin cluster is never sealed"
health = root.sys.read_health_status(method="GET")
assert health["initialized"] is True, health

kv = root.secrets.kv.v2
written = kv.create_or_update_secret(path="hvac/app", secret={"user": "u", "pass": "p1"})
assert written["data"]["version"] == 1, written
kv.create_or_update_secret(path="hvac/app", secret={"user": "u", "pass": "p2"}, cas=1)
try:
    kv.create_or_update_secret(path="hvac/app", secret={"pass": "x"}, cas=1)
    sys.exit("a stale cas was accepted")
except exceptions.InvalidRequest:
    pass
read = kv.read_secret_version(path="hvac/app", raise_on_deleted_version=True)
assert read["data"]["data"] == {"user": "u", "pass": "p2"}, read
assert read["data"]["metadata"]["version"] == 2, read
old = kv.read_secret_version(path="hvac/app", version=1, raise_on_deleted_version=True)
assert old["data"]["data"]["pass"] == "p1", old

kv.patch(path="hvac/app", secret={"pass": "p3"})
assert kv.read_secret_version(path="hvac/app", raise_on_deleted_version=True)["data"]["data"] == {
    "user": "u",
    "pass": "p3",
}

kv.create_or_update_secret(path="hvac/other", secret={"a": "b"})
listed = kv.list_secrets(path="hvac")
assert sorted(listed["data"]["keys"]) == ["app", "other"], listed

kv.delete_latest_version_of_secret(path="hvac/other")
deleted = kv.read_secret_version(path="hvac/other", raise_on_deleted_version=False)
assert deleted["data"]["metadata"]["deletion_time"] != "", deleted
kv.undelete_secret_versions(path="hvac/other", versions=[1])
assert kv.read_secret_version(path="hvac/other", raise_on_deleted_version=True)["data"]["data"] == {"a": "b"}
kv.destroy_secret_versions(path="hvac/other", versions=[1])
try:
    kv.read_secret_version(path="hvac/other", version=1, raise_on_deleted_version=True)
    sys.exit("a destroyed version was read")
except exceptions.InvalidPath:
    pass

meta = kv.read_secret_metadata(path="hvac/app")
assert meta["data"]["current_version"] == 3, meta
kv.update_metadata(path="hvac/app", max_versions=5, custom_metadata={"owner": "ops"})
meta = kv.read_secret_metadata(path="hvac/app")
assert meta["data"]["max_versions"] == 5 and meta["data"]["custom_metadata"] == {"owner": "ops"}, meta

policy = """
path "secret/data/hvac/*" { capabilities = ["read"] }
path "secret/data/hvac/other" { capabilities = ["deny"] }
"""
root.sys.create_or_update_acl_policy(name="hvac-read", policy=policy)
assert root.sys.read_acl_policy(name="hvac-read")["data"]["policy"] == policy
assert "hvac-read" in root.sys.list_acl_policies()["data"]["keys"]

token = root.auth.token.create(policies=["hvac-read"], ttl="1h", num_uses=3)
child = hvac.Client(url=addr, token=token["auth"]["client_token"])
looked = child.auth.token.lookup_self()
assert looked["data"]["policies"] == ["default", "hvac-read"], looked
assert child.secrets.kv.v2.read_secret_version(path="hvac/app", raise_on_deleted_version=True)["data"]["data"]["pass"] == "p3"
try:
    child.secrets.kv.v2.create_or_update_secret(path="hvac/app", secret={"x": "y"})
    sys.exit("a read-only token wrote")
except exceptions.Forbidden:
    pass
# A denied request uses nothing; the third allowed one is the last.
child.secrets.kv.v2.read_secret_version(path="hvac/app", raise_on_deleted_version=True)
try:
    child.secrets.kv.v2.read_secret_version(path="hvac/app", raise_on_deleted_version=True)
    sys.exit("a token read past its num_uses")
except exceptions.Forbidden:
    pass

renewable = root.auth.token.create(policies=["hvac-read"], ttl="1h")
renewed = hvac.Client(url=addr, token=renewable["auth"]["client_token"]).auth.token.renew_self(increment="2h")
assert renewed["auth"]["lease_duration"] > 3600, renewed
accessor = renewable["auth"]["accessor"]
looked = root.auth.token.lookup_accessor(accessor)
assert looked["data"]["accessor"] == accessor, looked
root.auth.token.revoke_accessor(accessor)
revoked = hvac.Client(url=addr, token=renewable["auth"]["client_token"])
assert not revoked.is_authenticated(), "a revoked token no longer authenticates"

wrapped = root.auth.token.create(policies=["hvac-read"], ttl="1h", wrap_ttl="60s")
assert wrapped["auth"] is None and wrapped["wrap_info"]["ttl"] == 60, wrapped
unwrapped = root.sys.unwrap(token=wrapped["wrap_info"]["token"])
new_token = unwrapped["auth"]["client_token"]
assert hvac.Client(url=addr, token=new_token).is_authenticated(), unwrapped
try:
    root.sys.unwrap(token=wrapped["wrap_info"]["token"])
    sys.exit("a wrapped response opened twice")
except exceptions.InvalidRequest:
    pass

root.sys.enable_secrets_engine(backend_type="kv", path="hvac-kv", options={"version": "2"})
assert "hvac-kv/" in root.sys.list_mounted_secrets_engines()["data"]
root.secrets.kv.v2.create_or_update_secret(path="x", secret={"k": "v"}, mount_point="hvac-kv")
assert root.secrets.kv.v2.read_secret_version(path="x", mount_point="hvac-kv", raise_on_deleted_version=True)["data"]["data"] == {"k": "v"}
root.sys.disable_secrets_engine(path="hvac-kv")

root.sys.delete_acl_policy(name="hvac-read")
print("hvac: every step answered as Vault would")
