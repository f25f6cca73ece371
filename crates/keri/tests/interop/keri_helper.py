"""keripy side of the welkin-keri interop tests.

Usage:
  keri_helper.py generate        print JSON: keripy-made KELs from fixed seeds
  keri_helper.py states          read generate's JSON on stdin, print keripy's key states
  keri_helper.py recovery        print JSON: a keripy-made KEL with a recovery rotation (icp,
                                 ixn, ixn, then rot at sn 1 superseding both) and the key
                                 states keripy reaches from it
  keri_helper.py verify FILE     parse the CESR message stream in FILE with keripy's
                                 Parser and Kevery and print the key states as JSON
"""
import json
import sys

from keri.core import coring, eventing, parsing, serdering
from keri.db import basing

Blake3 = coring.MtrDex.Blake3_256


def seed(n):
    """The fixed 32-byte seed number n: n repeated."""
    return bytes([n]) * 32


def signer(n, transferable=True):
    return coring.Signer(raw=seed(n), transferable=transferable)


def ndig(s):
    """Next-key digest as keripy computes it: blake3 of the qb64 verkey text."""
    return coring.Diger(ser=s.verfer.qb64b, code=Blake3).qb64


def message(serder, signers, ondices=None):
    sigers = []
    for i, s in enumerate(signers):
        ondex = None if ondices is None else ondices[i]
        if ondices is not None and ondex is None:
            sigers.append(s.sign(serder.raw, index=i, only=True))
        elif ondices is not None:
            sigers.append(s.sign(serder.raw, index=i, ondex=ondex))
        else:
            sigers.append(s.sign(serder.raw, index=i))
    return bytes(eventing.messagize(serder, sigers=sigers)).decode()


def state(kever):
    return dict(
        prefix=kever.prefixer.qb64,
        sn=kever.sner.num,
        digest=kever.serder.said,
        keys=[v.qb64 for v in kever.verfers],
        kt=kever.tholder.sith,
        next=[d.qb64 for d in kever.ndigers],
        nt=kever.ntholder.sith,
        witnesses=list(kever.wits),
        bt=kever.toader.num,
        delegator=kever.delegator or None,
        establishment_only=bool(kever.estOnly),
        do_not_delegate=bool(kever.doNotDelegate),
    )


def generate():
    """A weighted-threshold KEL (icp, rot, ixn) and a single-key one with config traits."""
    out = {}
    a = [signer(i) for i in range(1, 7)]
    icp = eventing.incept(keys=[s.verfer.qb64 for s in a[0:3]],
                          isith=["1/2", "1/2", "1/2"],
                          ndigs=[ndig(s) for s in a[3:6]],
                          nsith=["1/2", "1/2", "1/2"], code=Blake3)
    pre = icp.pre
    b = [signer(i) for i in range(7, 9)]
    rot = eventing.rotate(pre=pre, keys=[s.verfer.qb64 for s in a[3:6]], dig=icp.said, sn=1,
                          isith=["1/2", "1/2", "1/2"], ndigs=[ndig(s) for s in b],
                          nsith="1")
    ixn = eventing.interact(pre=pre, dig=rot.said, sn=2,
                            data=[dict(i=pre, s="0", d=icp.said)])
    out["weighted"] = dict(
        seeds=list(range(1, 9)),
        messages=[message(icp, a[0:3]), message(rot, a[3:6]), message(ixn, a[3:6])],
    )
    c = [signer(i) for i in range(20, 23)]
    icp = eventing.incept(keys=[c[0].verfer.qb64], ndigs=[ndig(c[1])], code=Blake3,
                          cnfg=["EO"])
    rot = eventing.rotate(pre=icp.pre, keys=[c[1].verfer.qb64], dig=icp.said, sn=1,
                          ndigs=[ndig(c[2])])
    out["single"] = dict(seeds=[20, 21, 22],
                         messages=[message(icp, c[0:1]), message(rot, c[1:2])])
    # basic (non-self-addressing) prefixes: transferable D and non-transferable B
    d = signer(30)
    icp = eventing.incept(keys=[d.verfer.qb64], ndigs=[ndig(signer(31))])
    out["basic"] = dict(seeds=[30, 31], messages=[message(icp, [d])])
    n = signer(32, transferable=False)
    icp = eventing.incept(keys=[n.verfer.qb64])
    out["nontransferable"] = dict(seeds=[32], messages=[message(icp, [n])])
    # a receipt by a non-transferable witness of the weighted KEL's inception
    w = signer(40, transferable=False)
    first = serdering.SerderKERI(raw=out["weighted"]["messages"][0].encode())
    rct = eventing.receipt(pre=first.pre, sn=0, said=first.said)
    cigar = w.sign(first.raw)
    out["receipt"] = dict(seeds=[40], messages=[
        bytes(eventing.messagize(rct, cigars=[cigar])).decode()])
    # delegation: a delegator's ixn anchors a dip; the dip carries the -G seal source couple
    dr = [signer(50), signer(51)]
    dicp = eventing.incept(keys=[dr[0].verfer.qb64], ndigs=[ndig(dr[1])], code=Blake3)
    de = [signer(52), signer(53)]
    dip = eventing.delcept(keys=[de[0].verfer.qb64], delpre=dicp.pre, ndigs=[ndig(de[1])])
    seal = dict(i=dip.pre, s=dip.snh, d=dip.said)
    dixn = eventing.interact(pre=dicp.pre, dig=dicp.said, sn=1, data=[seal])
    source = (coring.Counter(code=coring.CtrDex.SealSourceCouples, count=1).qb64
              + coring.Seqner(sn=1).qb64 + dixn.said)
    out["delegated"] = dict(seeds=[50, 51, 52, 53], messages=[
        message(dicp, dr[0:1]), message(dixn, dr[0:1]), message(dip, de[0:1]) + source])
    json.dump(out, sys.stdout, indent=1)


def process(stream):
    """Key states of all identifiers after keripy processes the stream."""
    db = basing.Baser(name="welkin-interop", temp=True, reopen=True)
    try:
        kevery = eventing.Kevery(db=db, lax=False, local=False)
        parser = parsing.Parser(kvy=kevery)
        parser.parse(ims=bytearray(stream))
        kevery.processEscrows()
        return {pre: state(kever) for pre, kever in kevery.kevers.items()}
    finally:
        db.close(clear=True)


def states():
    """The generated KELs as keripy's own Kevery accepts them."""
    kels = json.load(sys.stdin)
    stream = "".join(m for kel in kels.values() for m in kel["messages"])
    json.dump(dict(states=process(stream.encode())), sys.stdout, indent=1)


def recovery():
    """icp and two ixns signed by the current key, then a rot at sn 1 by the next key."""
    s = [signer(i) for i in range(140, 143)]
    icp = eventing.incept(keys=[s[0].verfer.qb64], ndigs=[ndig(s[1])], code=Blake3)
    ixn1 = eventing.interact(pre=icp.pre, dig=icp.said, sn=1)
    ixn2 = eventing.interact(pre=icp.pre, dig=ixn1.said, sn=2)
    rot = eventing.rotate(pre=icp.pre, keys=[s[1].verfer.qb64], dig=icp.said, sn=1,
                          ndigs=[ndig(s[2])])
    messages = [message(icp, s[0:1]), message(ixn1, s[0:1]), message(ixn2, s[0:1]),
                message(rot, s[1:2])]
    states = process("".join(messages).encode())
    json.dump(dict(messages=messages, states=states), sys.stdout, indent=1)


def verify(path):
    with open(path, "rb") as f:
        stream = f.read()
    json.dump(dict(states=process(stream)), sys.stdout, indent=1)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "generate":
        generate()
    elif len(sys.argv) == 2 and sys.argv[1] == "states":
        states()
    elif len(sys.argv) == 2 and sys.argv[1] == "recovery":
        recovery()
    elif len(sys.argv) == 3 and sys.argv[1] == "verify":
        verify(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
