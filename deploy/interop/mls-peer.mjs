// mls-peer.mjs plays other MIMI providers' MLS clients (and a hub's external
// sender key) on the npm ts-mls package, for mimi/mls's interop tests.
//
// Protocol: one JSON object per line on stdin, one JSON answer per line on
// stdout, in order. Every MLS value travels as base64 of its serialised
// bytes (MLSMessage, or a ratchet tree as ratchet_tree extension data).
// Answers are {"ok": true, ...} or {"ok": false, "error": "..."}.
//
// Cipher suite 1 (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519) only.
//
// The modules are imported one by one: ts-mls 1.6.4's index also loads its
// noble crypto provider, which needs @noble/hashes, a package ts-mls does
// not declare. Suite 1 runs on WebCrypto and needs none of it.
import readline from "node:readline";
import { getCiphersuiteImpl } from "ts-mls/crypto/getCiphersuiteImpl.js";
import { getCiphersuiteFromName } from "ts-mls/crypto/ciphersuite.js";
import { generateKeyPackage } from "ts-mls/keyPackage.js";
import { defaultCapabilities } from "ts-mls/defaultCapabilities.js";
import { defaultLifetime } from "ts-mls/lifetime.js";
import { createGroup, joinGroup } from "ts-mls/clientState.js";
import { createCommit } from "ts-mls/createCommit.js";
import { createApplicationMessage } from "ts-mls/createMessage.js";
import { processMessage } from "ts-mls/processMessages.js";
import { acceptAll } from "ts-mls/incomingMessageAction.js";
import { emptyPskIndex } from "ts-mls/pskIndex.js";
import { encodeMlsMessage, decodeMlsMessage } from "ts-mls/message.js";
import { zeroOutUint8Array } from "ts-mls/util/byteArray.js";
import { encodeExternalSender } from "ts-mls/externalSender.js";
import { encodeRatchetTree, decodeRatchetTree, stripBlankNodes } from "ts-mls/ratchetTree.js";
import { protectExternalProposalPublic } from "ts-mls/messageProtectionPublic.js";

const mls = {
  getCiphersuiteImpl, getCiphersuiteFromName, generateKeyPackage, defaultCapabilities, defaultLifetime,
  createGroup, joinGroup, createCommit, createApplicationMessage, processMessage, acceptAll,
  emptyPskIndex, encodeMlsMessage, decodeMlsMessage, zeroOutUint8Array, encodeExternalSender,
};

const impl = await mls.getCiphersuiteImpl(
  mls.getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"),
);

const b64 = (u8) => Buffer.from(u8).toString("base64");
const unb64 = (s) => new Uint8Array(Buffer.from(s, "base64"));
const utf8 = (s) => new TextEncoder().encode(s);
const fromUtf8 = (u8) => new TextDecoder().decode(u8);

// clients: name -> { credential, pending: [{publicPackage, privatePackage}], state }
const clients = new Map();
// senders: name -> { publicKey, signKey } (external senders, e.g. a hub)
const senders = new Map();

function client(name) {
  const c = clients.get(name);
  if (!c) throw new Error(`no client ${name}`);
  return c;
}

function decodeMessage(s, want) {
  const d = mls.decodeMlsMessage(unb64(s), 0);
  if (d === undefined) throw new Error("cannot decode MLSMessage");
  const m = d[0];
  if (want && m.wireformat !== want) throw new Error(`expected ${want}, got ${m.wireformat}`);
  return m;
}

function encodeTree(tree) {
  return b64(encodeRatchetTree(stripBlankNodes(tree)));
}

function varint(n) {
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  return Uint8Array.of(0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function members(state) {
  const out = [];
  state.ratchetTree.forEach((n, i) => {
    if (n !== undefined && n.nodeType === "leaf" && i % 2 === 0) {
      const cred = n.leaf.credential;
      out.push({ leaf: i / 2, identity: cred.credentialType === "basic" ? fromUtf8(cred.identity) : "" });
    }
  });
  return out;
}

const ops = {
  async newClient({ name, identity }) {
    clients.set(name, { credential: { credentialType: "basic", identity: utf8(identity) }, pending: [], state: undefined });
    return {};
  },

  async keyPackage({ name }) {
    const c = client(name);
    const kp = await mls.generateKeyPackage(c.credential, mls.defaultCapabilities(), mls.defaultLifetime, [], impl);
    c.pending.push(kp);
    const msg = mls.encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage: kp.publicPackage });
    return { keyPackage: b64(msg) };
  },

  async createGroup({ name, groupId }) {
    const c = client(name);
    const kp = await mls.generateKeyPackage(c.credential, mls.defaultCapabilities(), mls.defaultLifetime, [], impl);
    c.state = await mls.createGroup(unb64(groupId), kp.publicPackage, kp.privatePackage, [], impl);
    return {};
  },

  // commit adds KeyPackages and removes leaves in one PublicMessage commit.
  async commit({ name, add = [], removeLeaves = [], ratchetTreeExtension = false }) {
    const c = client(name);
    const proposals = [];
    for (const k of add) {
      proposals.push({ proposalType: "add", add: { keyPackage: decodeMessage(k, "mls_key_package").keyPackage } });
    }
    for (const leaf of removeLeaves) {
      proposals.push({ proposalType: "remove", remove: { removed: leaf } });
    }
    const r = await mls.createCommit(
      { state: c.state, cipherSuite: impl },
      { extraProposals: proposals, wireAsPublicMessage: true, ratchetTreeExtension },
    );
    c.state = r.newState;
    r.consumed.forEach(mls.zeroOutUint8Array);
    const out = { commit: b64(mls.encodeMlsMessage(r.commit)), ratchetTree: encodeTree(c.state.ratchetTree) };
    if (r.welcome !== undefined) {
      out.welcome = b64(mls.encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome: r.welcome }));
    }
    return out;
  },

  // join joins from a Welcome with one of the client's KeyPackages; the
  // ratchet tree comes beside it when ratchetTree is set.
  async join({ name, welcome, ratchetTree }) {
    const c = client(name);
    const w = decodeMessage(welcome, "mls_welcome").welcome;
    const tree = ratchetTree ? decodeRatchetTree(unb64(ratchetTree), 0)[0] : undefined;
    let lastErr;
    for (const kp of c.pending) {
      try {
        c.state = await mls.joinGroup(w, kp.publicPackage, kp.privatePackage, mls.emptyPskIndex, impl, tree);
        c.pending = c.pending.filter((k) => k !== kp);
        return { epoch: Number(c.state.groupContext.epoch), members: members(c.state) };
      } catch (e) {
        lastErr = e;
      }
    }
    throw lastErr ?? new Error("no pending key package");
  },

  async send({ name, content }) {
    const c = client(name);
    const r = await mls.createApplicationMessage(c.state, unb64(content), impl);
    c.state = r.newState;
    r.consumed.forEach(mls.zeroOutUint8Array);
    const msg = mls.encodeMlsMessage({ version: "mls10", wireformat: "mls_private_message", privateMessage: r.privateMessage });
    return { message: b64(msg) };
  },

  // process applies a PublicMessage handshake or decrypts a PrivateMessage.
  async process({ name, message }) {
    const c = client(name);
    const m = decodeMessage(message);
    if (m.wireformat !== "mls_public_message" && m.wireformat !== "mls_private_message") {
      throw new Error(`cannot process ${m.wireformat}`);
    }
    const r = await mls.processMessage(m, c.state, mls.emptyPskIndex, mls.acceptAll, impl);
    c.state = r.newState;
    r.consumed.forEach(mls.zeroOutUint8Array);
    if (r.kind === "applicationMessage") {
      return { kind: "application", content: b64(r.message) };
    }
    return { kind: "handshake", epoch: Number(c.state.groupContext.epoch) };
  },

  async info({ name }) {
    const c = client(name);
    return { epoch: Number(c.state.groupContext.epoch), members: members(c.state), ownLeaf: c.state.privatePath.leafIndex };
  },

  // newSender makes an external sender's signature key pair.
  async newSender({ name }) {
    const kp = await impl.signature.keygen();
    senders.set(name, kp);
    return { signatureKey: b64(kp.publicKey) };
  },

  // externalPropose signs a proposal as external sender senderIndex of the
  // group a GroupInfo describes. ts-mls's proposeExternal is not used: it
  // reads external_senders as a single ExternalSender rather than RFC 9420's
  // vector and takes the sender index from the position among all
  // extensions, so it cannot find a sender in a group encoded per the RFC.
  async externalPropose({ sender, groupInfo, senderIndex = 0, removeLeaf, addKeyPackage }) {
    const s = senders.get(sender);
    if (!s) throw new Error(`no sender ${sender}`);
    const gi = decodeMessage(groupInfo, "mls_group_info").groupInfo;
    let proposal;
    if (addKeyPackage !== undefined) {
      proposal = { proposalType: "add", add: { keyPackage: decodeMessage(addKeyPackage, "mls_key_package").keyPackage } };
    } else {
      proposal = { proposalType: "remove", remove: { removed: removeLeaf } };
    }
    const r = await protectExternalProposalPublic(s.signKey, gi.groupContext, new Uint8Array(), proposal,
      { senderType: "external", senderIndex }, impl);
    const msg = mls.encodeMlsMessage({ version: "mls10", wireformat: "mls_public_message", publicMessage: r.publicMessage });
    return { message: b64(msg) };
  },

  // externalSenders encodes an external_senders extension body (RFC 9420
  // section 12.1.8.1: a vector of ExternalSender) for the named senders.
  async externalSenders({ names }) {
    const parts = names.map((n) => {
      const s = senders.get(n);
      return mls.encodeExternalSender({ signaturePublicKey: s.publicKey, credential: { credentialType: "basic", identity: utf8(n) } });
    });
    const body = concat(parts);
    return { extension: b64(concat([varint(body.length), body])) };
  },
};

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (line.trim() === "") continue;
  let answer;
  try {
    const req = JSON.parse(line);
    const op = ops[req.op];
    if (!op) throw new Error(`unknown op ${req.op}`);
    answer = { ok: true, ...(await op(req)) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
